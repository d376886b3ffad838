import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COMPRESSION_NONE,
  COMPRESSION_ZSTD,
  compressBound,
  compressInto,
  decompress,
  maybeCompress,
} from './compress.js';

/** Bytes that compress a little, a lot or not at all: repeated words, noise, or both. */
const content = fc.oneof(
  fc.uint8Array({ maxLength: 70_000 }),
  fc
    .tuple(fc.string({ maxLength: 40 }), fc.integer({ min: 0, max: 3000 }))
    .map(([w, n]) => new Uint8Array(Buffer.from(w.repeat(n)))),
  fc
    .tuple(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 0, max: 20_000 }))
    .map(([a, b]) => new Uint8Array(Buffer.concat([Buffer.alloc(a, 7), randomBytes(b)]))),
);

describe('compressInto', () => {
  it('takes the same decision as maybeCompress, and what it writes decompresses to the input', () => {
    // one destination reused for every input, as a file worker does
    const dst = Buffer.alloc(compressBound(70_000));
    fc.assert(
      fc.property(content, (data) => {
        const n = compressInto(data, dst);
        const expected = maybeCompress(data);
        if (expected.compression === COMPRESSION_NONE) {
          expect(n).toBe(-1);
          return;
        }
        expect(expected.compression).toBe(COMPRESSION_ZSTD);
        expect(n).toBeGreaterThan(0);
        expect(n).toBeLessThanOrEqual(data.length - (data.length >> 4));
        expect(decompress(dst.subarray(0, n), COMPRESSION_ZSTD, data.length, 'test').equals(Buffer.from(data))).toBe(
          true,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('stores PNG tiles, short and random data as they are', () => {
    const dst = Buffer.alloc(compressBound(1 << 20));
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(8192)]);
    expect(compressInto(png, dst)).toBe(-1);
    expect(compressInto(Buffer.alloc(255), dst)).toBe(-1);
    expect(compressInto(randomBytes(1 << 20), dst)).toBe(-1);
    expect(compressInto(Buffer.alloc(1 << 20), dst)).toBeGreaterThan(0);
  });
});

describe('decompress', () => {
  const data = Buffer.from('a tile, a tile, a tile, a tile, a tile, '.repeat(200));
  const packed = maybeCompress(data);

  it('gives back the raw bytes, with one context reused from call to call', () => {
    expect(packed.compression).toBe(COMPRESSION_ZSTD);
    for (let i = 0; i < 3; i++)
      expect(decompress(packed.bytes, COMPRESSION_ZSTD, data.length, 'blob').equals(data)).toBe(true);
  });

  it('refuses a blob that holds more, or fewer, bytes than its recorded length, and garbage', () => {
    const corrupt = (bytes: Uint8Array, rawLength: number) => {
      try {
        decompress(bytes, COMPRESSION_ZSTD, rawLength, 'blob 1234');
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return 'no error';
    };
    expect(corrupt(packed.bytes, data.length - 1)).toBe('REPO_CORRUPT');
    expect(corrupt(packed.bytes, data.length + 1)).toBe('REPO_CORRUPT');
    expect(corrupt(randomBytes(200), 1000)).toBe('REPO_CORRUPT');
    expect(corrupt(packed.bytes.subarray(0, packed.bytes.length - 3), data.length)).toBe('REPO_CORRUPT');
    // and the context still works after each refusal
    expect(decompress(packed.bytes, COMPRESSION_ZSTD, data.length, 'blob').equals(data)).toBe(true);
  });

  it("puts the bytes at the start of the caller's buffer when it holds them, else into one of its own", () => {
    const into = new Uint8Array(data.length + 100).fill(9);
    const got = decompress(packed.bytes, COMPRESSION_ZSTD, data.length, 'blob', into);
    expect(got.equals(data)).toBe(true);
    expect(got.buffer).toBe(into.buffer);
    expect(got.byteOffset).toBe(0);
    // the bytes after the blob's are left alone
    expect(into[data.length]).toBe(9);
    const small = new Uint8Array(data.length - 1);
    const own = decompress(packed.bytes, COMPRESSION_ZSTD, data.length, 'blob', small);
    expect(own.buffer).not.toBe(small.buffer);
    expect(own.equals(data)).toBe(true);
    // a frame that holds more than its recorded length fails there too, whatever room the buffer has
    expect(() => decompress(packed.bytes, COMPRESSION_ZSTD, data.length - 1, 'blob', into)).toThrow(
      expect.objectContaining({ code: 'REPO_CORRUPT' }),
    );
  });
});
