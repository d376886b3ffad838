import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ByteRange } from '../backend/backend.js';
import { cutSpans } from './span-stream.js';

/** `data` (the bytes of `read`) in pieces of the given sizes, in turn; records whether it was ended early. */
function pieces(data: Buffer, sizes: number[]): AsyncIterable<Uint8Array> & { ended: boolean; pulled: number } {
  const out = {
    ended: false,
    pulled: 0,
    async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
      let at = 0;
      try {
        for (let i = 0; at < data.length; i++) {
          const n = sizes[i % sizes.length] as number;
          out.pulled += Math.min(n, data.length - at);
          yield data.subarray(at, at + n);
          at += n;
        }
      } finally {
        if (at < data.length) out.ended = true;
      }
    },
  };
  return out;
}

async function all(it: AsyncIterable<Uint8Array>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  return out;
}

describe('cutSpans', () => {
  const pack = randomBytes(10_000);
  const read: ByteRange = { offset: 1000, length: 8000 };
  const data = pack.subarray(1000, 9000);
  const spans: ByteRange[] = [
    { offset: 1000, length: 700 },
    { offset: 1700, length: 1 },
    { offset: 4000, length: 2500 },
    { offset: 8000, length: 1000 },
  ];

  it('cuts the spans out of pieces of any size, dropping the gaps, each span a buffer of its own', async () => {
    for (const sizes of [[1], [7, 1], [333], [4096], [8000], [1, 2999, 50]]) {
      const got = await all(cutSpans(pieces(data, sizes), read, spans, 'data/p'));
      expect(got.map((b) => b.length)).toEqual([700, 1, 2500, 1000]);
      got.forEach((b, i) => {
        const s = spans[i] as ByteRange;
        expect(b.equals(pack.subarray(s.offset, s.offset + s.length)), `${sizes} span ${i}`).toBe(true);
        // transferable to a worker: not a view of Node's shared pool nor of a piece
        expect(b.byteOffset).toBe(0);
        expect(b.buffer.byteLength).toBe(b.length);
      });
    }
  });

  it("puts each span into the buffer the caller's alloc gives, when given one", async () => {
    const given: Uint8Array[] = [];
    const alloc = (n: number): Uint8Array => {
      const b = new Uint8Array(new ArrayBuffer(4096), 0, n);
      given.push(b);
      return b;
    };
    const got = await all(cutSpans(pieces(data, [333]), read, spans, 'data/p', alloc));
    expect(given).toHaveLength(spans.length);
    got.forEach((b, i) => {
      const s = spans[i] as ByteRange;
      expect(b.buffer).toBe(given[i]?.buffer);
      expect(b.byteOffset).toBe(0);
      expect(b.equals(pack.subarray(s.offset, s.offset + s.length))).toBe(true);
    });
  });

  it('reads no further than the span asked for: the caller decides how many are held', async () => {
    const source = pieces(data, [100]);
    const it = cutSpans(source, read, spans, 'data/p');
    await it.next();
    expect(source.pulled).toBe(700);
    await it.next();
    expect(source.pulled).toBe(800);
    // given up before the end: the request is ended
    await it.return();
    expect(source.ended).toBe(true);
  });

  it('reads the end of the response after the last span (an HTTP connection is then kept)', async () => {
    const source = pieces(data, [1000]);
    await all(cutSpans(source, read, spans, 'data/p'));
    expect(source.ended).toBe(false);
  });

  it('fails as damage (REPO_CORRUPT) when the bytes stop short, and on more bytes than asked', async () => {
    await expect(all(cutSpans(pieces(data.subarray(0, 7000), [512]), read, spans, 'data/p'))).rejects.toMatchObject({
      code: 'REPO_CORRUPT',
      message: expect.stringContaining('read data/p: range 1000+8000 lies beyond the end of the object (8000 bytes)'),
    });
    const more = Buffer.concat([data, Buffer.alloc(1)]);
    await expect(all(cutSpans(pieces(more, [8001]), read, spans, 'data/p'))).rejects.toMatchObject({
      code: 'READ_ERROR',
    });
    await expect(all(cutSpans(pieces(more, [4000]), read, spans, 'data/p'))).rejects.toMatchObject({
      code: 'READ_ERROR',
    });
  });

  it('refuses spans out of order or outside the read (a planner bug, not damage)', async () => {
    const backwards = [spans[2], spans[0]] as ByteRange[];
    await expect(all(cutSpans(pieces(data, [100]), read, backwards, 'data/p'))).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    await expect(
      all(cutSpans(pieces(data, [100]), read, [{ offset: 8500, length: 600 }], 'data/p')),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('passes the failure of the source on as it is', async () => {
    const failing = {
      async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
        yield data.subarray(0, 800);
        throw new Error('connection reset');
      },
    };
    const it = cutSpans(failing, read, spans, 'data/p');
    expect((await it.next()).value?.length).toBe(700);
    expect((await it.next()).value?.length).toBe(1);
    await expect(it.next()).rejects.toThrow('connection reset');
  });
});
