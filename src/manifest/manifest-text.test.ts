import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { renderManifest } from './manifest.js';
import type { Snapshot, TreeEntry } from '../snapshot/snapshot.js';
import { readTree, TreeWriter } from '../snapshot/tree.js';
import { makeRepo } from '../../test/repo-helpers.js';
import { ManifestText } from './manifest-text.js';
import { rereadTree } from '../verify/reread-tree.js';

const dir = (path: string): TreeEntry => ({ path, kind: 'dir', mode: 0o755, mtimeMs: 1 });

describe('ManifestText', () => {
  it('renders byte for byte what renderManifest renders, from two walks over the tree', async () => {
    const repo = await makeRepo();
    const file = async (path: string, text: string): Promise<TreeEntry> => {
      const content = Buffer.from(text);
      const id = createHash('sha256').update(content).digest('hex');
      await repo.saveBlob('data', id, content);
      return { path, kind: 'file', mode: 0o644, mtimeMs: 1, size: content.length, sha256: id, chunks: [id] };
    };
    // projects with files, an empty project, a project directory the head does not list, files around them
    const entries: TreeEntry[] = [
      dir('core'),
      await file('core/settings.json', '{}'),
      dir('modules'),
      dir('modules/maps'),
      await file('modules/maps/module.json', 'm'),
      dir('projects'),
      dir('projects/p1'),
      await file('projects/p1/a.txt', 'a'),
      dir('projects/p1/maps'),
      await file('projects/p1/maps/m.json', 'mm'),
      dir('projects/p2'),
      dir('projects/p3'),
      await file('projects/p3/x.txt', 'x'),
      dir('projects/p4'),
      await file('projects/p4/y.txt', 'y'),
      dir('templates'),
      await file('templates/t.json', 't'),
    ];
    const writer = new TreeWriter(repo);
    for (const e of entries) await writer.add(e);
    const tree = await writer.finish();
    await repo.flush();
    const project = (projectId: string) => ({ projectId, projectDb: null, mapDbs: [], maps: [] });
    const snap = {
      tree,
      manifest: {
        backupId: 'b',
        createdAt: '2026-01-01T00:00:00.000Z',
        createdBy: 'test',
        foleVersion: '1.0.0',
        storageSpecVersion: '1',
        modules: ['maps'],
        projects: [project('p1'), project('p2'), project('p4')],
        core: { coreDb: null, templates: { 't.json': 'sha256:00' } },
      },
    } as unknown as Snapshot;

    const expected: string[] = [];
    await renderManifest(repo, snap, (t) => void expected.push(t));
    const got: string[] = [];
    const text = new ManifestText(snap, (t) => got.push(t));
    for await (const e of readTree(repo, tree)) text.project(e);
    text.startFileList();
    for await (const e of rereadTree(repo, tree)) text.listed(e);
    text.end();
    expect(got.join('')).toBe(expected.join(''));
    expect(JSON.parse(got.join('')).projects.map((p: { projectId: string }) => p.projectId)).toEqual([
      'p1',
      'p2',
      'p4',
    ]);
  });
});

describe('rereadTree', () => {
  it('yields the entries readTree validated, up to a limit', async () => {
    const repo = await makeRepo();
    const writer = new TreeWriter(repo);
    for (const p of ['a', 'b', 'c']) await writer.add(dir(p));
    const tree = await writer.finish();
    await repo.flush();
    const all: string[] = [];
    for await (const e of rereadTree(repo, tree)) all.push(e.path);
    expect(all).toEqual(['a', 'b', 'c']);
    const two: string[] = [];
    for await (const e of rereadTree(repo, tree, 2)) two.push(e.path);
    expect(two).toEqual(['a', 'b']);
  });
});
