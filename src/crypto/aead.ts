/**
 * Authenticated encryption for everything in a repository except its config.
 * AES-256-GCM, a fresh random 96-bit nonce per message; sealed layout:
 *
 *   nonce (12 bytes) | ciphertext | tag (16 bytes)
 *
 * Associated data binds a ciphertext to where it belongs (a blob to its id, a
 * snapshot to its backup id), so moving or swapping objects is detected like any
 * other tampering.
 *
 * The cipher work is native/aead.c's (through Node's own OpenSSL): the same
 * AES-256-GCM as node:crypto's, without its per-message overhead.
 */
import { createDecipheriv, randomBytes } from 'node:crypto';
import { StopError } from '../errors.js';
import { nativeModule } from '../native/module.js';

export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/**
 * Random nonces are drawn from the OS in batches: one getrandom() call per 4096
 * nonces instead of one per blob (measured: 1 s of a 100k-file backup). Each
 * nonce is still 96 independent random bits, used once.
 */
const NONCE_BATCH = 4096;
let noncePool = Buffer.alloc(0);
let nonceOffset = 0;

function nextNonce(): Buffer {
  if (nonceOffset + NONCE_BYTES > noncePool.length) {
    noncePool = randomBytes(NONCE_BYTES * NONCE_BATCH);
    nonceOffset = 0;
  }
  const n = noncePool.subarray(nonceOffset, nonceOffset + NONCE_BYTES);
  nonceOffset += NONCE_BYTES;
  return n;
}

const NO_AAD = new Uint8Array(0);

/** Encrypt and authenticate `plaintext`; `aad` is authenticated but not stored. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + SEAL_OVERHEAD);
  sealInto(key, plaintext, aad ?? NO_AAD, out, 0);
  return out;
}

/**
 * seal() into `out` at `offset` (which must have room for plaintext.length +
 * SEAL_OVERHEAD bytes): many blobs sealed into one buffer without a copy each.
 * Returns the sealed length.
 */
export function sealInto(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  out: Uint8Array,
  offset: number,
): number {
  return nativeModule().seal(key, nextNonce(), plaintext, aad, out, offset);
}

/**
 * Decrypt and verify. Throws StopError('CHECKSUM_MISMATCH') naming `what` if the
 * ciphertext, its tag or the associated data do not match.
 */
export function open(key: Uint8Array, sealed: Uint8Array, what: string, aad?: Uint8Array): Buffer {
  return openInto(key, sealed, what, aad, undefined);
}

/**
 * open() into `out` when given: a buffer the caller reuses (it is done with one plaintext before it
 * opens the next), of at least sealed.length - SEAL_OVERHEAD bytes. The plaintext is a view of its
 * first bytes. Without `out`, into a new buffer. On failure `out` holds zeros, never unverified bytes.
 */
export function openInto(
  key: Uint8Array,
  sealed: Uint8Array,
  what: string,
  aad: Uint8Array | undefined,
  out: Buffer | undefined,
): Buffer {
  if (sealed.length < SEAL_OVERHEAD) {
    throw new StopError('CHECKSUM_MISMATCH', `decrypt ${what}: object too short (${sealed.length} bytes)`, {
      hint: 'the repository is damaged; run `fole-backup check --read-data` and use another backup',
    });
  }
  const n = sealed.length - SEAL_OVERHEAD;
  const plain = out === undefined ? Buffer.allocUnsafe(n) : out.subarray(0, n);
  if (!nativeModule().open(key, sealed, aad ?? NO_AAD, plain)) {
    throw new StopError('CHECKSUM_MISMATCH', `decrypt ${what}: authentication failed`, {
      hint: 'the data was altered or damaged; run `fole-backup check --read-data` and use another backup',
    });
  }
  return plain;
}

/**
 * The plaintext of `sealed` WITHOUT checking its tag (undefined when too
 * short). GCM's keystream (AES-CTR from counter block nonce ‖ 2, NIST SP
 * 800-38D for a 96-bit nonce) does not depend on the associated data, so with
 * the right key this recovers what was sealed under associated data the caller
 * does not know. The result is untrusted: use it only to guess that data, then
 * open() with the guess, which authenticates.
 */
export function decryptUnverified(key: Uint8Array, sealed: Uint8Array): Buffer | undefined {
  if (sealed.length < SEAL_OVERHEAD) return undefined;
  const counter = Buffer.concat([sealed.subarray(0, NONCE_BYTES), Buffer.from([0, 0, 0, 2])]);
  const d = createDecipheriv('aes-256-ctr', key, counter);
  return Buffer.concat([d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), d.final()]);
}
