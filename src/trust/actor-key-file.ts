/**
 * Actor key files on disk: `actor keygen` writes FILE (the private key, mode
 * 0600) and FILE.pub; every command that says who runs it reads FILE. Like
 * ssh, a private key others can read is refused: a key anyone on the machine
 * can copy proves nothing about who used it.
 */
import { lstat, open, rm, type FileHandle } from 'node:fs/promises';
import { errnoCode, FoleBackupError, fsError } from '../errors.js';
import { writeFileExclusive } from '../fs/durable.js';
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
  const pem = await readKeyText(path, true);
  return signerFromPem(pem, path, isEncryptedPem(pem) ? await passphrase() : undefined);
}

/** Read a public key file (FILE.pub) as SPKI DER base64; USAGE if it is missing or not an Ed25519 public key. */
export async function readPublicKeyFile(path: string): Promise<string> {
  return publicKeyFromPem(await readKeyText(path, false), path);
}

/** The text of a key file; a private one must be readable by its owner only. */
async function readKeyText(path: string, isPrivate: boolean): Promise<string> {
  const what = isPrivate ? 'the private key file `actor keygen` wrote' : 'the FILE.pub that `actor keygen` wrote';
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) throw usage(path, 'not a regular file', `give ${what}`);
    if (isPrivate && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw usage(path, `its mode ${mode} lets others read it`, `make it private: chmod 600 ${path}`);
    }
    if (st.size > MAX_ACTOR_KEY_FILE_BYTES) throw usage(path, 'too large to be an actor key', `give ${what}`);
    return await fh.readFile('utf8');
  } catch (err) {
    if (err instanceof FoleBackupError) throw err;
    if (errnoCode(err) === 'ENOENT')
      throw usage(path, 'no such file', `give ${what} (fole-backup actor keygen --out FILE)`);
    throw fsError('read', path, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
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
  await writeFileExclusive(path, Buffer.from(key.privatePem), { mode: 0o600 });
  try {
    await writeFileExclusive(pub, Buffer.from(key.publicPem), { mode: 0o644 });
  } catch (err) {
    // a private key without its public half is of no use to anyone: leave nothing half-made
    await rm(path, { force: true });
    throw err;
  }
}

function usage(path: string, why: string, hint: string): FoleBackupError {
  return new FoleBackupError('USAGE', `actor key ${path}: ${why}`, { path, hint });
}
