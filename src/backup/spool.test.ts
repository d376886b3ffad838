import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Spool } from './spool.js';

const dir = mkdtempSync(join(tmpdir(), 'fole-spool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const records = (from: number, n: number): { path: string; n: number; prev?: { chunks: string[] } }[] =>
  Array.from({ length: n }, (_, i) => ({ path: `p/${from + i}`, n: from + i, ...((from + i) % 3 === 0 ? { prev: { chunks: ['ab'] } } : {}) }));

async function drain<T>(s: Spool<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const r of s.read()) out.push(r);
  return out;
}

describe('Spool', () => {
  it('keeps a small scan in memory and gives it back in order', async () => {
    const path = join(dir, 'small.ndjson');
    const s = new Spool<ReturnType<typeof records>[number]>(path, 100);
    await s.push(records(0, 60));
    await s.push(records(60, 40));
    await s.end();
    expect(s.spilled).toBe(false);
    expect(existsSync(path)).toBe(false);
    expect(await drain(s)).toEqual(records(0, 100));
  });

  it('moves to disk past its limit and still gives every record back in order, equal to what was pushed', async () => {
    const path = join(dir, 'big.ndjson');
    const s = new Spool<ReturnType<typeof records>[number]>(path, 100);
    await s.push(records(0, 70));
    await s.push(records(70, 70));
    await s.push(records(140, 1000));
    await s.end();
    expect(s.spilled).toBe(true);
    expect(existsSync(path)).toBe(true);
    expect(await drain(s)).toEqual(records(0, 1140));
  });

  it('refuses to be read before it ends and to grow after', async () => {
    const s = new Spool<number>(join(dir, 'x.ndjson'), 10);
    await s.push([1]);
    await expect(drain(s)).rejects.toThrow(/before end/);
    await s.end();
    await expect(s.push([2])).rejects.toThrow(/after end/);
  });
});
