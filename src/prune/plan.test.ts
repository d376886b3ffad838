import { describe, expect, it } from 'vitest';
import { MIN_PACK_AGE_MS, planPrune, type PackContent } from './plan.js';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;

function pack(name: string, blobs: string[]): PackContent {
  return { name, size: blobs.length * 100, blobs: blobs.map((id) => ({ id, length: 100 })) };
}

describe('planPrune', () => {
  const indexed = [pack('p-unused', ['a', 'b']), pack('p-half', ['c', 'd'])];
  const used = new Set(['c']);

  it('deletes unused, half-used and orphan packs once they are older than the safety margin', () => {
    const old = NOW - MIN_PACK_AGE_MS - 1;
    const stored = [
      { name: 'p-unused', size: 200, mtimeMs: old },
      { name: 'p-half', size: 200, mtimeMs: old },
      { name: 'p-orphan', size: 50, mtimeMs: old },
    ];
    const plan = planPrune(indexed, stored, used, { now: NOW });
    expect(plan.remove.sort()).toEqual(['p-half', 'p-orphan', 'p-unused']);
    expect(plan.repack).toEqual([{ pack: 'p-half', blobs: ['c'] }]);
    expect(plan.stats.youngPacks).toBe(0);
  });

  it('leaves packs younger than the margin, or of unknown age, alone — indexed or orphaned — and counts them', () => {
    const stored = [
      { name: 'p-unused', size: 200, mtimeMs: NOW - 10 * 60_000 },
      { name: 'p-half', size: 200 },
      { name: 'p-orphan', size: 50, mtimeMs: NOW - HOUR },
    ];
    const plan = planPrune(indexed, stored, used, { now: NOW });
    expect(plan.remove).toEqual([]);
    expect(plan.repack).toEqual([]);
    expect(plan.keep.sort()).toEqual(['p-half', 'p-unused']);
    expect(plan.stats).toMatchObject({ youngPacks: 3, freedBytes: 0, unusedBytesKept: 300 });
    // a margin of 0 makes every pack of known age old enough
    const now0 = planPrune(indexed, stored, used, { now: NOW, minPackAgeMs: 0 });
    expect(now0.remove.sort()).toEqual(['p-orphan', 'p-unused']);
    expect(now0.stats.youngPacks).toBe(1);
  });
});
