/**
 * Index files: round trip through encode/decode and the in-memory index, every
 * refusal, and fuzzing (fast-check, fixed seeds): a mutated or arbitrary index
 * value never makes decodeIndexFile (or MasterIndex.addIndexFile, which must
 * agree with it) throw anything but REPO_CORRUPT, and what it accepts the
 * in-memory index holds exactly.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fuzz } from '../../test/fuzz.js';
import { mutateJson, setAt } from '../../test/forge-json.js';
import { createHash } from 'node:crypto';
import { FoleBackupError } from '../errors.js';
import { decodeIndexFile, encodeIndexFile, MasterIndex, type IndexFileData } from './master-index.js';
import type { PackedBlob } from './pack.js';
import { DamageBook } from './damage-book.js';

const SEEDS = [3, 4242, 31337];
const H = (c: string): string => c.repeat(64);

function check<T>(prop: fc.IProperty<T>, numRuns: number): void {
  fuzz(prop, numRuns, SEEDS);
}

const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const u32 = fc.nat({ max: 0xffffffff });
const blob: fc.Arbitrary<PackedBlob> = fc.record({
  id: hex64,
  type: fc.constantFrom('data' as const, 'tree' as const),
  offset: u32,
  length: u32,
  rawLength: u32,
  compression: fc.constantFrom(0, 1),
});
const packs = fc.array(fc.record({ name: hex64, blobs: fc.array(blob, { maxLength: 4 }) }), { maxLength: 3 });

/**
 * decodeIndexFile's result, or undefined if it threw REPO_CORRUPT; anything else
 * fails. MasterIndex.addIndexFile (the loading path, without an object per blob)
 * must agree: the same blobs as decode + addPack, or REPO_CORRUPT and nothing added.
 */
function decodeOrCorrupt(v: unknown): ReturnType<typeof decodeIndexFile> | undefined {
  const direct = new MasterIndex();
  let directError: unknown;
  try {
    direct.addIndexFile(v, 'i');
  } catch (err) {
    directError = err;
  }
  let decoded: ReturnType<typeof decodeIndexFile>;
  try {
    decoded = decodeIndexFile(v, 'i');
  } catch (err) {
    if (!(err instanceof FoleBackupError)) throw new Error(`threw a non-typed error: ${String(err)}`, { cause: err });
    expect(err.code).toBe('REPO_CORRUPT');
    expect(directError).toMatchObject({ code: 'REPO_CORRUPT', message: err.message });
    expect(direct.size).toBe(0);
    return undefined;
  }
  expect(directError).toBeUndefined();
  const viaPacks = new MasterIndex();
  for (const p of decoded) viaPacks.addPack(p.name, p.blobs);
  expect([...direct.entries()]).toEqual([...viaPacks.entries()]);
  return decoded;
}

/** What decodeIndexFile accepted must survive the in-memory index unchanged (u32 fields, 4-bit compression). */
function expectHeldExactly(decoded: ReturnType<typeof decodeIndexFile>): void {
  const index = new MasterIndex();
  const first = new Map<string, PackedBlob & { pack: string }>();
  for (const p of decoded) {
    expect(p.name).toMatch(/^[0-9a-f]{64}$/);
    index.addPack(p.name, p.blobs);
    for (const b of p.blobs) if (!first.has(b.id)) first.set(b.id, { ...b, pack: p.name });
  }
  for (const [id, want] of first) expect(index.get(id)).toEqual(want);
}

describe('index files', () => {
  it('decode what encode wrote, and the in-memory index returns every blob as written', () => {
    check(
      fc.property(packs, (ps) => {
        const decoded = decodeIndexFile(JSON.parse(JSON.stringify(encodeIndexFile(ps))), 'i');
        expect(decoded).toEqual(ps);
        expectHeldExactly(decoded);
      }),
      50,
    );
  });

  // each case: the slot a forged index file changes (see setAt) and what it holds then
  const valid = (): IndexFileData => ({ packs: [{ id: H('a'), blobs: [[H('b'), 0, 0, 100, 72, 1]] }] });
  it.each<[string, string, unknown]>([
    ['a blob type "length" (a key every array has)', 'packs.0.blobs.0.1', 'length'],
    ['a blob type "map"', 'packs.0.blobs.0.1', 'map'],
    ['a blob type "0" as text', 'packs.0.blobs.0.1', '0'],
    ['a blob type 2', 'packs.0.blobs.0.1', 2],
    ['an offset beyond 32 bits', 'packs.0.blobs.0.2', 2 ** 32],
    ['a length beyond 32 bits', 'packs.0.blobs.0.3', 2 ** 40],
    ['a negative raw length', 'packs.0.blobs.0.4', -1],
    ['a fractional offset', 'packs.0.blobs.0.2', 1.5],
    ['an offset of -0 (no encoder writes one; the in-memory index would hold 0)', 'packs.0.blobs.0.2', -0],
    ['a compression of -0', 'packs.0.blobs.0.5', -0],
    ['a type of -0', 'packs.0.blobs.0.1', -0],
    ['compression 17 (would read as zstd in 4 bits)', 'packs.0.blobs.0.5', 17],
    ['compression 2', 'packs.0.blobs.0.5', 2],
    ['a blob id that is not hex', 'packs.0.blobs.0.0', '../x'],
    ['a blob entry of 5 fields', 'packs.0.blobs.0', [H('b'), 0, 0, 100, 72]],
    ['a pack id that is not hex', 'packs.0.id', 'A'.repeat(64)],
    ['blobs that are not a list', 'packs.0.blobs', {}],
    ['a pack that is null', 'packs.0', null],
    ['packs that are not a list', 'packs', 'x'],
    ['a hole in the blob list', 'packs.0.blobs', Object.assign(new Array(2), { 1: [H('b'), 0, 0, 100, 72, 1] })],
  ])('refuses %s with REPO_CORRUPT', (_name, path, value) => {
    const v = valid();
    expect(decodeOrCorrupt(v)).toHaveLength(1);
    setAt(v, path, value);
    expect(decodeOrCorrupt(v)).toBeUndefined();
  });
});

describe('fuzzing decodeIndexFile', () => {
  const change = fc.record({
    which: fc.nat(),
    op: fc.constantFrom('delete' as const, 'set' as const),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom(-1, 1.5, 2 ** 32, 2 ** 53, 'length', 'map', '0', 1, 17, null, [], {}),
    ),
  });

  it('a mutated index yields blobs the in-memory index holds exactly, or REPO_CORRUPT', () => {
    check(
      fc.property(packs, fc.array(change, { minLength: 1, maxLength: 3 }), (ps, changes) => {
        const v = JSON.parse(JSON.stringify(encodeIndexFile(ps))) as unknown;
        mutateJson(v, changes);
        const got = decodeOrCorrupt(v);
        if (got !== undefined) expectHeldExactly(got);
      }),
      150,
    );
  });

  it('any JavaScript value yields blobs the index holds exactly, or REPO_CORRUPT', () => {
    const arb = fc.oneof(
      fc.anything({
        withBigInt: true,
        withBoxedValues: true,
        withMap: true,
        withSet: true,
        withNullPrototype: true,
        withSparseArray: true,
        withTypedArray: true,
      }),
      fc.record({ packs: fc.array(fc.anything({ withSparseArray: true, withNullPrototype: true }), { maxLength: 3 }) }),
      fc.record({
        packs: fc.array(
          fc.record({
            id: hex64,
            blobs: fc.array(fc.array(fc.anything(), { minLength: 6, maxLength: 6 }), { maxLength: 3 }),
          }),
          { maxLength: 2 },
        ),
      }),
    );
    check(
      fc.property(arb, (v) => {
        const got = decodeOrCorrupt(v);
        if (got !== undefined) expectHeldExactly(got);
      }),
      100,
    );
  });
});

describe('MasterIndex', () => {
  const blobOf = (i: number): PackedBlob => ({
    id: createHash('sha256').update(String(i)).digest('hex'),
    type: i % 3 === 0 ? 'tree' : 'data',
    offset: i * 7,
    length: i + 40,
    rawLength: i,
    compression: i % 2,
  });

  it('holds many blobs through its growth, finds each, first location wins, lists them in the order added', () => {
    const index = new MasterIndex();
    const blobs = Array.from({ length: 20_000 }, (_, i) => blobOf(i));
    for (let p = 0; p < 20; p++) index.addPack(H(String(p % 10)), blobs.slice(p * 1000, (p + 1) * 1000));
    // the same blobs again in another pack: already indexed, kept where they were
    index.addPack(H('f'), blobs.slice(0, 5000));
    expect(index.size).toBe(20_000);
    for (let i = 0; i < blobs.length; i += 7) {
      const b = blobs[i] as PackedBlob;
      expect(index.has(b.id)).toBe(true);
      expect(index.get(b.id)).toEqual({ ...b, pack: H(String(Math.floor(i / 1000) % 10)) });
    }
    expect([...index.entries()].map((e) => e.id)).toEqual(blobs.map((b) => b.id));
    expect(index.packs()).toEqual([...Array.from({ length: 10 }, (_, p) => H(String(p))), H('f')]);
  });

  it('answers "no" for ids it does not hold, and for anything that is not a blob id', () => {
    const index = new MasterIndex();
    index.addPack(H('a'), [blobOf(1)]);
    const id = blobOf(1).id;
    for (const other of [
      blobOf(2).id,
      id.slice(0, 62),
      `${id}00`,
      `${id.slice(0, 63)}g`,
      `g${id.slice(1)}`,
      '',
      'latest',
    ]) {
      expect(index.has(other)).toBe(false);
      expect(index.get(other)).toBeUndefined();
    }
    expect(() => index.addPack(H('b'), [{ ...blobOf(3), id: 'not-hex' }])).toThrow(/not 64 hex digits/);
    expect(index.size).toBe(1);
  });
});

describe('MasterIndex with damage records', () => {
  const at = (id: string, offset: number): PackedBlob => ({
    id,
    type: 'data',
    offset,
    length: 10,
    rawLength: 10,
    compression: 0,
  });
  const record = (r: { packs?: string[]; damagedPacks?: string[]; blobs?: [string, string][] }) =>
    new DamageBook(
      new Map([
        [
          'r',
          {
            version: 1 as const,
            createdAt: '2026-12-06T10:00:00.000Z',
            source: 'check' as const,
            packs: r.packs ?? [],
            damagedPacks: r.damagedPacks ?? [],
            blobs: r.blobs ?? [],
            lost: [],
          },
        ],
      ]),
    );

  it('leaves out a recorded blob and every blob of a recorded pack, and says which record did', () => {
    const index = new MasterIndex();
    index.setDamage(record({ packs: [H('1')], blobs: [[H('2'), H('b')]] }));
    index.addPack(H('1'), [at(H('a'), 0)]);
    index.addIndexFile(encodeIndexFile([{ name: H('2'), blobs: [at(H('b'), 0), at(H('c'), 10)] }]), 'f');
    expect(index.has(H('a'))).toBe(false);
    expect(index.has(H('b'))).toBe(false);
    expect(index.get(H('c'))?.pack).toBe(H('2'));
    expect(index.leftOutBy(H('a'))?.source).toBe('check');
    // a copy elsewhere is used
    index.addPack(H('3'), [at(H('a'), 40)]);
    expect(index.get(H('a'))).toMatchObject({ pack: H('3'), offset: 40 });
  });

  it('prefers any other copy of a blob in a damaged pack, and a backup does not count on it', () => {
    const index = new MasterIndex();
    index.setDamage(record({ damagedPacks: [H('1')] }));
    index.addPack(H('1'), [at(H('a'), 0)]);
    // still readable where it is, but not sound for deduplication
    expect(index.get(H('a'))?.pack).toBe(H('1'));
    expect(index.soundPack(H('a'))).toBeUndefined();
    index.addPack(H('2'), [at(H('a'), 20)]);
    expect(index.get(H('a'))).toMatchObject({ pack: H('2'), offset: 20 });
    expect(index.soundPack(H('a'))).toBe(H('2'));
    // and a later copy in another damaged pack does not take its place
    index.addPack(H('1'), [at(H('a'), 0)]);
    expect(index.get(H('a'))?.pack).toBe(H('2'));
    expect(index.size).toBe(1);
  });
});
