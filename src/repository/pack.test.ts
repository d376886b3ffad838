/**
 * Pack headers: round trip, every refusal, and fuzzing (fast-check, fixed
 * seeds): a damaged or forged pack tail never makes parsePackHeader throw
 * anything but a typed error, and never yields a header that is not the one
 * written unless it is internally consistent.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fuzz } from '../../test/fuzz.js';
import { createHash, randomBytes } from 'node:crypto';
import { seal, SEAL_OVERHEAD } from '../crypto/aead.js';
import { FoleBackupError } from '../errors.js';
import { AAD } from './format.js';
import { HEADER_ENTRY_BYTES, PackBuilder, parsePackHeader, type PackedBlob } from './pack.js';

const KEY = randomBytes(32);
const SEEDS = [7, 1234, 99991];

function check<T>(prop: fc.IProperty<T>, numRuns: number): void {
  fuzz(prop, numRuns, SEEDS);
}

/** A pack of `n` blobs of the given sizes (content is random; only lengths matter to the header). */
function buildPack(sizes: readonly number[]): { name: string; bytes: Buffer; blobs: PackedBlob[] } {
  const b = new PackBuilder();
  sizes.forEach((size, i) => {
    const sealed = seal(KEY, randomBytes(size), AAD.blob(i % 2 === 0 ? 'data' : 'tree', Buffer.alloc(32, i)));
    b.add(randomBytes(32).toString('hex'), i % 2 === 0 ? 'data' : 'tree', sealed, size, i % 2);
  });
  const { name, parts, size, blobs } = b.finish(KEY);
  const bytes = Buffer.concat(parts);
  expect(bytes.length).toBe(size);
  return { name, bytes, blobs };
}

/** A pack whose header plaintext is `header` (sealed with the right key): what only a key holder could forge. */
function forgedTail(blobBytes: number, header: Buffer): Buffer {
  const sealed = seal(KEY, header, AAD.packHeader);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32LE(sealed.length, 0);
  return Buffer.concat([Buffer.alloc(blobBytes), sealed, trailer]);
}

function entry(type: number, compression: number, length: number, rawLength = length): Buffer {
  const e = Buffer.alloc(HEADER_ENTRY_BYTES);
  e.writeUInt8(type, 0);
  e.writeUInt8(compression, 1);
  e.writeUInt32LE(length, 2);
  e.writeUInt32LE(rawLength, 6);
  randomBytes(32).copy(e, 10);
  return e;
}

/** parsePackHeader's result, or undefined if it threw a typed error; anything else fails. */
function parseOrTyped(tail: Buffer, packSize: number): PackedBlob[] | undefined {
  try {
    return parsePackHeader(KEY, tail, packSize, 'p');
  } catch (err) {
    if (!(err instanceof FoleBackupError)) throw new Error(`threw a non-typed error: ${String(err)}`, { cause: err });
    expect(['REPO_CORRUPT', 'CHECKSUM_MISMATCH']).toContain(err.code);
    return undefined;
  }
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof FoleBackupError) return err.code;
    throw err;
  }
  return 'none';
}

describe('parsePackHeader', () => {
  it('reads back what PackBuilder wrote, from the whole pack or from its tail', () => {
    const pack = buildPack([10, 0, 300, 5]);
    expect(parsePackHeader(KEY, pack.bytes, pack.bytes.length, pack.name)).toEqual(pack.blobs);
    const headerAndTrailer = pack.bytes.length - pack.blobs.reduce((n, b) => n + b.length, 0);
    expect(
      parsePackHeader(KEY, pack.bytes.subarray(pack.bytes.length - headerAndTrailer), pack.bytes.length, pack.name),
    ).toEqual(pack.blobs);
  });

  it('keeps neighbouring views of one buffer as one part, and names the pack by the SHA-256 of all its bytes', () => {
    // what a file worker sends: several sealed blobs back to back in one buffer
    const sealed = [10, 300, 5].map((n, i) => seal(KEY, randomBytes(n), AAD.blob('data', Buffer.alloc(32, i))));
    const message = Buffer.concat(sealed);
    const b = new PackBuilder();
    let at = 0;
    sealed.forEach((s, i) => {
      b.add(randomBytes(32).toString('hex'), 'data', message.subarray(at, at + s.length), [10, 300, 5][i] as number, 0);
      at += s.length;
    });
    b.add(
      randomBytes(32).toString('hex'),
      'data',
      seal(KEY, randomBytes(7), AAD.blob('data', Buffer.alloc(32, 9))),
      7,
      0,
    );
    const { name, parts, size, blobs } = b.finish(KEY);
    expect(parts.length).toBe(4); // the message, the lone blob, the header, the trailer
    const bytes = Buffer.concat(parts);
    expect(bytes.length).toBe(size);
    expect(name).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(parsePackHeader(KEY, bytes, size, name)).toEqual(blobs);
    expect(bytes.subarray(0, message.length).equals(message)).toBe(true);
  });
  it('refuses a tail too short for its trailer or its header', () => {
    const pack = buildPack([10]);
    expect(codeOf(() => parsePackHeader(KEY, Buffer.alloc(3), 3, 'p'))).toBe('REPO_CORRUPT');
    expect(
      codeOf(() => parsePackHeader(KEY, pack.bytes.subarray(pack.bytes.length - 20), pack.bytes.length, 'p')),
    ).toBe('REPO_CORRUPT');
  });

  it('refuses a header sealed with another key or altered by one bit', () => {
    const pack = buildPack([10, 20]);
    expect(codeOf(() => parsePackHeader(randomBytes(32), pack.bytes, pack.bytes.length, 'p'))).toBe(
      'CHECKSUM_MISMATCH',
    );
    const flipped = Buffer.from(pack.bytes);
    flipped[flipped.length - 10] = (flipped[flipped.length - 10] as number) ^ 1;
    expect(codeOf(() => parsePackHeader(KEY, flipped, flipped.length, 'p'))).toBe('CHECKSUM_MISMATCH');
  });

  it('refuses blob lengths that do not add up to the pack size', () => {
    const pack = buildPack([10, 20]);
    const longer = Buffer.concat([Buffer.alloc(1), pack.bytes]);
    expect(codeOf(() => parsePackHeader(KEY, longer, longer.length, 'p'))).toBe('REPO_CORRUPT');
  });

  it.each([
    ['an unknown blob type', entry(2, 0, 40)],
    ['an unknown compression', entry(0, 2, 40)],
    ['a compression the in-memory index could not hold', entry(0, 17, 40)],
    ['a blob shorter than a nonce and a tag', entry(0, 0, SEAL_OVERHEAD - 1)],
  ])('refuses a header (sealed with the right key) with %s', (_name, e) => {
    const tail = forgedTail(e.readUInt32LE(2), e);
    expect(codeOf(() => parsePackHeader(KEY, tail, tail.length, 'p'))).toBe('REPO_CORRUPT');
  });

  it('refuses a header that is not a whole number of entries', () => {
    const tail = forgedTail(0, Buffer.alloc(HEADER_ENTRY_BYTES + 1));
    expect(codeOf(() => parsePackHeader(KEY, tail, tail.length, 'p'))).toBe('REPO_CORRUPT');
  });
});

describe('fuzzing parsePackHeader', () => {
  const sizes = fc.array(fc.nat(200), { minLength: 1, maxLength: 5 });

  it('a pack damaged anywhere (bit flips, truncation, bytes added) yields its own header or a typed error', () => {
    const damage = fc.oneof(
      fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
      fc.record({ op: fc.constant('cutFront' as const), n: fc.nat(400) }),
      fc.record({ op: fc.constant('cutBack' as const), n: fc.integer({ min: 1, max: 60 }) }),
      fc.record({ op: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({ op: fc.constant('trailer' as const), value: fc.nat({ max: 0xffffffff }) }),
    );
    check(
      fc.property(
        sizes,
        fc.array(damage, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        (blobSizes, damages, honestSize) => {
          const pack = buildPack(blobSizes);
          let bytes = Buffer.from(pack.bytes);
          for (const d of damages) {
            if (d.op === 'flip') {
              if (bytes.length === 0) continue;
              const at = d.at % bytes.length;
              bytes[at] = (bytes[at] as number) ^ (1 << d.bit);
            } else if (d.op === 'cutFront') bytes = bytes.subarray(Math.min(d.n, bytes.length));
            else if (d.op === 'cutBack') bytes = bytes.subarray(0, Math.max(0, bytes.length - d.n));
            else if (d.op === 'append') bytes = Buffer.concat([bytes, d.bytes]);
            else if (bytes.length >= 4) bytes.writeUInt32LE(d.value, bytes.length - 4);
          }
          // the tail is what a reader fetched; the size is either the honest one or the damaged length
          const got = parseOrTyped(bytes, honestSize ? pack.bytes.length : bytes.length);
          // AEAD: a header that parses is the header that was written
          if (got !== undefined) expect(got).toEqual(pack.blobs);
        },
      ),
      100,
    );
  });

  it('a forged header (random plaintext sealed with the right key) is accepted only if it is consistent', () => {
    const forged = fc.record({
      entries: fc.array(
        fc.record({
          type: fc.nat(3),
          compression: fc.nat(3),
          length: fc.oneof(fc.nat(100), fc.nat({ max: 0xffffffff })),
          raw: fc.nat({ max: 0xffffffff }),
        }),
        { maxLength: 4 },
      ),
      extra: fc.uint8Array({ maxLength: 3 }),
      blobBytes: fc.oneof(fc.nat(400), fc.constant(-1)),
    });
    check(
      fc.property(forged, ({ entries, extra, blobBytes }) => {
        const header = Buffer.concat([...entries.map((e) => entry(e.type, e.compression, e.length, e.raw)), extra]);
        const sum = entries.reduce((n, e) => n + e.length, 0);
        // -1: make the blob area exactly what the header claims (when it is small enough to build)
        const area = blobBytes === -1 ? (sum <= 4000 ? sum : 0) : blobBytes;
        const tail = forgedTail(area, header);
        const got = parseOrTyped(tail, tail.length);
        if (got === undefined) return;
        expect(got.reduce((n, b) => n + b.length, 0)).toBe(area);
        for (const b of got) {
          expect(['data', 'tree']).toContain(b.type);
          expect([0, 1]).toContain(b.compression);
          expect(b.length).toBeGreaterThanOrEqual(SEAL_OVERHEAD);
          expect(b.id).toMatch(/^[0-9a-f]{64}$/);
        }
      }),
      150,
    );
  });

  it('random bytes as a pack tail yield a typed error', () => {
    check(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(1000), (bytes, size) => {
        expect(parseOrTyped(Buffer.from(bytes), size)).toBeUndefined();
      }),
      100,
    );
  });
});
