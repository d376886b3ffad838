/**
 * Canonical JSON is what every trust signature and digest is computed over: two writers holding the same value
 * must produce the same bytes, and a value outside the subset must be refused rather than given some form.
 */
import { describe, expect, it } from 'vitest';
import { canonicalBytes, canonicalJson, type CanonicalValue } from './canonical.js';

const nested = (depth: number, leaf: CanonicalValue): CanonicalValue => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe('canonical JSON', () => {
  it('writes the RFC 8785 section 3.2.3 sorting vector (keys by UTF-16 code units)', () => {
    const value = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    expect(canonicalJson(value)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('sorts an astral key (surrogate pair, D83D) before a BMP key above it (FB33), unlike code point order', () => {
    // by code point U+1F600 > U+FB33; by UTF-16 code units 0xD83D < 0xFB33: JCS wants the latter
    expect(canonicalJson({ '\ufb33': 1, '\u{1f600}': 2 })).toBe('{"\u{1f600}":2,"\ufb33":1}');
    expect(canonicalJson({ b: 1, a: 2, B: 3, _: 4, '': 5 })).toBe('{"":5,"B":3,"_":4,"a":2,"b":1}');
  });

  it('writes the RFC 8785 section 3.2.2 sample, less its floats', () => {
    const parsed = JSON.parse(
      '{"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(parsed)).toBe(
      '{"literals":[null,true,false],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('writes integers in their shortest form, -0 as 0, and the safe integer bounds exactly', () => {
    expect(canonicalJson([0, -0, 1, -1, 9007199254740991, -9007199254740991])).toBe(
      '[0,0,1,-1,9007199254740991,-9007199254740991]',
    );
    expect(canonicalJson({ a: -0 })).toBe('{"a":0}');
  });

  it('escapes control characters, quotes and backslashes, and leaves U+2028, U+2029, DEL and "/" alone', () => {
    expect(canonicalJson('\u0000\u0001\u0008\u0009\u000a\u000b\u000c\u000d\u001f')).toBe(
      '"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f"',
    );
    expect(canonicalJson('"\\')).toBe('"\\"\\\\"');
    expect(canonicalJson('\u2028\u2029\u007f/')).toBe('"\u2028\u2029\u007f/"');
    expect(canonicalBytes('\u2028')).toEqual(Buffer.from([0x22, 0xe2, 0x80, 0xa8, 0x22]));
  });

  it('sorts nested objects too, keeps array order, and leaves out keys whose value is undefined', () => {
    const v = { z: [{ y: 1, x: { b: true, a: null } }, 'k'], a: { d: undefined, c: [] } };
    expect(canonicalJson(v)).toBe('{"a":{"c":[]},"z":[{"x":{"a":null,"b":true},"y":1},"k"]}');
  });

  it('gives identical bytes for the same value whatever order its keys were inserted in', () => {
    const keys = ['\u{1f600}', 'b', '\u00e9', 'a', '10', '9', 'A', '\ufb33'];
    const build = (order: string[]): Record<string, CanonicalValue> => {
      const o: Record<string, CanonicalValue> = {};
      for (const k of order) o[k] = { [`${k}2`]: k, [`${k}1`]: [k] };
      return o;
    };
    const forward = canonicalBytes(build(keys));
    expect(canonicalBytes(build([...keys].reverse()))).toEqual(forward);
    expect(canonicalBytes(build([...keys.slice(3), ...keys.slice(0, 3)]))).toEqual(forward);
    // and the bytes are JSON of that same value
    expect(JSON.parse(forward.toString('utf8'))).toEqual(build(keys));
  });

  it('accepts an object without a prototype', () => {
    const o = Object.create(null) as Record<string, CanonicalValue>;
    o.b = 1;
    o.a = 2;
    expect(canonicalJson(o)).toBe('{"a":2,"b":1}');
  });

  it('refuses numbers outside the safe integers', () => {
    for (const n of [
      1.5,
      0.1,
      -2.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      2 ** 53,
      -(2 ** 53),
    ])
      expect(() => canonicalJson({ n }), String(n)).toThrow(/is not a safe integer/);
  });

  it('refuses undefined in an array, a hole in an array, and values with no JSON form', () => {
    expect(() => canonicalJson([1, undefined as unknown as CanonicalValue])).toThrow(/undefined has no JSON form/);
    // biome-ignore lint/suspicious/noSparseArray: a hole must be refused, not printed as "[1,,2]"
    const sparse = [1, , 2] as unknown as CanonicalValue;
    expect(() => canonicalJson(sparse)).toThrow(/undefined has no JSON form/);
    expect(() => canonicalJson(undefined as unknown as CanonicalValue)).toThrow(/undefined has no JSON form/);
    expect(() => canonicalJson(10n as unknown as CanonicalValue)).toThrow(/bigint has no JSON form/);
    expect(() => canonicalJson({ f: (() => 1) as unknown as CanonicalValue })).toThrow(/function has no JSON form/);
    expect(() => canonicalJson({ s: Symbol('x') as unknown as CanonicalValue })).toThrow(/symbol has no JSON form/);
  });

  it('refuses objects that are not plain: a Date, a Buffer, a Map, a class instance', () => {
    class Point {
      x = 1;
    }
    for (const v of [new Date(0), Buffer.from('ab'), new Map([['a', 1]]), new Set([1]), new Point(), /re/])
      expect(() => canonicalJson({ v: v as unknown as CanonicalValue }), String(v)).toThrow(/not a plain object/);
  });

  it('refuses a lone surrogate in a value or a key, at either end', () => {
    for (const s of ['\ud800', 'a\udc00', '\udc00\ud800', 'x\ud83d']) {
      expect(() => canonicalJson(s), JSON.stringify(s)).toThrow(/string holds a lone surrogate/);
      expect(() => canonicalJson({ [s]: 1 }), JSON.stringify(s)).toThrow(/key holds a lone surrogate/);
    }
    // a key whose value is undefined is left out before its name is looked at, so it cannot smuggle one in
    expect(canonicalJson({ '\ud800': undefined })).toBe('{}');
    expect(canonicalJson('\ud83d\ude00')).toBe('"\u{1f600}"');
  });

  it('refuses nesting deeper than 32 levels (and so a cycle) without exhausting the stack', () => {
    expect(canonicalJson(nested(32, 1))).toBe(`${'['.repeat(32)}1${']'.repeat(32)}`);
    expect(() => canonicalJson(nested(33, 1))).toThrow(/nested too deeply/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic as CanonicalValue)).toThrow(/nested too deeply/);
    expect(() => canonicalJson(nested(100_000, null))).toThrow(/nested too deeply/);
  });

  it('canonicalBytes is the UTF-8 of canonicalJson', () => {
    const v = { '\u00e9': '\u{1f600}' };
    expect(canonicalBytes(v)).toEqual(Buffer.from('{"\u00e9":"\u{1f600}"}', 'utf8'));
    // {"é":"😀"}: 7 ASCII bytes, 2 for é, 4 for the emoji
    expect(canonicalBytes(v).length).toBe(13);
  });
});
