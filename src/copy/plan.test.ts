import { describe, expect, it } from 'vitest';
import { missingBlobs, planCopy, planSpans } from './plan.js';

describe('planCopy', () => {
  const source = ['a', 'b', 'c', 'd'];

  it('copies every backup of the source the target lacks, oldest first', () => {
    expect(planCopy(source, undefined, new Set(['b']))).toEqual({ copy: ['a', 'c', 'd'], skip: ['b'] });
  });

  it('copies only those asked for, in the source order, each once', () => {
    expect(planCopy(source, ['d', 'a', 'd'], new Set())).toEqual({ copy: ['a', 'd'], skip: [] });
  });

  it('skips what the target has: a second run copies nothing', () => {
    expect(planCopy(source, undefined, new Set(source))).toEqual({ copy: [], skip: source });
    expect(planCopy(source, ['c'], new Set(['c']))).toEqual({ copy: [], skip: ['c'] });
  });

  it('ignores backups of the target the source does not have', () => {
    expect(planCopy(['a'], undefined, new Set(['z']))).toEqual({ copy: ['a'], skip: [] });
  });
});

describe('missingBlobs', () => {
  it('keeps the blobs the target lacks, pack by pack in offset order', () => {
    const blob = (id: string, pack: string, offset: number) => ({ id, pack, offset, length: 10, rawLength: 1 });
    const got = missingBlobs(
      [blob('x', 'p2', 0), blob('y', 'p1', 50), blob('z', 'p1', 10), blob('w', 'p1', 0)],
      (id) => id === 'w',
    );
    expect(got.map((b) => b.id)).toEqual(['z', 'y', 'x']);
  });
});

describe('planSpans', () => {
  const blob = (id: string, pack: string, offset: number, length = 10) => ({ id, pack, offset, length, rawLength: 1 });
  const spans = (blobs: ReturnType<typeof blob>[], maxSpan = 100, maxGap = 20) =>
    planSpans(blobs, maxSpan, maxGap).map((s) => [s.pack, s.offset, s.length, s.blobs.map((b) => b.id).join('')]);

  it('reads the blobs of one pack together, gaps between them included', () => {
    expect(spans([blob('a', 'p1', 0), blob('b', 'p1', 10), blob('c', 'p1', 30), blob('d', 'p2', 0)])).toEqual([
      ['p1', 0, 40, 'abc'],
      ['p2', 0, 10, 'd'],
    ]);
  });

  it('starts another read past a long gap, and before a span grows too large', () => {
    expect(spans([blob('a', 'p1', 0), blob('b', 'p1', 31)])).toEqual([
      ['p1', 0, 10, 'a'],
      ['p1', 31, 10, 'b'],
    ]);
    expect(spans([blob('a', 'p1', 0, 60), blob('b', 'p1', 60, 60), blob('c', 'p1', 120, 30)])).toEqual([
      ['p1', 0, 60, 'a'],
      ['p1', 60, 90, 'bc'],
    ]);
  });

  it('gives a blob larger than a span its own read', () => {
    expect(spans([blob('a', 'p1', 0, 10), blob('b', 'p1', 10, 500), blob('c', 'p1', 510, 10)])).toEqual([
      ['p1', 0, 10, 'a'],
      ['p1', 10, 500, 'b'],
      ['p1', 510, 10, 'c'],
    ]);
  });
});
