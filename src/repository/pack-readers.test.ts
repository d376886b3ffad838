import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FaultInjectingBackend } from '../backend/fault.js';
import { LocalBackend } from '../backend/local.js';
import { openUnder } from '../host/open-files.js';
import { PackReaders } from './pack-readers.js';

describe('PackReaders', () => {
  let dir: string;
  let backend: LocalBackend;
  const packs = ['aa01', 'bb02', 'cc03', 'dd04'].map((p) => p + '0'.repeat(60));
  const data = new Map<string, Buffer>();

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fole-pack-readers-'));
    backend = new LocalBackend(join(dir, 'repo'));
    await backend.create();
    for (const p of packs) {
      data.set(p, randomBytes(10_000));
      await backend.save({ type: 'data', name: p }, data.get(p) as Buffer);
    }
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads spans of many packs with at most `keep` packs left open, none after close', async () => {
    const readers = new PackReaders(backend, 2);
    for (let round = 0; round < 3; round++) {
      for (const p of packs) {
        const got = await Promise.all([0, 2500, 5000].map((offset) => readers.read(p, { offset, length: 2500 })));
        expect(Buffer.concat(got).equals((data.get(p) as Buffer).subarray(0, 7500))).toBe(true);
        // an idle pack past the bound is closed right after the read that made it one
        await vi.waitFor(() => expect(openUnder(dir).size).toBeLessThanOrEqual(2));
      }
    }
    await vi.waitFor(() => expect(openUnder(dir).size).toBe(2));
    await readers.close();
    expect(openUnder(dir)).toEqual(new Map());
    // after close, reads still work (through load) and leave nothing open
    expect(
      (await readers.read(packs[0] as string, { offset: 0, length: 10 })).equals(
        (data.get(packs[0] as string) as Buffer).subarray(0, 10),
      ),
    ).toBe(true);
    expect(openUnder(dir)).toEqual(new Map());
  });

  it('keeps a pack that is being read open past the bound, and closes it once it is idle', async () => {
    const readers = new PackReaders(backend, 1);
    const reads = packs.map((p) => readers.read(p, { offset: 0, length: 10_000 }));
    await Promise.all(reads);
    await vi.waitFor(() => expect(openUnder(dir).size).toBe(1));
    await readers.close();
    expect(openUnder(dir)).toEqual(new Map());
  });

  it('with keep 0, shares a pack among reads under way together and leaves nothing open after them', async () => {
    const readers = new PackReaders(backend, 0);
    const p = packs[1] as string;
    const got = await Promise.all([0, 1000, 2000, 3000].map((offset) => readers.read(p, { offset, length: 1000 })));
    expect(Buffer.concat(got).equals((data.get(p) as Buffer).subarray(0, 4000))).toBe(true);
    await vi.waitFor(() => expect(openUnder(dir)).toEqual(new Map()));
  });

  it('reports a missing pack as load does, and does not keep it', async () => {
    const readers = new PackReaders(backend, 4);
    const missing = `ee05${'0'.repeat(60)}`;
    await expect(readers.read(missing, { offset: 0, length: 1 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(readers.read(packs[0] as string, { offset: 9_999, length: 2 })).rejects.toMatchObject({
      code: 'REPO_CORRUPT',
    });
    await backend.save({ type: 'data', name: missing }, Buffer.from('now here'));
    expect((await readers.read(missing, { offset: 4, length: 4 })).toString()).toBe('here');
    await readers.close();
  });

  it('reads through load() when the backend has no openReader (a fault-injecting wrapper)', async () => {
    const faulty = new FaultInjectingBackend(backend).flipBitOnLoad((h) => h.type === 'data', { offset: 0, bit: 0 });
    const readers = new PackReaders(faulty, 4);
    const p = packs[0] as string;
    const got = await readers.read(p, { offset: 0, length: 4 });
    expect(got[0]).toBe(((data.get(p) as Buffer)[0] as number) ^ 1);
    expect(openUnder(dir)).toEqual(new Map());
    await readers.close();
  });
});
