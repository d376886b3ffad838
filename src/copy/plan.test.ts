import { describe, expect, it } from 'vitest';
import { missingBlobs, planCopy } from './plan.js';

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
    const blob = (id: string, pack: string, offset: number) => ({ id, pack, offset, rawLength: 1 });
    const got = missingBlobs(
      [blob('x', 'p2', 0), blob('y', 'p1', 50), blob('z', 'p1', 10), blob('w', 'p1', 0)],
      (id) => id === 'w',
    );
    expect(got.map((b) => b.id)).toEqual(['z', 'y', 'x']);
  });
});
