/**
 * Key files: a repository's random master key, wrapped by a key derived from a
 * passphrase with scrypt. A repository may hold several key files (one per
 * person or machine); each wraps the same master key, so adding or removing one
 * never re-encrypts data. A "generated key file" (fole-backup's demo, or
 * `init --generate-key-file`) is simply a passphrase with 256 bits of entropy.
 */
import { randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { KEY_BYTES, open, seal } from './aead.js';
import { FoleBackupError, StopError } from '../errors.js';

export interface KdfParams {
  N: number;
  r: number;
  p: number;
}

/** ~100 ms and 32 MiB per derivation on this class of machine. */
export const DEFAULT_KDF: KdfParams = { N: 2 ** 15, r: 8, p: 1 };

/** What a key file stores (JSON; the master key inside `data` is sealed). */
export interface KeyFileData {
  version: 1;
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  createdAt: string;
  host: string;
  username: string;
  /** base64 of seal(derivedKey, JSON(MasterKeyData), aad = "fole-key:" + repositoryId) */
  data: string;
}

/** The secret every object in a repository is encrypted with. */
export interface MasterKey {
  encrypt: Buffer;
  repositoryId: string;
}

interface MasterKeyData {
  encrypt: string;
  repositoryId: string;
}

export function generateMasterKey(repositoryId: string): MasterKey {
  return { encrypt: randomBytes(KEY_BYTES), repositoryId };
}

function derive(password: string, salt: Buffer, params: KdfParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFC'), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function aadFor(repositoryId: string): Buffer {
  return Buffer.from(`fole-key:${repositoryId}`);
}

export async function wrapMasterKey(master: MasterKey, password: string, params: KdfParams = DEFAULT_KDF): Promise<KeyFileData> {
  if (password.length === 0) {
    throw new FoleBackupError('USAGE', 'empty password', { hint: 'choose a non-empty password or use a key file' });
  }
  const salt = randomBytes(32);
  const derived = await derive(password, salt, params);
  const inner: MasterKeyData = { encrypt: master.encrypt.toString('base64'), repositoryId: master.repositoryId };
  const sealed = seal(derived, Buffer.from(JSON.stringify(inner)), aadFor(master.repositoryId));
  let username = 'unknown';
  try {
    username = userInfo().username;
  } catch {
    // no passwd entry for this uid (containers): keep 'unknown'
  }
  return {
    version: 1,
    kdf: 'scrypt',
    ...params,
    salt: salt.toString('base64'),
    createdAt: new Date().toISOString(),
    host: hostname(),
    username,
    data: sealed.toString('base64'),
  };
}

/** Parse a key file's JSON; throws REPO_CORRUPT when it is not one. */
export function parseKeyFile(bytes: Uint8Array, name: string): KeyFileData {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new FoleBackupError('REPO_CORRUPT', `key file ${name}: not JSON`, { cause: err });
  }
  const k = v as Partial<KeyFileData>;
  if (
    typeof v !== 'object' || v === null || k.version !== 1 || k.kdf !== 'scrypt' ||
    typeof k.N !== 'number' || typeof k.r !== 'number' || typeof k.p !== 'number' ||
    typeof k.salt !== 'string' || typeof k.data !== 'string' ||
    !Number.isInteger(Math.log2(k.N)) || k.N < 2 || k.N > 2 ** 22 || k.r < 1 || k.r > 32 || k.p < 1 || k.p > 16
  ) {
    throw new FoleBackupError('REPO_CORRUPT', `key file ${name}: unsupported or damaged key file`);
  }
  return k as KeyFileData;
}

/**
 * Unwrap with a password. Returns undefined when the password does not open this
 * key file (so callers can try the next one); throws on a damaged key file.
 */
export async function unwrapMasterKey(key: KeyFileData, password: string, repositoryId: string): Promise<MasterKey | undefined> {
  const derived = await derive(password, Buffer.from(key.salt, 'base64'), { N: key.N, r: key.r, p: key.p });
  let plain: Buffer;
  try {
    plain = open(derived, Buffer.from(key.data, 'base64'), 'key file', aadFor(repositoryId));
  } catch (err) {
    if (err instanceof StopError) return undefined;
    throw err;
  }
  const inner = JSON.parse(plain.toString('utf8')) as MasterKeyData;
  const encrypt = Buffer.from(inner.encrypt, 'base64');
  if (encrypt.length !== KEY_BYTES || inner.repositoryId !== repositoryId) {
    throw new FoleBackupError('REPO_CORRUPT', 'key file does not belong to this repository', {
      hint: 'the repository config or key files were mixed up; restore them from a copy',
    });
  }
  return { encrypt, repositoryId };
}
