/**
 * Key files: a repository's random master key, wrapped by a key derived from a
 * passphrase with scrypt. A repository may hold several key files (one per
 * person or machine); each wraps the same master key, so adding or removing one
 * never re-encrypts data. A "generated key file" (fole-backup's demo, or
 * `init --generate-key-file`) is simply a passphrase with 256 bits of entropy.
 */
import { randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { hostname } from 'node:os';
import { decryptUnverified, KEY_BYTES, open, seal } from './aead.js';
import { FoleBackupError, StopError } from '../errors.js';
import { currentUser } from '../host/current-user.js';

export interface KdfParams {
  N: number;
  r: number;
  p: number;
}

/** ~100 ms and 32 MiB per derivation on this class of machine. */
export const DEFAULT_KDF: KdfParams = { N: 2 ** 15, r: 8, p: 1 };

/**
 * The scrypt parameters a key file may have: exactly what init and key add
 * write (r and p of DEFAULT_KDF, N a power of two up to DEFAULT_KDF's; below
 * it only for tests, which make many repositories). Anyone who can write to
 * keys/ chooses these numbers and every command derives with them before it
 * knows whether the key file is genuine: N = 2^20 cost 1.1 GB and 5 s a command.
 */
const MIN_KDF_N = 2 ** 10;
export const MAX_KDF_N = DEFAULT_KDF.N;

/** A key file is ~600 bytes; more than this is not one (and is not read in full). */
export const MAX_KEY_FILE_BYTES = 64 * 1024;

/** Whether init, key add and the reader accept these scrypt parameters. */
export function isSupportedKdf(n: unknown, r: unknown, p: unknown): boolean {
  return (
    Number.isSafeInteger(n) &&
    (n as number) >= MIN_KDF_N &&
    (n as number) <= MAX_KDF_N &&
    Number.isInteger(Math.log2(n as number)) &&
    r === DEFAULT_KDF.r &&
    p === DEFAULT_KDF.p
  );
}

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
  /** Who or what the key is for ("alice's laptop"), shown by `key list`; absent in keys made without one. */
  label?: string;
  /** base64 of seal(derivedKey, JSON(MasterKeyData), aad = "fole-key:" + repositoryId) */
  data: string;
}

/** The longest key label: a name, not a note. */
const MAX_KEY_LABEL = 100;

/** Why `label` cannot be a key's label (empty, too long, or a control character), or undefined. */
export function keyLabelProblem(label: string): string | undefined {
  if (label.trim() === '') return 'it is empty';
  if (label.length > MAX_KEY_LABEL) return `it is longer than ${MAX_KEY_LABEL} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: what is refused
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/.test(label))
    return 'it holds a control character';
  return undefined;
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
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFC'), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function aadFor(repositoryId: string): Buffer {
  return Buffer.from(`fole-key:${repositoryId}`);
}

export async function wrapMasterKey(
  master: MasterKey,
  password: string,
  params: KdfParams = DEFAULT_KDF,
  label?: string,
): Promise<KeyFileData> {
  if (password.length === 0) {
    throw new FoleBackupError('USAGE', 'empty password', { hint: 'choose a non-empty password or use a key file' });
  }
  // never write a key file that every reader would skip as damaged
  if (!isSupportedKdf(params.N, params.r, params.p)) {
    throw new FoleBackupError(
      'INTERNAL',
      `scrypt parameters N=${params.N} r=${params.r} p=${params.p} are not supported (N a power of two from ` +
        `${MIN_KDF_N} to ${MAX_KDF_N}, r=${DEFAULT_KDF.r}, p=${DEFAULT_KDF.p})`,
    );
  }
  const salt = randomBytes(32);
  const derived = await derive(password, salt, params);
  const inner: MasterKeyData = { encrypt: master.encrypt.toString('base64'), repositoryId: master.repositoryId };
  const sealed = seal(derived, Buffer.from(JSON.stringify(inner)), aadFor(master.repositoryId));
  return {
    version: 1,
    kdf: 'scrypt',
    ...params,
    salt: salt.toString('base64'),
    createdAt: new Date().toISOString(),
    host: hostname(),
    username: currentUser(),
    ...(label === undefined ? {} : { label }),
    data: sealed.toString('base64'),
  };
}

/**
 * Parse a key file's bytes; throws REPO_CORRUPT "key file NAME: why" when they
 * are not a key file this build writes (scrypt parameters included, see
 * isSupportedKdf), so a caller never derives with numbers it would not choose.
 */
export function parseKeyFile(bytes: Uint8Array, name: string): KeyFileData {
  const bad = (why: string, cause?: unknown): FoleBackupError =>
    new FoleBackupError('REPO_CORRUPT', `key file ${name}: ${why}`, cause === undefined ? {} : { cause });
  if (bytes.length > MAX_KEY_FILE_BYTES) throw bad(`${bytes.length} bytes, more than a key file can be`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw bad('not JSON', err);
  }
  const k = v as Partial<KeyFileData>;
  if (typeof v !== 'object' || v === null || k.version !== 1 || k.kdf !== 'scrypt')
    throw bad('not a key file of a version this build reads');
  if (!isSupportedKdf(k.N, k.r, k.p))
    throw bad(`unsupported scrypt parameters N=${String(k.N)} r=${String(k.r)} p=${String(k.p)}`);
  if (
    typeof k.salt !== 'string' ||
    typeof k.data !== 'string' ||
    typeof k.createdAt !== 'string' ||
    typeof k.host !== 'string' ||
    typeof k.username !== 'string'
  ) {
    throw bad('a field is missing or of the wrong type');
  }
  if (k.label !== undefined && (typeof k.label !== 'string' || keyLabelProblem(k.label) !== undefined))
    throw bad('its label is not a short line of text');
  return k as KeyFileData;
}

/** What a password does with one key file. */
export type Unwrapped =
  /** It opens the key file, which belongs to the repository. */
  | { kind: 'opened'; master: MasterKey }
  /** It does not open the key file. */
  | { kind: 'wrong-password' }
  /**
   * It opens the key file, but the key file was made for another repository
   * id than the config's (authenticated: the config was replaced or edited).
   */
  | { kind: 'other-repository'; repositoryId: string };

/**
 * Unwrap with a password, for the repository whose config says `repositoryId`.
 * The key file is sealed with that id as associated data, so a wrong password
 * and a changed config id fail alike; when both fail, the id the key file was
 * sealed for is recovered (see decryptUnverified) and authenticated, which
 * tells a replaced config from a wrong password. Throws REPO_CORRUPT for a key
 * file whose sealed content, once authenticated, is not a master key.
 */
export async function unwrapMasterKey(key: KeyFileData, password: string, repositoryId: string): Promise<Unwrapped> {
  const derived = await derive(password, Buffer.from(key.salt, 'base64'), { N: key.N, r: key.r, p: key.p });
  const sealed = Buffer.from(key.data, 'base64');
  let plain: Buffer;
  try {
    plain = open(derived, sealed, 'key file', aadFor(repositoryId));
  } catch (err) {
    if (!(err instanceof StopError)) throw err;
    const other = sealedFor(derived, sealed);
    return other === undefined ? { kind: 'wrong-password' } : { kind: 'other-repository', repositoryId: other };
  }
  let inner: Partial<MasterKeyData>;
  try {
    inner = JSON.parse(plain.toString('utf8')) as Partial<MasterKeyData>;
  } catch (err) {
    throw new FoleBackupError('REPO_CORRUPT', 'key file: its sealed master key is not JSON', { cause: err });
  }
  const encrypt = typeof inner.encrypt === 'string' ? Buffer.from(inner.encrypt, 'base64') : Buffer.alloc(0);
  if (encrypt.length !== KEY_BYTES || inner.repositoryId !== repositoryId) {
    throw new FoleBackupError('REPO_CORRUPT', 'key file does not belong to this repository', {
      hint: 'the repository config or key files were mixed up; restore them from a copy',
    });
  }
  return { kind: 'opened', master: { encrypt, repositoryId } };
}

/** The repository id a key file was sealed for, if `derived` opens it under that id; else undefined. */
function sealedFor(derived: Buffer, sealed: Buffer): string | undefined {
  const guess = decryptUnverified(derived, sealed);
  if (guess === undefined) return undefined;
  let id: unknown;
  try {
    id = (JSON.parse(guess.toString('utf8')) as { repositoryId?: unknown }).repositoryId;
  } catch {
    // not JSON: the password is wrong (the keystream was not the one it was sealed with)
    return undefined;
  }
  if (typeof id !== 'string') return undefined;
  try {
    open(derived, sealed, 'key file', aadFor(id));
    return id;
  } catch {
    return undefined;
  }
}
