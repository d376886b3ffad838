/**
 * Actor key files on disk: `actor keygen` writes FILE (the private key, mode
 * 0600) and FILE.pub; every command that says who runs it reads FILE. Like
 * ssh, a private key others can read is refused: a key anyone on the machine
 * can copy proves nothing about who used it.
 */
import { lstat, open, rm, type FileHandle } from 'node:fs/promises';
import { errnoCode, FoleBackupError, fsError } from '../errors.js';
import {
  isEncryptedPem,
  MAX_ACTOR_KEY_FILE_BYTES,
  publicKeyFromPem,
  signerFromPem,
  type ActorSigner,
  type GeneratedActorKey,
} from './actor-key.js';

/**
 * Load the private key at `path` for signing. `passphrase` is asked only if the key is encrypted. Throws USAGE
 * for a file that is missing, too large, not a regular file or readable by group or others, and
 * PERMISSION_DENIED (a STOP) for a key that does not load (wrong passphrase, not Ed25519).
 */
export async function readActorKeyFile(path: string, passphrase: () => Promise<string>): Promise<ActorSigner> {
  let fh: FileHandle | undefined;
  let pem: string;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) throw usage(path, 'not a regular file', 'give the private key file `actor keygen` wrote');
    if ((st.mode & 0o077) !== 0) {
      throw usage(
        path,
        `its mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets others read it`,
        `make it private: chmod 600 ${path}`,
      );
    }
    if (st.size > MAX_ACTOR_KEY_FILE_BYTES) throw usage(path, 'too large to be an actor key', 'give the key file');
    pem = await fh.readFile('utf8');
  } catch (err) {
    if (err instanceof FoleBackupError) throw err;
    if (errnoCode(err) === 'ENOENT') {
      throw usage(path, 'no such file', 'make one with `fole-backup actor keygen --out FILE`');
    }
    throw fsError('read', path, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
  return signerFromPem(pem, path, isEncryptedPem(pem) ? await passphrase() : undefined);
}

/** Read a public key file (FILE.pub) as SPKI DER base64; USAGE if it is missing or not an Ed25519 public key. */
export async function readPublicKeyFile(path: string): Promise<string> {
  let pem: string;
  try {
    const fh = await open(path, 'r');
    try {
      if ((await fh.stat()).size > MAX_ACTOR_KEY_FILE_BYTES) throw usage(path, 'too large to be a public key', '');
      pem = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof FoleBackupError) throw err;
    if (errnoCode(err) === 'ENOENT') {
      throw usage(path, 'no such file', 'give the FILE.pub that `fole-backup actor keygen --out FILE` wrote');
    }
    throw fsError('read', path, err);
  }
  return publicKeyFromPem(pem, path);
}

/**
 * Write a new key pair: the private key to `path` (mode 0600) and the public key to `path.pub` (0644). Never
 * replaces a file: either exists → ALREADY_EXISTS, and nothing is written.
 */
export async function writeActorKeyFiles(path: string, key: GeneratedActorKey): Promise<void> {
  const pub = `${path}.pub`;
  for (const p of [path, pub]) {
    const exists = await lstat(p).then(
      () => true,
      (err: unknown) => errnoCode(err) !== 'ENOENT',
    );
    if (exists) {
      throw new FoleBackupError('ALREADY_EXISTS', `write ${p}: it already exists`, {
        path: p,
        hint: 'an actor key is never overwritten: choose another --out, or remove the old key yourself',
      });
    }
  }
  await writeNew(path, key.privatePem, 0o600);
  try {
    await writeNew(pub, key.publicPem, 0o644);
  } catch (err) {
    // a private key without its public half is of no use to anyone: leave nothing half-made
    await rm(path, { force: true });
    throw err;
  }
}

async function writeNew(path: string, text: string, mode: number): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'wx', mode);
    await fh.chmod(mode);
    await fh.writeFile(text);
    await fh.sync();
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') {
      throw new FoleBackupError('ALREADY_EXISTS', `write ${path}: it already exists`, { path, cause: err });
    }
    throw fsError('write', path, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function usage(path: string, why: string, hint: string): FoleBackupError {
  return new FoleBackupError('USAGE', `actor key ${path}: ${why}`, hint === '' ? { path } : { path, hint });
}
