import { describe, expect, it } from 'vitest';
import type { IndexEntry } from '../repository/master-index.js';
import type { TreeEntry } from '../snapshot/snapshot.js';
import { planWindow, type SpanLimits } from './window-plan.js';

const H = (c: string): string => c.repeat(64);
const WIDE: SpanLimits = { maxSpan: 1 << 30, maxGap: 1 << 30 };

/** An index of blobs laid out back to back in their packs, in the order given. */
function indexOf(
  blobs: { id: string; pack: string; length: number; rawLength?: number; at?: number }[],
): (id: string) => IndexEntry | undefined {
  const next = new Map<string, number>();
  const entries = new Map<string, IndexEntry>();
  for (const b of blobs) {
    const offset = b.at ?? next.get(b.pack) ?? 0;
    next.set(b.pack, offset + b.length);
    entries.set(b.id, {
      id: b.id,
      pack: b.pack,
      type: 'data',
      offset,
      length: b.length,
      rawLength: b.rawLength ?? b.length - 28,
      compression: 0,
    });
  }
  return (id) => entries.get(id);
}

function file(path: string, chunks: string[], size: number): TreeEntry {
  return { path, kind: 'file', mode: 0o644, mtimeMs: 1, size, sha256: H('0'), chunks };
}

describe('planWindow', () => {
  it('reads each pack once, in the order the window first needs them, and writes each blob wherever it is used', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p2', length: 128 },
      { id: H('b'), pack: 'p1', length: 228 },
      { id: H('c'), pack: 'p2', length: 78 },
    ]);
    // x: one chunk from p1; y: two chunks from p2; z: the same content as x (deduplicated)
    const files = [file('x', [H('b')], 200), file('y', [H('a'), H('c')], 150), file('z', [H('b')], 200)];
    const plan = planWindow(files, lookup, WIDE);
    expect(plan.spans.map((s) => [s.pack, s.offset, s.length])).toEqual([
      ['p1', 0, 228],
      ['p2', 0, 206],
    ]);
    const [p1, p2] = plan.spans;
    expect(p1?.blobs.map((b) => [b.blob.id, b.targets])).toEqual([
      [
        H('b'),
        [
          { file: 0, offset: 0 },
          { file: 2, offset: 0 },
        ],
      ],
    ]);
    expect(p2?.blobs.map((b) => [b.blob.id, b.targets])).toEqual([
      [H('a'), [{ file: 1, offset: 0 }]],
      [H('c'), [{ file: 1, offset: 100 }]],
    ]);
    expect(p1?.files.sort()).toEqual([0, 2]);
    expect(p2?.files).toEqual([1]);
    expect(plan.spansPerFile).toEqual([1, 1, 1]);
  });

  it('cuts a pack into spans no longer than maxSpan, except a single larger blob', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 400 },
      { id: H('b'), pack: 'p', length: 400 },
      { id: H('c'), pack: 'p', length: 1500 },
      { id: H('d'), pack: 'p', length: 100 },
    ]);
    const f = file('big', [H('a'), H('b'), H('c'), H('d')], 400 + 400 + 1500 + 100 - 4 * 28);
    const plan = planWindow([f], lookup, { maxSpan: 1000, maxGap: 1 << 30 });
    expect(plan.spans.map((s) => [s.offset, s.length, s.blobs.length])).toEqual([
      [0, 800, 2],
      [800, 1500, 1],
      [2300, 100, 1],
    ]);
    // one file written by three spans: it is complete when all three are
    expect(plan.spansPerFile).toEqual([3]);
  });

  it('cuts a span where it would read through more than maxGap unneeded bytes', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 100, at: 0 },
      { id: H('b'), pack: 'p', length: 100, at: 150 },
      { id: H('c'), pack: 'p', length: 100, at: 5000 },
    ]);
    const files = [file('a', [H('a')], 72), file('b', [H('b')], 72), file('c', [H('c')], 72)];
    const plan = planWindow(files, lookup, { maxSpan: 1 << 20, maxGap: 1000 });
    expect(plan.spans.map((s) => [s.offset, s.length])).toEqual([
      [0, 250],
      [5000, 100],
    ]);
  });

  it('plans nothing to read for empty files', () => {
    const plan = planWindow([file('empty', [], 0)], indexOf([]), WIDE);
    expect(plan.spans).toEqual([]);
    expect(plan.spansPerFile).toEqual([0]);
  });

  it('refuses a chunk the index does not know, naming the file', () => {
    expect(() => planWindow([file('core/a.json', [H('e')], 10)], indexOf([]), WIDE)).toThrow(
      expect.objectContaining({
        name: 'StopError',
        code: 'CHECKSUM_MISMATCH',
        path: 'core/a.json',
        message: expect.stringContaining('is not in the repository index'),
      }),
    );
  });

  it('refuses chunks that do not add up to the recorded size', () => {
    const lookup = indexOf([{ id: H('a'), pack: 'p', length: 40, rawLength: 12 }]);
    expect(() => planWindow([file('core/big.json', [H('a')], 3)], lookup, WIDE)).toThrow(
      expect.objectContaining({
        code: 'CHECKSUM_MISMATCH',
        message: 'core/big.json: its chunks add up to 12 bytes, the backup recorded 3',
      }),
    );
  });
});
