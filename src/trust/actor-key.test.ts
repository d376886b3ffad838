/**
 * Actor keys prove who asks: only an Ed25519 key in its one canonical encoding is accepted, a private key is
 * never taken for a public one (or the reverse), and a passphrase-protected key opens only with its passphrase.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FoleBackupError, StopError } from '../errors.js';
import {
  fingerprintOf,
  generateActorKey,
  isEncryptedPem,
  isPublicKey,
  publicKeyFromPem,
  signerFromPem,
  verifySignature,
} from './actor-key.js';

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The same bytes as `b64` with the padding bits of its last data character set: a second spelling of them. */
function nonCanonical(b64: string): string {
  const at = b64.indexOf('=') - 1;
  // with one '=' the last data character carries 2 unused bits: flipping the lowest changes no byte
  const other = B64[B64.indexOf(b64[at] as string) ^ 1] as string;
  return b64.slice(0, at) + other + b64.slice(at + 1);
}

function thrown(f: () => unknown): FoleBackupError {
  try {
    f();
  } catch (err) {
    if (err instanceof FoleBackupError) return err;
    throw err;
  }
  throw new Error('expected a FoleBackupError, nothing was thrown');
}

describe('actor keys', () => {
  it('a generated key signs, its public half verifies, and the fingerprint is the SHA-256 of the SPKI DER', () => {
    const k = generateActorKey();
    const signer = signerFromPem(k.privatePem, 'k');
    const pub = publicKeyFromPem(k.publicPem, 'k.pub');
    expect(signer.publicKey).toBe(pub);
    expect(pub).toHaveLength(60);
    expect(isPublicKey(pub)).toBe(true);
    expect(k.fingerprint).toBe(createHash('sha256').update(Buffer.from(pub, 'base64')).digest('hex'));
    expect(signer.fingerprint).toBe(k.fingerprint);
    expect(fingerprintOf(pub)).toBe(k.fingerprint);

    const msg = Buffer.from('back up project 7');
    const sig = signer.sign(msg);
    expect(sig).toHaveLength(64);
    expect(verifySignature(pub, msg, sig)).toBe(true);
    expect(verifySignature(pub, Buffer.from('back up project 8'), sig)).toBe(false);
    const flipped = Buffer.from(sig);
    flipped[10] = (flipped[10] as number) ^ 1;
    expect(verifySignature(pub, msg, flipped)).toBe(false);
  });

  it('two keys have different fingerprints and their signatures do not cross', () => {
    const a = signerFromPem(generateActorKey().privatePem, 'a');
    const b = signerFromPem(generateActorKey().privatePem, 'b');
    expect(a.fingerprint).not.toBe(b.fingerprint);
    const msg = Buffer.from('x');
    expect(verifySignature(b.publicKey, msg, a.sign(msg))).toBe(false);
    expect(verifySignature(a.publicKey, msg, a.sign(msg))).toBe(true);
  });

  it('a passphrase-protected key opens only with its passphrase: PERMISSION_DENIED without, or a wrong one', () => {
    const k = generateActorKey('open sesame');
    expect(isEncryptedPem(k.privatePem)).toBe(true);
    expect(isEncryptedPem(generateActorKey().privatePem)).toBe(false);

    const none = thrown(() => signerFromPem(k.privatePem, '/keys/alice'));
    expect(none).toBeInstanceOf(StopError);
    expect(none.code).toBe('PERMISSION_DENIED');
    expect(none.message).toMatch(/\/keys\/alice: it is passphrase-protected and no passphrase was given/);

    const wrong = thrown(() => signerFromPem(k.privatePem, '/keys/alice', 'open sesamE'));
    expect(wrong.code).toBe('PERMISSION_DENIED');
    expect(wrong.message).toMatch(/wrong passphrase/);

    const s = signerFromPem(k.privatePem, '/keys/alice', 'open sesame');
    expect(s.fingerprint).toBe(k.fingerprint);
    expect(verifySignature(publicKeyFromPem(k.publicPem, 'p'), Buffer.from('m'), s.sign(Buffer.from('m')))).toBe(true);
  });

  it('refuses RSA, EC and Ed448 private keys with PERMISSION_DENIED naming the type', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ed448 = generateKeyPairSync('ed448');
    for (const [type, pair] of [
      ['rsa', rsa],
      ['ec', ec],
      ['ed448', ed448],
    ] as const) {
      const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      const err = thrown(() => signerFromPem(pem, 'k'));
      expect(err.code, type).toBe('PERMISSION_DENIED');
      expect(err.message, type).toMatch(new RegExp(`a ${type} key, not Ed25519`));
      const pub = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
      const perr = thrown(() => publicKeyFromPem(pub, 'k.pub'));
      expect(perr.code, type).toBe('USAGE');
      expect(perr.message, type).toMatch(/not an Ed25519 public key/);
    }
  });

  it('refuses a public PEM given as the private key (PERMISSION_DENIED)', () => {
    const k = generateActorKey();
    const err = thrown(() => signerFromPem(k.publicPem, 'alice.pub'));
    expect(err).toBeInstanceOf(StopError);
    expect(err.code).toBe('PERMISSION_DENIED');
    expect(err.message).toMatch(/alice\.pub: not a PEM private key/);
    expect(thrown(() => signerFromPem('not a key', 'x')).code).toBe('PERMISSION_DENIED');
  });

  it('refuses a private PEM given as the public key (USAGE) rather than deriving its public half', () => {
    for (const k of [generateActorKey(), generateActorKey('pw')]) {
      const err = thrown(() => publicKeyFromPem(k.privatePem, 'alice'));
      expect(err.code).toBe('USAGE');
      expect(err.message).toMatch(/alice: a private key, not a public key/);
    }
    expect(thrown(() => publicKeyFromPem('garbage', 'g')).message).toMatch(/not a PEM public key/);
  });

  it('isPublicKey accepts only the canonical base64 of a 44-byte Ed25519 SPKI', () => {
    const pub = signerFromPem(generateActorKey().privatePem, 'k').publicKey;
    expect(isPublicKey(pub)).toBe(true);
    // X25519's SPKI is also 44 bytes (60 base64 characters): the algorithm must be checked, not the length
    const x = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(x).toHaveLength(60);
    expect(isPublicKey(x)).toBe(false);
    expect(verifySignature(x, Buffer.from('m'), Buffer.alloc(64))).toBe(false);
    // the same DER spelled with its padding bits set: the same key, but a second name for it
    const alias = nonCanonical(pub);
    expect(alias).not.toBe(pub);
    expect(Buffer.from(alias, 'base64')).toEqual(Buffer.from(pub, 'base64'));
    expect(isPublicKey(alias)).toBe(false);
    // wrong lengths, the raw 32-byte key, junk of the right length, and non-strings
    const raw = Buffer.from(pub, 'base64').subarray(12).toString('base64');
    for (const bad of [
      pub.slice(0, 56),
      `${pub}AAAA`,
      raw,
      pub.replace(/=$/, ''),
      'A'.repeat(60),
      '',
      42,
      null,
      undefined,
    ])
      expect(isPublicKey(bad), String(bad)).toBe(false);
  });

  it('verifySignature is false, never a throw, for a malformed key or signature', () => {
    const s = signerFromPem(generateActorKey().privatePem, 'k');
    const msg = Buffer.from('m');
    const sig = s.sign(msg);
    expect(verifySignature(s.publicKey, msg, sig.subarray(0, 63))).toBe(false);
    expect(verifySignature(s.publicKey, msg, Buffer.concat([sig, Buffer.alloc(1)]))).toBe(false);
    expect(verifySignature('!'.repeat(60), msg, sig)).toBe(false);
    expect(verifySignature(s.publicKey.slice(1), msg, sig)).toBe(false);
    expect(verifySignature('', msg, sig)).toBe(false);
  });
});
