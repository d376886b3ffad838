import { describe, expect, it } from 'vitest';
import type { TreeEntry } from '../snapshot/snapshot.js';
import { changeAspects, countChange, diffTrees, emptyDiffStats, type TreeChange } from './diff.js';
import { pathMatcher } from './find.js';
import { isChildOf, isUnder, treePathArg } from './tree-path.js';

const file = (path: string, sha = 'a', size = 1, more: Partial<TreeEntry> = {}): TreeEntry => ({
  path,
  kind: 'file',
  mode: 0o644,
  mtimeMs: 1000,
  size,
  sha256: sha.repeat(64).slice(0, 64),
  ...more,
});
const dir = (path: string, mtimeMs = 1000): TreeEntry => ({ path, kind: 'dir', mode: 0o755, mtimeMs });

async function* stream(entries: TreeEntry[]): AsyncGenerator<TreeEntry> {
  yield* entries;
}
async function diff(a: TreeEntry[], b: TreeEntry[]): Promise<TreeChange[]> {
  const out: TreeChange[] = [];
  for await (const c of diffTrees(stream(a), stream(b))) out.push(c);
  return out;
}
const summary = (cs: TreeChange[]): string[] =>
  cs.map((c) => `${c.op} ${c.op === 'added' ? c.after.path : c.op === 'removed' ? c.before.path : c.after.path}`);

describe('treePathArg', () => {
  it.each([
    [undefined, ''],
    ['', ''],
    ['.', ''],
    ['/', ''],
    ['projects/p1', 'projects/p1'],
    ['/projects//p1/', 'projects/p1'],
    ['./core/core.db', 'core/core.db'],
  ])('%j is %j', (given, want) => expect(treePathArg(given)).toBe(want));

  it.each(['..', 'projects/../..', 'a/\0b'])('refuses %j as a usage error', (given) =>
    expect(() => treePathArg(given)).toThrow(expect.objectContaining({ code: 'USAGE' })),
  );
});

describe('isUnder / isChildOf', () => {
  it('tells a subtree by whole components', () => {
    expect(isUnder('projects/p1/x', 'projects/p1')).toBe(true);
    expect(isUnder('projects/p1', 'projects/p1')).toBe(true);
    expect(isUnder('projects/p10', 'projects/p1')).toBe(false);
    expect(isUnder('anything', '')).toBe(true);
    expect(isChildOf('projects/p1', 'projects')).toBe(true);
    expect(isChildOf('projects/p1/x', 'projects')).toBe(false);
    expect(isChildOf('projects', 'projects')).toBe(false);
    expect(isChildOf('core', '')).toBe(true);
    expect(isChildOf('core/core.db', '')).toBe(false);
  });
});

describe('pathMatcher', () => {
  it('matches the last name without a slash, the whole path with one', () => {
    const m = pathMatcher(['*.db']);
    expect(m('core/core.db')).toBe(true);
    expect(m('projects/p1/maps/m1/map.db')).toBe(true);
    expect(m('core/core.db-wal')).toBe(false);
    const p = pathMatcher(['/projects/*/project.db', 'config/**']);
    expect(p('projects/p1/project.db')).toBe(true);
    expect(p('projects/p1/maps/m1/project.db')).toBe(false);
    expect(p('config/a/b.json')).toBe(true);
    expect(pathMatcher(['.hidden'])('x/.hidden')).toBe(true);
  });

  it('refuses no pattern and an empty one', () => {
    expect(() => pathMatcher([])).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => pathMatcher([''])).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

describe('diffTrees', () => {
  it('merges two trees in tree order into added, removed and changed', async () => {
    const a = [dir('a'), file('a/x'), file('a/y', 'b'), dir('b'), file('b/gone')];
    const b = [dir('a'), file('a/x'), file('a/y', 'c', 7), file('a/z'), dir('b'), dir('c'), file('c/new', 'd', 5)];
    const changes = await diff(a, b);
    expect(summary(changes)).toEqual(['changed a/y', 'added a/z', 'removed b/gone', 'added c', 'added c/new']);
    const stats = emptyDiffStats();
    for (const c of changes) countChange(stats, c);
    expect(stats).toEqual({
      added: 3,
      removed: 1,
      changed: 1,
      metadataOnly: 0,
      addedBytes: 1 + 7 + 5,
      removedBytes: 2,
    });
  });

  it('orders by components, so a/b sorts before a.b and a-b (as trees are stored)', async () => {
    const a = [dir('a'), file('a/b'), file('a-b'), file('a.b')];
    const b = [file('a-b'), file('a.b')];
    expect(summary(await diff(a, b))).toEqual(['removed a', 'removed a/b']);
  });

  it('reports identical trees as no change, and every entry of an empty side', async () => {
    const t = [dir('a'), file('a/x')];
    expect(await diff(t, t)).toEqual([]);
    expect(summary(await diff([], t))).toEqual(['added a', 'added a/x']);
    expect(summary(await diff(t, []))).toEqual(['removed a', 'removed a/x']);
  });

  it('names what changed: content, kind, mode, owner, time (not a directory time)', () => {
    expect(changeAspects(file('x'), file('x', 'b'))).toEqual(['content']);
    expect(changeAspects(file('x'), dir('x'))).toContain('kind');
    expect(changeAspects(file('x'), file('x', 'a', 1, { mode: 0o600 }))).toEqual(['mode']);
    expect(changeAspects(file('x'), file('x', 'a', 1, { uid: 1, gid: 1 }))).toEqual(['owner']);
    expect(changeAspects(file('x'), file('x', 'a', 1, { mtimeMs: 5 }))).toEqual(['mtime']);
    expect(changeAspects(dir('d', 1), dir('d', 2))).toEqual([]);
  });
});
