import { describe, expect, it } from 'vitest';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { StopError } from '../errors.js';
import { decryptUnverified, open, seal, SEAL_OVERHEAD, sealInto } from './aead.js';
import { nativeModule } from '../native/module.js';

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

describe('the native AES-256-GCM against node:crypto', () => {
  const gcmSeal = (key: Uint8Array, m: Uint8Array, aad: Uint8Array): Buffer => {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.setAAD(aad);
    return Buffer.concat([nonce, c.update(m), c.final(), c.getAuthTag()]);
  };
  const gcmOpen = (key: Uint8Array, sealed: Buffer, aad: Uint8Array): Buffer => {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
  };

  it('seals what node:crypto opens and opens what node:crypto seals, for every length around the block size', () => {
    const aad = Buffer.from('blob aad');
    for (const len of [0, 1, 15, 16, 17, 31, 32, 33, 95, 96, 97, 4096, 16 * 1024 + 3]) {
      const m = randomBytes(len);
      expect(gcmOpen(KEY, seal(KEY, m, aad), aad).equals(m)).toBe(true);
      expect(open(KEY, gcmSeal(KEY, m, aad), 'm', aad).equals(m)).toBe(true);
      // no associated data is the same as empty associated data, in both
      expect(gcmOpen(KEY, seal(KEY, m), Buffer.alloc(0)).equals(m)).toBe(true);
      expect(open(KEY, gcmSeal(KEY, m, Buffer.alloc(0)), 'm').equals(m)).toBe(true);
    }
  });

  it('keeps no key of a previous call: messages under two keys, interleaved, open only under their own', () => {
    const other = randomBytes(32);
    const a = randomBytes(100);
    const b = randomBytes(100);
    for (let i = 0; i < 3; i++) {
      const sa = seal(KEY, a);
      const sb = seal(other, b);
      expect(open(KEY, sa, 'a').equals(a)).toBe(true);
      expect(open(other, sb, 'b').equals(b)).toBe(true);
      expect(() => open(other, sa, 'a')).toThrow(/authentication failed/);
      expect(() => open(KEY, sb, 'b')).toThrow(/authentication failed/);
      expect(gcmOpen(other, sb, Buffer.alloc(0)).equals(b)).toBe(true);
    }
  });

  it('refuses a change to any byte of nonce, ciphertext or tag, and zeroes what it decrypted', () => {
    const m = randomBytes(64);
    const sealed = seal(KEY, m, Buffer.from('x'));
    for (const at of [0, 11, 12, 40, sealed.length - 17, sealed.length - 16, sealed.length - 1]) {
      const bad = Buffer.from(sealed);
      bad[at] = (bad[at] as number) ^ 0x01;
      expect(() => open(KEY, bad, 'm', Buffer.from('x'))).toThrow(/authentication failed/);
      const out = Buffer.alloc(64, 0xaa);
      expect(nativeModule().open(KEY, bad, Buffer.from('x'), out)).toBe(false);
      expect(out.equals(Buffer.alloc(64))).toBe(true);
    }
  });

  it('throws on arguments that do not fit instead of writing out of bounds', () => {
    const aead = nativeModule();
    const sealed = seal(KEY, randomBytes(32));
    expect(() => aead.open(KEY.subarray(1), sealed, Buffer.alloc(0), Buffer.alloc(32))).toThrow(TypeError);
    expect(() => aead.open(KEY, sealed, Buffer.alloc(0), Buffer.alloc(31))).toThrow(/no room/);
    expect(() => aead.open(KEY, sealed.subarray(0, 27), Buffer.alloc(0), Buffer.alloc(32))).toThrow(TypeError);
    expect(() => aead.open(KEY, sealed, Buffer.alloc(0), sealed.subarray(0, 32))).toThrow(/overlaps/);
    const out = Buffer.alloc(100);
    expect(() => aead.seal(KEY, randomBytes(12), randomBytes(80), Buffer.alloc(0), out, 0)).toThrow(/no room/);
    expect(() => aead.seal(KEY, randomBytes(12), randomBytes(10), Buffer.alloc(0), out, 63)).toThrow(/no room/);
    expect(() => aead.seal(KEY, randomBytes(12), out.subarray(50, 60), Buffer.alloc(0), out, 40)).toThrow(/overlaps/);
    expect(() => aead.seal(KEY, randomBytes(11), randomBytes(10), Buffer.alloc(0), out, 0)).toThrow(TypeError);
    expect(() => aead.seal(KEY, randomBytes(12), randomBytes(10), Buffer.alloc(0), out, -1)).toThrow(TypeError);
    expect(aead.seal(KEY, randomBytes(12), randomBytes(10), Buffer.alloc(0), out, 62)).toBe(38);
  });
});
