/**
 * The byte-level index reader (index-bytes.ts) against the JSON path it stands in for:
 * on any bytes, MasterIndex.addIndexBytes must end exactly as JSON.parse + addIndexFile
 * does — the same blobs at the same places, or REPO_CORRUPT and nothing added.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fuzz } from '../../test/fuzz.js';
import { FoleBackupError } from '../errors.js';
import { countIndexBlobs } from './index-bytes.js';
import { encodeIndexFile, type IndexEntry, MasterIndex, parseIndexJson } from './master-index.js';
import type { PackedBlob } from './pack.js';

const SEEDS = [5, 777, 90210];
const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const blob: fc.Arbitrary<PackedBlob> = fc.record({
  id: hex64,
  type: fc.constantFrom('data' as const, 'tree' as const),
  offset: fc.nat({ max: 0xffffffff }),
  length: fc.nat({ max: 0xffffffff }),
  rawLength: fc.nat({ max: 0xffffffff }),
  compression: fc.constantFrom(0, 1),
});
const packs = fc.array(fc.record({ name: hex64, blobs: fc.array(blob, { maxLength: 5 }) }), { maxLength: 4 });

const written = (ps: { name: string; blobs: PackedBlob[] }[]): Buffer =>
  Buffer.from(JSON.stringify(encodeIndexFile(ps)), 'utf8');

/** What loading `bytes` into a fresh index leaves: its entries, or 'REPO_CORRUPT'. */
function outcome(load: (index: MasterIndex) => void): IndexEntry[] | 'REPO_CORRUPT' {
  const index = new MasterIndex();
  try {
    load(index);
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'REPO_CORRUPT') {
      expect([...index.entries()]).toEqual([]);
      return 'REPO_CORRUPT';
    }
    throw err;
  }
  return [...index.entries()];
}

function viaBytes(bytes: Buffer): IndexEntry[] | 'REPO_CORRUPT' {
  return outcome((index) => index.addIndexBytes(bytes, 'i'));
}

function viaJson(bytes: Buffer): IndexEntry[] | 'REPO_CORRUPT' {
  return outcome((index) => index.addIndexFile(parseIndexJson(bytes, 'i'), 'i'));
}

describe('reading index files from their bytes', () => {
  it('reads what the writer wrote without JSON, and exactly as the JSON path does', () => {
    fuzz(
      fc.property(packs, (ps) => {
        const bytes = written(ps);
        expect(countIndexBlobs(bytes)).toBe(ps.reduce((n, p) => n + p.blobs.length, 0));
        expect(viaBytes(bytes)).toEqual(viaJson(bytes));
      }),
      60,
      SEEDS,
    );
  });

  it('takes valid JSON in another form (spaces, key order) through the JSON path, with the same result', () => {
    const ps = [
      {
        name: 'a'.repeat(64),
        blobs: [{ id: 'b'.repeat(64), type: 'data' as const, offset: 0, length: 9, rawLength: 7, compression: 1 }],
      },
    ];
    const spaced = Buffer.from(JSON.stringify(encodeIndexFile(ps), null, 2));
    const reordered = Buffer.from(`{"packs":[{"blobs":[["${'b'.repeat(64)}",0,0,9,7,1]],"id":"${'a'.repeat(64)}"}]}`);
    for (const bytes of [spaced, reordered]) {
      expect(countIndexBlobs(bytes)).toBeUndefined();
      const got = viaBytes(bytes);
      expect(got).toEqual(viaJson(bytes));
      expect(got).toHaveLength(1);
    }
  });

  const base = `{"packs":[{"id":"${'a'.repeat(64)}","blobs":[["${'b'.repeat(64)}",0,10,20,30,1]]}]}`;
  it.each<[string, string]>([
    ['a capital in a blob id', base.replace('b'.repeat(64), `B${'b'.repeat(63)}`)],
    ['a capital in a pack id', base.replace('a'.repeat(64), `A${'a'.repeat(63)}`)],
    ['a short blob id', base.replace('b'.repeat(64), 'b'.repeat(63))],
    ['blob type 2', base.replace('",0,10', '",2,10')],
    ['compression 2', base.replace(',30,1]', ',30,2]')],
    ['an offset of 2^32', base.replace(',10,20', ',4294967296,20')],
    ['an offset of 2^32 - 1 (valid)', base.replace(',10,20', ',4294967295,20')],
    ['a leading zero', base.replace(',10,20', ',010,20')],
    ['a negative length', base.replace(',20,30', ',-20,30')],
    ['a fraction', base.replace(',20,30', ',20.5,30')],
    ['an exponent', base.replace(',20,30', ',2e1,30')],
    ['five fields', base.replace(',30,1]', ',30]')],
    ['seven fields', base.replace(',30,1]', ',30,1,1]')],
    ['a truncated file', base.slice(0, -3)],
    ['trailing bytes', `${base} `],
    ['trailing garbage', `${base}x`],
    ['an extra key', base.replace('{"packs"', '{"v":1,"packs"')],
    ['an escaped id', base.replace('a'.repeat(64), `\\u0061${'a'.repeat(63)}`)],
    ['no packs key', '{"pack":[]}'],
    ['an empty index', '{"packs":[]}'],
    ['a pack without blobs', `{"packs":[{"id":"${'a'.repeat(64)}","blobs":[]}]}`],
    ['a trailing comma', base.replace(']]}]}', '],]}]}')],
    ['not JSON at all', '\u0000\u0001'],
  ])('%s: the same as the JSON path', (_name, text) => {
    const bytes = Buffer.from(text, 'utf8');
    expect(viaBytes(bytes)).toEqual(viaJson(bytes));
  });

  it('any corruption of a written file: the same as the JSON path', () => {
    fuzz(
      fc.property(
        packs,
        fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 3 }),
        (ps, flips) => {
          const bytes = written(ps);
          for (const f of flips) bytes[f.at % bytes.length] = f.byte;
          expect(viaBytes(bytes)).toEqual(viaJson(bytes));
        },
      ),
      200,
      SEEDS,
    );
  });
});
