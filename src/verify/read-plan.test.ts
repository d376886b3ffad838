import { describe, expect, it } from 'vitest';
import { ReadPlanner, type PlannedEntry } from './read-plan.js';

/** A toy index: blob id → pack and plaintext length. */
const index: Record<string, { pack: string; rawLength: number }> = {
  t1: { pack: 'P0', rawLength: 100 },
  a: { pack: 'P1', rawLength: 10 },
  b: { pack: 'P1', rawLength: 20 },
  c: { pack: 'P2', rawLength: 16 },
  d: { pack: 'P3', rawLength: 16 },
  e: { pack: 'P3', rawLength: 4 },
  f: { pack: 'P4', rawLength: 7 },
};
const planner = (): ReadPlanner => new ReadPlanner((id) => index[id]);
const at = (e: PlannedEntry) => e.chunks.map((id) => index[id] as { pack: string; rawLength: number });
const file = (path: string, chunks: string[], size = 0): PlannedEntry => ({
  path,
  kind: 'file',
  size,
  sha256: chunks[0] ?? 'e3b0',
  chunks,
});
const db = (path: string, chunks: string[], size: number): PlannedEntry => ({
  path,
  kind: 'db',
  size,
  sha256: 'x',
  chunks,
});

const add = (p: ReadPlanner, seq: number, e: PlannedEntry): void => p.addFile(seq, e, at(e));

describe('ReadPlanner', () => {
  it('opens each needed blob once per pack and lets each pack vouch for its one-chunk files', () => {
    const p = planner();
    p.addBlobs(['t1']);
    add(p, 1, file('a1', ['a'], 10));
    add(p, 2, file('a2', ['a'], 10)); // the same content again: opened once, two files
    add(p, 3, file('b', ['b'], 20));
    add(p, 4, file('empty', []));
    const plan = p.finish(new Set());
    expect(plan.tasks.map((t) => t.pack)).toEqual(['P0', 'P1']);
    expect(plan.tasks[0]).toMatchObject({ blobs: new Set(['t1']), keep: new Set(), files: 0, bytes: 0 });
    expect(plan.tasks[1]).toMatchObject({ blobs: new Set(['a', 'b']), keep: new Set(), files: 3, bytes: 40 });
    expect(plan.emptyFiles).toBe(1);
    expect(plan.assemblies).toEqual([]);
  });

  it('checks files of several chunks and every database as a whole, with where each chunk is', () => {
    const p = planner();
    add(p, 0, file('one', ['f'], 7));
    add(p, 5, file('big', ['c', 'd', 'c', 'e'], 52));
    add(p, 9, db('core/core.db', ['a'], 10));
    const plan = p.finish(new Set());
    expect(plan.assemblies.map((a) => [a.seq, a.path])).toEqual([
      [5, 'big'],
      [9, 'core/core.db'],
    ]);
    expect(plan.assemblies[0]).toMatchObject({ chunkPacks: ['P2', 'P3', 'P2', 'P3'], rawLengths: [16, 16, 16, 4] });
    // the packs that feed assemblies come first (in the order first needed), then the rest
    expect(plan.tasks.map((t) => t.pack)).toEqual(['P2', 'P3', 'P1', 'P4']);
    expect(plan.tasks.find((t) => t.pack === 'P2')).toMatchObject({ blobs: new Set(['c']), keep: new Set(['c']) });
    expect(plan.tasks.find((t) => t.pack === 'P3')).toMatchObject({
      blobs: new Set(['d', 'e']),
      keep: new Set(['d', 'e']),
    });
    expect(plan.tasks.find((t) => t.pack === 'P4')).toMatchObject({ files: 1, bytes: 7, keep: new Set() });
  });

  it('leaves out packs found missing and every file that needs one of them', () => {
    const p = planner();
    add(p, 1, file('in-bad', ['c'], 16));
    add(p, 2, file('spans-bad', ['b', 'c'], 36));
    add(p, 3, file('fine', ['a'], 10));
    add(p, 4, db('d.db', ['d', 'e'], 20));
    const plan = p.finish(new Set(['P2']));
    expect(plan.tasks.map((t) => t.pack)).toEqual(['P3', 'P1']);
    expect(plan.assemblies.map((a) => a.path)).toEqual(['d.db']);
    // b was needed only by the file that cannot be read: not opened
    expect(plan.tasks.find((t) => t.pack === 'P1')).toMatchObject({ blobs: new Set(['a']), files: 1 });
  });

  it('refuses a file whose chunks it is not told the places of', () => {
    expect(() => planner().addFile(0, file('x', ['a', 'b'], 30), [{ pack: 'P1', rawLength: 10 }])).toThrow(
      /2 chunks, 1 locations/,
    );
  });
});
