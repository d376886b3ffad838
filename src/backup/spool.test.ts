import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deferred } from '../concurrency/deferred.js';
import { Spool } from './spool.js';

const dir = mkdtempSync(join(tmpdir(), 'fole-spool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Rec = { path: string; n: number; prev?: { chunks: string[] } };
const records = (from: number, n: number): Rec[] =>
  Array.from({ length: n }, (_, i) => ({
    path: `p/${from + i}`,
    n: from + i,
    ...((from + i) % 3 === 0 ? { prev: { chunks: ['ab'] } } : {}),
  }));

async function drain<T>(s: Spool<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const r of s.read()) out.push(r);
  return out;
}

describe('Spool', () => {
  it('keeps a small scan in memory and gives it back in order', async () => {
    const sub = mkdtempSync(join(dir, 'small-'));
    const s = new Spool<Rec>(join(sub, 'scan'), { budget: 100, segmentRecords: 16 });
    await s.push(records(0, 60));
    await s.push(records(60, 40));
    await s.end();
    expect(s.spilled).toBe(false);
    expect(readdirSync(sub)).toEqual([]);
    expect(await drain(s)).toEqual(records(0, 100));
  });

  it(
    'puts what does not fit in memory into segment files and still gives every record back, ' + 'in order and equal',
    async () => {
      const sub = mkdtempSync(join(dir, 'big-'));
      const s = new Spool<Rec>(join(sub, 'scan'), { budget: 100, segmentRecords: 16 });
      await s.push(records(0, 70));
      await s.push(records(70, 70));
      await s.push(records(140, 1000));
      await s.end();
      expect(s.spilled).toBe(true);
      expect(readdirSync(sub).length).toBeGreaterThan(10);
      expect(await drain(s)).toEqual(records(0, 1140));
      // each segment file is removed once read
      expect(readdirSync(sub)).toEqual([]);
    },
  );

  it('is read while it is being filled, and a stalled reader makes it spill rather than grow', async () => {
    const sub = mkdtempSync(join(dir, 'live-'));
    const s = new Spool<Rec>(join(sub, 'scan'), { budget: 100, segmentRecords: 16 });
    const got: Rec[] = [];
    const firstFive = deferred();
    const stalled = deferred();
    const reader = (async () => {
      for await (const r of s.read()) {
        got.push(r);
        if (got.length === 5) firstFive.resolve();
        if (got.length === 10) await stalled.promise; // a database entry waiting for the capture
      }
    })();
    await s.push(records(0, 5));
    // the reader gets them though a segment holds 16: it does not wait for a whole one
    await firstFive.promise;
    expect(got).toEqual(records(0, 5));
    expect(s.spilled).toBe(false);
    for (let i = 5; i < 1000; i += 5) await s.push(records(i, 5));
    expect(got).toEqual(records(0, 10));
    expect(s.spilled).toBe(true);
    expect(readdirSync(sub).length).toBeGreaterThan(0);
    stalled.resolve();
    await s.end();
    await reader;
    expect(got).toEqual(records(0, 1000));
  });

  it('gives the producer failure to the reader, and refuses to grow after it ends', async () => {
    const s = new Spool<number>(join(dir, 'x'), { budget: 10, segmentRecords: 4 });
    await s.push([1, 2]);
    const reading = drain(s);
    s.fail(new Error('scan failed'));
    await expect(reading).rejects.toThrow(/scan failed/);
    const t = new Spool<number>(join(dir, 'y'), { budget: 10, segmentRecords: 4 });
    await t.end();
    await expect(t.push([2])).rejects.toThrow(/after end/);
  });
});
