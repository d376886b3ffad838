import { describe, expect, it } from 'vitest';
import { SealRooms } from './seal-rooms.js';

const SIZE = 1024;

describe('SealRooms', () => {
  it('gives a view of the bytes asked at the start of a buffer of the usual size or more', () => {
    const rooms = new SealRooms(SIZE, 2);
    const small = rooms.take(10);
    expect([small.byteOffset, small.byteLength, small.buffer.byteLength]).toEqual([0, 10, SIZE]);
    const large = rooms.take(SIZE + 5);
    expect([large.byteLength, large.buffer.byteLength]).toEqual([SIZE + 5, SIZE + 5]);
  });

  it('seals into a buffer given back instead of making one', () => {
    const rooms = new SealRooms(SIZE, 2);
    const b = rooms.take(SIZE).buffer as ArrayBuffer;
    rooms.give(b);
    expect(rooms.take(100).buffer).toBe(b);
    expect(rooms.count).toBe(0);
  });

  it('keeps at most `keep` buffers, and none smaller than the usual size (or detached)', () => {
    const rooms = new SealRooms(SIZE, 2);
    rooms.give(new ArrayBuffer(SIZE - 1));
    rooms.give(new ArrayBuffer(0));
    expect(rooms.count).toBe(0);
    for (let i = 0; i < 3; i++) rooms.give(new ArrayBuffer(SIZE));
    expect(rooms.count).toBe(2);
  });

  it('refuses to make room for nothing: an exchange that seals nothing sends nothing', () => {
    const rooms = new SealRooms(SIZE, 2);
    rooms.give(new ArrayBuffer(SIZE));
    expect(() => rooms.take(0)).toThrow(RangeError);
    expect(rooms.count).toBe(1);
  });
});
