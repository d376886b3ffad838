/**
 * `trust doctor`: what secrets can this Unix user read? The gate protects a
 * repository only from callers that cannot read its secret (docs/TRUST.md), so
 * the agent's user must not be able to read the repository password or key
 * file, nor a human's private actor key. Run as that user, this names every
 * one it finds: in the environment, at the paths given, and in the usual places
 * (a bounded walk that recognises the files by their content).
 */
import type { Dirent } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { fingerprintOf } from './actor-key.js';

/** One secret this user can read. */
export interface Exposure {
  /** What it is, e.g. "the repository password (environment variable FOLE_BACKUP_PASSWORD)". */
  what: string;
  path?: string;
}

/** What `trust doctor` looks at. */
export interface DoctorOptions {
  env: NodeJS.ProcessEnv;
  /** Files the sysadmin says hold secrets (--secret): any of them readable is an exposure. */
  secrets: readonly string[];
  /** Folders to walk for files that look like secrets. */
  scan: readonly string[];
  /** The caller's own actor key (FOLE_BACKUP_ACTOR_KEY): reading it is expected. */
  ownKey?: string;
  /** How deep under each scanned folder, and how many files at most in all. */
  maxDepth?: number;
  maxFiles?: number;
}

/** Where secrets usually live on a FOLE host. */
export const DEFAULT_SCAN = ['/root', '/home', '/etc/fole-backup', '/srv', '/opt', '/var/lib/fole-backup'];

/** A key file `init --generate-key-file` writes: 32 random bytes, base64url, and a newline. */
const GENERATED_KEY_RE = /^[A-Za-z0-9_-]{43}\n?$/;
const HEAD_BYTES = 4096;
const MAX_SECRET_FILE = 64 * 1024;

/** What a readable file's first bytes say it is: an actor private key, a generated repository key, or nothing. */
function recognise(head: string): 'actor-key' | 'encrypted-actor-key' | 'repository-key' | undefined {
  if (head.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) return 'encrypted-actor-key';
  if (head.includes('-----BEGIN PRIVATE KEY-----')) return 'actor-key';
  if (GENERATED_KEY_RE.test(head)) return 'repository-key';
  return undefined;
}

/** Every secret this process can read, and how much of the scan it did. */
export async function findExposedSecrets(
  opts: DoctorOptions,
): Promise<{ exposures: Exposure[]; filesExamined: number; truncated: boolean }> {
  const exposures: Exposure[] = [];
  if (opts.env.FOLE_BACKUP_PASSWORD !== undefined && opts.env.FOLE_BACKUP_PASSWORD !== '') {
    exposures.push({ what: 'the repository password (environment variable FOLE_BACKUP_PASSWORD)' });
  }
  const passwordFile = opts.env.FOLE_BACKUP_PASSWORD_FILE;
  const named = [...(passwordFile !== undefined && passwordFile !== '' ? [passwordFile] : []), ...opts.secrets];
  for (const path of named) {
    if ((await readHead(path)) !== undefined) exposures.push({ what: 'a file named as holding a secret', path });
  }
  const ownFingerprint = opts.ownKey === undefined ? undefined : await fingerprintOfKeyFile(opts.ownKey);
  const seen = new Set(exposures.flatMap((e) => (e.path === undefined ? [] : [e.path])));
  const maxFiles = opts.maxFiles ?? 50_000;
  let files = 0;
  let truncated = false;
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > (opts.maxDepth ?? 5) || truncated) return;
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // not readable by this user: nothing exposed in it
    }
    for (const e of entries) {
      if (truncated) return;
      const path = join(dir, e.name);
      // directories are walked, never through a symlink (no loops, no escaping the folders given)
      if (e.isDirectory()) await walk(path, depth + 1);
      else if (e.isFile() || e.isSymbolicLink()) {
        if (++files > maxFiles) {
          truncated = true;
          return;
        }
        if (seen.has(path)) continue;
        const head = await readHead(path);
        const kind = head === undefined ? undefined : recognise(head);
        if (kind === undefined) continue;
        if (kind === 'actor-key' && ownFingerprint !== undefined && keyFingerprint(head as string) === ownFingerprint) {
          continue;
        }
        seen.add(path);
        exposures.push({
          what:
            kind === 'repository-key'
              ? 'a repository key file'
              : kind === 'actor-key'
                ? "an actor's private key"
                : "an actor's private key (passphrase-protected: still open to guessing)",
          path,
        });
      }
    }
  };
  for (const dir of opts.scan) await walk(dir, 0);
  return { exposures, filesExamined: Math.min(files, maxFiles), truncated };
}

/** The first bytes of a regular file of at most 64 KiB this user can read, or undefined. */
async function readHead(path: string): Promise<string | undefined> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_SECRET_FILE) return undefined;
    const buf = Buffer.alloc(Math.min(HEAD_BYTES, st.size));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** The fingerprint of an unencrypted private key's public half (as the registry names keys), or undefined. */
function keyFingerprint(pem: string): string | undefined {
  try {
    const spki = createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' });
    return fingerprintOf(spki.toString('base64'));
  } catch {
    return undefined;
  }
}

async function fingerprintOfKeyFile(path: string): Promise<string | undefined> {
  const head = await readHead(path);
  return head === undefined ? undefined : keyFingerprint(head);
}
