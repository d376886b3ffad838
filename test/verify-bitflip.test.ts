/**
 * One flipped bit anywhere in any pack of a local repository — in a blob, in
 * the sealed header, in the length trailer — is always found by both
 * `verify --read-data` and `check --read-data`, and named by its pack. The
 * pack file is rewritten on disk and restored between rounds; offsets and bits
 * come from a seeded generator (printed on failure), spread over the three
 * regions.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRepository } from '../src/verify/check-repository.js';
import { verifyBackup } from '../src/verify/verify-backup.js';
import { clearDamageRecords, makeFixture, type Fixture } from './verify-fixture.js';

/** mulberry32: a small seeded PRNG, so a failing round can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROUNDS = 25;
const SEED = Number(process.env.FOLE_BITFLIP_SEED ?? 20261126);

let fx: Fixture;

beforeAll(async () => {
  fx = await makeFixture({ packSize: 48 * 1024 });
});

afterAll(() => fx.cleanup());

describe('bit flips in packs', () => {
  it(`are always detected by verify --read-data and check --read-data (${ROUNDS} random offsets)`, async () => {
    const rand = prng(SEED);
    const packs = fx.packs();
    expect(packs.length).toBeGreaterThanOrEqual(3);
    const regions = { blob: 0, header: 0, trailer: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const file = packs[Math.floor(rand() * packs.length)] as string;
      const name = basename(file);
      const original = readFileSync(file);
      const headerLen = original.readUInt32LE(original.length - 4);
      const dataEnd = original.length - 4 - headerLen;
      // every fifth round in the trailer, every fifth in the header, the rest in blob data
      const region = round % 5 === 0 ? 'trailer' : round % 5 === 1 ? 'header' : 'blob';
      const [from, to] =
        region === 'trailer'
          ? [original.length - 4, original.length]
          : region === 'header'
            ? [dataEnd, original.length - 4]
            : [0, dataEnd];
      const offset = from + Math.floor(rand() * (to - from));
      const bit = Math.floor(rand() * 8);
      regions[region]++;
      const damaged = Buffer.from(original);
      damaged[offset] = (damaged[offset] ?? 0) ^ (1 << bit);
      writeFileSync(file, damaged);
      const what =
        `round ${round} (seed ${SEED}): pack ${name.slice(0, 12)} offset ${offset}/${original.length}` +
        ` (${region}) bit ${bit}`;
      try {
        const repo = await fx.open();
        const v = await verifyBackup(repo, fx.backupId, { readData: true });
        await repo.close();
        expect(v.ok, what).toBe(false);
        expect(
          v.problems.some((p) => p.object === `data/${name}`),
          what,
        ).toBe(true);
        expect(v.problemCodes.CHECKSUM_MISMATCH, what).toBeGreaterThan(0);

        const repo2 = await fx.open();
        const c = await checkRepository(repo2, { readData: true });
        await repo2.close();
        expect(c.ok, what).toBe(false);
        expect(
          c.problems.some((p) => p.object === `data/${name}` && p.code === 'CHECKSUM_MISMATCH'),
          what,
        ).toBe(true);
      } finally {
        writeFileSync(file, original);
        // check recorded the damage: undone with it, so each round starts sound
        clearDamageRecords(fx.repoDir);
      }
    }
    expect(regions.trailer).toBeGreaterThan(0);
    expect(regions.header).toBeGreaterThan(0);
    expect(regions.blob).toBeGreaterThan(0);

    // and with every pack restored, both are clean again
    const repo = await fx.open();
    expect((await verifyBackup(repo, fx.backupId, { readData: true })).problems).toEqual([]);
    expect((await checkRepository(repo, { readData: true })).problems).toEqual([]);
    await repo.close();
  });
});
