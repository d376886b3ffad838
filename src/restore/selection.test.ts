import { describe, expect, it } from 'vitest';
import type { TreeEntry } from '../snapshot/snapshot.js';
import { countSelected, selectEntries, type Selection } from './selection.js';

const d = (path: string): TreeEntry => ({ path, kind: 'dir', mode: 0o755, mtimeMs: 0 });
const f = (path: string, size = 10): TreeEntry => ({ path, kind: 'file', mode: 0o644, mtimeMs: 0, size });
const db = (path: string): TreeEntry => ({ path, kind: 'db', mode: 0o644, mtimeMs: 0, size: 4096 });

const TREE: TreeEntry[] = [
  d('core'),
  db('core/core.db'),
  d('projects'),
  d('projects/p1'),
  d('projects/p1/files'),
  f('projects/p1/files/a.txt'),
  f('projects/p1/files/b.png'),
  d('projects/p1/maps'),
  db('projects/p1/maps/map.db'),
  db('projects/p1/project.db'),
  d('projects/p2'),
  db('projects/p2/project.db'),
];

async function select(sel: Partial<Selection>): Promise<string[]> {
  const out: string[] = [];
  async function* tree(): AsyncGenerator<TreeEntry> {
    yield* TREE;
  }
  for await (const e of selectEntries(tree(), { include: sel.include ?? [], exclude: sel.exclude ?? [] }))
    out.push(e.path);
  return out;
}

describe('selectEntries', () => {
  it('takes a directory whole, with the directories above it', async () => {
    expect(await select({ include: ['projects/p1'] })).toEqual([
      'projects',
      'projects/p1',
      'projects/p1/files',
      'projects/p1/files/a.txt',
      'projects/p1/files/b.png',
      'projects/p1/maps',
      'projects/p1/maps/map.db',
      'projects/p1/project.db',
    ]);
  });

  it('takes matching files only, with only the directories on their way', async () => {
    expect(await select({ include: ['project.db'] })).toEqual([
      'projects',
      'projects/p1',
      'projects/p1/project.db',
      'projects/p2',
      'projects/p2/project.db',
    ]);
  });

  it('leaves out what an exclude matches, a directory with all under it', async () => {
    expect(await select({ include: ['projects/**'], exclude: ['maps', '*.png'] })).toEqual([
      'projects',
      'projects/p1',
      'projects/p1/files',
      'projects/p1/files/a.txt',
      'projects/p1/project.db',
      'projects/p2',
      'projects/p2/project.db',
    ]);
  });

  it('takes nothing when nothing matches, and counts what it takes', async () => {
    expect(await select({ include: ['nothing'] })).toEqual([]);
    async function* tree(): AsyncGenerator<TreeEntry> {
      yield* TREE;
    }
    expect(await countSelected(tree(), { include: ['*.db'], exclude: ['projects/p2'] })).toEqual({
      files: 3,
      dirs: 4,
      bytes: 3 * 4096,
      databases: [
        { path: 'core/core.db', size: 4096 },
        { path: 'projects/p1/maps/map.db', size: 4096 },
        { path: 'projects/p1/project.db', size: 4096 },
      ],
    });
  });
});
