/**
 * The string form of byte names (src/fs/byte-names.ts): every byte string
 * round-trips exactly, distinct names get distinct strings (so tree order stays
 * a strict total order over byte paths), plain UTF-8 is left as it is, and only
 * canonical forms are accepted.
 */
import fc from 'fast-check';
import { fuzz } from '../../test/fuzz.js';
import { describe, expect, it } from 'vitest';
import { comparePaths } from '../snapshot/snapshot.js';
import { bytesOfName, fsPath, isCanonicalName, isPlainName, nameByteLength, nameFromBytes } from './byte-names.js';

const SEEDS = [1, 42, 20240601];
const check = <T>(prop: fc.IProperty<T>, numRuns = 500): void => fuzz(prop, numRuns, SEEDS);
/** Bytes of a name: biased towards the bytes that make UTF-8 sequences, valid or broken. */
const nameBytes = fc
  .array(
    fc.oneof(
      fc.integer({ min: 1, max: 0xff }),
      fc.constantFrom(0x80, 0xbf, 0xc2, 0xc3, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x5c),
    ),
    { maxLength: 12 },
  )
  .map((a) => Buffer.from(a.map((b) => (b === 0x2f ? 0x2e : b))));

describe('the string form of a name', () => {
  it('gives back exactly the bytes it was made from, and is canonical', () => {
    check(
      fc.property(nameBytes, (b) => {
        const s = nameFromBytes(b);
        expect(bytesOfName(s)?.equals(b)).toBe(true);
        expect(isCanonicalName(s)).toBe(true);
        expect(nameByteLength(s)).toBe(b.length);
      }),
    );
  });

  it('is plain UTF-8, unchanged, for a name that is UTF-8 (a leading BOM and U+FFFD included)', () => {
    for (const s of ['core.db', 'a\\b', '\ufeffbom', 'f\ufffd\ufffd', '名前', '\ud83d\udc80']) {
      expect(nameFromBytes(Buffer.from(s, 'utf8'))).toBe(s);
      expect(isPlainName(s)).toBe(true);
      expect(fsPath(s)).toBe(s);
    }
  });

  it('escapes each byte that is not part of a UTF-8 sequence, and only those', () => {
    expect(nameFromBytes(Buffer.from([0x66, 0xff, 0xfe]))).toBe('f\udcff\udcfe');
    expect(nameFromBytes(Buffer.from([0xc3, 0x28]))).toBe('\udcc3(');
    // a surrogate encoded in UTF-8 (CESU) and an overlong '/' are not UTF-8
    expect(nameFromBytes(Buffer.from([0xed, 0xb2, 0x80]))).toBe('\udced\udcb2\udc80');
    expect(nameFromBytes(Buffer.from([0xc0, 0xaf]))).toBe('\udcc0\udcaf');
    expect(nameFromBytes(Buffer.from([0xe2, 0x82, 0xac, 0xe2, 0x82]))).toBe('€\udce2\udc82');
    expect(fsPath('a/f\udcff')).toEqual(Buffer.from([0x61, 0x2f, 0x66, 0xff]));
  });

  it('gives distinct names distinct strings, so tree order is strict over byte paths', () => {
    check(
      fc.property(nameBytes, nameBytes, (a, b) => {
        const c = comparePaths(nameFromBytes(a), nameFromBytes(b));
        expect(c === 0).toBe(a.equals(b));
        expect(Math.sign(comparePaths(nameFromBytes(b), nameFromBytes(a))) === -Math.sign(c)).toBe(true);
      }),
    );
  });

  it('refuses forms that are not what their bytes decode to, or no bytes at all', () => {
    // C3 A9 is "é": its escape would name the same file as "é"
    expect(isCanonicalName('caf\udcc3\udca9')).toBe(false);
    expect(isCanonicalName('\udc41')).toBe(false);
    expect(isCanonicalName('a\ud800')).toBe(false);
    expect(bytesOfName('a\ud800')).toBeUndefined();
    expect(bytesOfName('\udc7f')).toBeUndefined();
    check(
      fc.property(fc.string({ unit: 'binary', maxLength: 8 }), (s) => {
        const b = bytesOfName(s);
        if (isCanonicalName(s)) expect(nameFromBytes(b as Buffer)).toBe(s);
        else if (b !== undefined) expect(nameFromBytes(b)).not.toBe(s);
      }),
    );
  });
});
