import { describe, expect, it } from 'vitest';
import { BufferPool } from './buffer-pool.js';

const SIZE = 1024;

describe('BufferPool: spans (restore)', () => {
  it('gives a view of the length asked at the start of a buffer of the usual size', () => {
    const pool = new BufferPool(SIZE, 2);
    const v = pool.take(100);
    expect(v.byteOffset).toBe(0);
    expect(v.byteLength).toBe(100);
    expect(v.buffer.byteLength).toBe(SIZE);
    expect(pool.ours(v)).toBe(true);
  });

  it('takes a buffer given back again instead of making one', () => {
    const pool = new BufferPool(SIZE, 2);
    const v = pool.take(SIZE);
    pool.give(v.buffer as ArrayBuffer);
    expect(pool.kept).toBe(1);
    expect(pool.take(10).buffer).toBe(v.buffer);
    expect(pool.kept).toBe(0);
  });

  it('keeps at most `keep` buffers, each once', () => {
    const pool = new BufferPool(SIZE, 2);
    const bufs = [pool.take(1), pool.take(1), pool.take(1)].map((v) => v.buffer as ArrayBuffer);
    pool.give(bufs[0] as ArrayBuffer);
    pool.give(bufs[0] as ArrayBuffer);
    expect(pool.kept).toBe(1);
    for (const b of bufs) pool.give(b);
    expect(pool.kept).toBe(2);
  });

  it('makes a larger buffer for a larger span, and does not keep it', () => {
    const pool = new BufferPool(SIZE, 2);
    const v = pool.take(SIZE + 1);
    expect(v.byteLength).toBe(SIZE + 1);
    pool.give(v.buffer as ArrayBuffer);
    expect(pool.kept).toBe(0);
  });

  it('takes a buffer that came back from another thread as its own (a new object for the same memory)', () => {
    const pool = new BufferPool(SIZE, 2);
    const sent = pool.take(SIZE).buffer as ArrayBuffer;
    // what postMessage with a transfer list does: the sender's object detached, a new one for its memory
    const back = structuredClone(sent, { transfer: [sent] });
    expect(sent.byteLength).toBe(0);
    pool.give(sent);
    expect(pool.kept).toBe(0);
    pool.give(back);
    const again = pool.take(SIZE);
    expect(again.buffer).toBe(back);
    expect(pool.ours(again)).toBe(true);
  });

  it('does not count a buffer of someone else as its own', () => {
    const pool = new BufferPool(SIZE, 2);
    expect(pool.ours(new Uint8Array(SIZE))).toBe(false);
    // a reader's view of a larger buffer it may share: must be copied, never sent whole
    expect(pool.ours(Buffer.allocUnsafeSlow(4 * SIZE).subarray(0, SIZE))).toBe(false);
  });
});

describe('BufferPool: sealed chunks (backup)', () => {
  it('gives a view of the bytes asked at the start of a buffer of the usual size or more', () => {
    const rooms = new BufferPool(SIZE, 2);
    const small = rooms.take(10);
    expect([small.byteOffset, small.byteLength, small.buffer.byteLength]).toEqual([0, 10, SIZE]);
    const large = rooms.take(SIZE + 5);
    expect([large.byteLength, large.buffer.byteLength]).toEqual([SIZE + 5, SIZE + 5]);
  });

  it('seals into a buffer given back instead of making one', () => {
    const rooms = new BufferPool(SIZE, 2);
    const b = rooms.take(SIZE).buffer as ArrayBuffer;
    rooms.give(b);
    expect(rooms.take(100).buffer).toBe(b);
    expect(rooms.kept).toBe(0);
  });

  it('keeps at most `keep` buffers, and none smaller than the usual size (or detached)', () => {
    const rooms = new BufferPool(SIZE, 2);
    rooms.give(new ArrayBuffer(SIZE - 1));
    rooms.give(new ArrayBuffer(0));
    expect(rooms.kept).toBe(0);
    for (let i = 0; i < 3; i++) rooms.give(new ArrayBuffer(SIZE));
    expect(rooms.kept).toBe(2);
  });

  it('refuses to make room for nothing: an exchange that seals nothing sends nothing', () => {
    const rooms = new BufferPool(SIZE, 2);
    rooms.give(new ArrayBuffer(SIZE));
    expect(() => rooms.take(0)).toThrow(RangeError);
    expect(rooms.kept).toBe(1);
  });
});
