import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { StopError } from '../errors.js';
import { decryptUnverified, open, seal, SEAL_OVERHEAD, sealInto } from './aead.js';

const KEY = randomBytes(32);

describe('seal and sealInto', () => {
  it('sealInto writes what open accepts, at the offset asked, next to other sealed messages', () => {
    const messages = [randomBytes(0), randomBytes(1), randomBytes(16 * 1024), randomBytes(333)];
    const aads = messages.map((_, i) => Buffer.from([i, 1, 2]));
    const out = Buffer.alloc(messages.reduce((n, m) => n + m.length + SEAL_OVERHEAD, 0));
    let at = 0;
    const spans: [number, number][] = [];
    messages.forEach((m, i) => {
      const n = sealInto(KEY, m, aads[i] as Buffer, out, at);
      expect(n).toBe(m.length + SEAL_OVERHEAD);
      spans.push([at, n]);
      at += n;
    });
    expect(at).toBe(out.length);
    for (const [i, [o, n]] of spans.entries()) {
      expect(open(KEY, out.subarray(o, o + n), 'm', aads[i]).equals(messages[i] as Buffer)).toBe(true);
    }
  });

  it('a message sealed into a buffer is refused under other associated data, like one from seal()', () => {
    const out = Buffer.alloc(10 + SEAL_OVERHEAD);
    sealInto(KEY, randomBytes(10), Buffer.from('a'), out, 0);
    expect(() => open(KEY, out, 'm', Buffer.from('b'))).toThrow(StopError);
    expect(() => open(KEY, seal(KEY, randomBytes(10), Buffer.from('a')), 'm', Buffer.from('b'))).toThrow(StopError);
  });
});

describe('decryptUnverified', () => {
  it('recovers what was sealed under any associated data with the right key, and nothing with another key', () => {
    for (const len of [0, 1, 15, 16, 17, 1000]) {
      const m = randomBytes(len);
      const sealed = seal(KEY, m, Buffer.from('unknown to the reader'));
      expect(decryptUnverified(KEY, sealed)?.equals(m)).toBe(true);
      if (len > 0) expect(decryptUnverified(randomBytes(32), sealed)?.equals(m)).toBe(false);
    }
    expect(decryptUnverified(KEY, Buffer.alloc(SEAL_OVERHEAD - 1))).toBeUndefined();
  });
});
