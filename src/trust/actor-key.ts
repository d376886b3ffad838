/**
 * An actor's Ed25519 key pair: made by `actor keygen`, the private half kept by
 * the actor (PKCS#8 PEM, mode 0600, optionally passphrase-encrypted), the public
 * half registered in the repository. Node's crypto does Ed25519; no dependency.
 *
 * A public key is carried as its SPKI DER in base64 (44 bytes for Ed25519), and
 * named by its fingerprint: the SHA-256 of that DER, in hex.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as edSign,
  verify as edVerify,
  type KeyObject,
} from 'node:crypto';
import { sha256Hex } from '../crypto/hash.js';
import { FoleBackupError, StopError } from '../errors.js';

/** A private key loaded for signing; the key material stays inside this object. */
export interface ActorSigner {
  /** The SPKI DER of the public half, base64. */
  readonly publicKey: string;
  /** SHA-256 of the SPKI DER, hex: the keyid of its signatures. */
  readonly fingerprint: string;
  sign(data: Uint8Array): Buffer;
}

/** A new key pair as PEM text: write `privatePem` with mode 0600 and `publicPem` beside it. */
export interface GeneratedActorKey {
  privatePem: string;
  publicPem: string;
  fingerprint: string;
}

/** PEM files larger than this are not actor keys (an Ed25519 key, even encrypted, is under 1 KiB). */
export const MAX_ACTOR_KEY_FILE_BYTES = 16 * 1024;

/** Make an Ed25519 key pair; with a passphrase the private PEM is encrypted (PKCS#8, AES-256-CBC, PBKDF2). */
export function generateActorKey(passphrase?: string): GeneratedActorKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privatePem =
    passphrase === undefined
      ? (privateKey.export({ type: 'pkcs8', format: 'pem' }) as string)
      : (privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string);
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  return { privatePem, publicPem, fingerprint: fingerprintOf(spkiBase64(publicKey)) };
}

/** The fingerprint of a public key given as SPKI DER base64. */
export function fingerprintOf(publicKey: string): string {
  return sha256Hex(Buffer.from(publicKey, 'base64'));
}

function spkiBase64(key: KeyObject): string {
  return (key.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64');
}

/** Whether the PEM text is an encrypted private key (it then needs a passphrase). */
export function isEncryptedPem(pem: string): boolean {
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
}

/**
 * Load a private key from PEM text. Throws PERMISSION_DENIED (a STOP: the caller cannot prove who they are) for
 * text that is not an Ed25519 private key or a wrong passphrase; `source` names the file in the message.
 */
export function signerFromPem(pem: string, source: string, passphrase?: string): ActorSigner {
  let key: KeyObject;
  try {
    key = createPrivateKey(
      passphrase === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase },
    );
  } catch (err) {
    const encrypted = isEncryptedPem(pem);
    throw new StopError(
      'PERMISSION_DENIED',
      encrypted
        ? `actor key ${source}: ` +
            (passphrase === undefined ? 'it is passphrase-protected and no passphrase was given' : 'wrong passphrase')
        : `actor key ${source}: not a PEM private key`,
      {
        cause: err,
        hint: encrypted
          ? 'give the passphrase in FOLE_BACKUP_ACTOR_KEY_PASSPHRASE or run on a terminal to be asked'
          : 'give the private key file `fole-backup actor keygen --out FILE` wrote (not FILE.pub)',
      },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new StopError('PERMISSION_DENIED', `actor key ${source}: a ${key.asymmetricKeyType} key, not Ed25519`, {
      hint: 'make an actor key with `fole-backup actor keygen --out FILE`',
    });
  }
  const publicKey = spkiBase64(createPublicKey(key));
  return {
    publicKey,
    fingerprint: fingerprintOf(publicKey),
    sign: (data) => edSign(null, data, key),
  };
}

/** Parse a public key from PEM text (an actor's FILE.pub) into SPKI DER base64; throws USAGE if it is not Ed25519. */
export function publicKeyFromPem(pem: string, source: string): string {
  // createPublicKey would derive the public half of a private key: refuse one, so it never travels as a FILE.pub
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new FoleBackupError('USAGE', `public key ${source}: a private key, not a public key`, {
      hint: 'give the FILE.pub that `fole-backup actor keygen --out FILE` wrote (never the private key)',
    });
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new FoleBackupError('USAGE', `public key ${source}: not a PEM public key`, {
      cause: err,
      hint: 'give the FILE.pub that `fole-backup actor keygen --out FILE` wrote',
    });
  }
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') {
    throw new FoleBackupError('USAGE', `public key ${source}: not an Ed25519 public key`, {
      hint: 'give the FILE.pub that `fole-backup actor keygen --out FILE` wrote (never the private key)',
    });
  }
  return spkiBase64(key);
}

/** The SPKI DER base64 of an Ed25519 public key is exactly this long. */
const ED25519_SPKI_BASE64_LENGTH = 60;
const keyCache = new Map<string, KeyObject>();

/**
 * Verify an Ed25519 signature by the public key given as SPKI DER base64. False (never a throw) for a malformed
 * key or signature: the caller reports whose signature failed.
 */
export function verifySignature(publicKey: string, data: Uint8Array, signature: Uint8Array): boolean {
  let key = keyCache.get(publicKey);
  if (key === undefined) {
    if (publicKey.length !== ED25519_SPKI_BASE64_LENGTH) return false;
    try {
      key = createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
    } catch {
      return false;
    }
    if (key.asymmetricKeyType !== 'ed25519') return false;
    if (keyCache.size > 1000) keyCache.clear();
    keyCache.set(publicKey, key);
  }
  if (signature.length !== 64) return false;
  try {
    return edVerify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** Whether a string is a well-formed Ed25519 public key (SPKI DER base64). */
export function isPublicKey(publicKey: unknown): publicKey is string {
  if (typeof publicKey !== 'string' || publicKey.length !== ED25519_SPKI_BASE64_LENGTH) return false;
  try {
    const key = createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ed25519' && spkiBase64(key) === publicKey;
  } catch {
    return false;
  }
}
