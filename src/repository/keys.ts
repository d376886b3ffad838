/**
 * Managing a repository's key files: several people or machines each have
 * their own password or generated key for the same master key. Adding or
 * removing one never re-encrypts data. Key changes take the exclusive lock.
 */
import { DEFAULT_KDF, keyLabelProblem } from '../crypto/keys.js';
import { FoleBackupError } from '../errors.js';
import { RepositoryLock } from './lock.js';
import { keyFileProblem, readKeyFile, type Repository } from './repository.js';

/** One key file as `key list` shows it. */
export interface KeyInfo {
  name: string;
  createdAt: string;
  host: string;
  username: string;
  /** What the key is for, when it was given one. */
  label?: string;
  /** The key this handle was opened with. */
  current: boolean;
  /** Why the key file cannot be used (it could not be read or is not a key file); absent when it is sound. */
  damaged?: string;
}

/** Every key file, oldest first; damaged ones (see KeyInfo.damaged) last, so they can be seen and removed. */
export async function listKeys(repo: Repository): Promise<KeyInfo[]> {
  const out: KeyInfo[] = [];
  for await (const o of repo.backend.list('keys')) {
    try {
      const k = await readKeyFile(repo.backend, o);
      out.push({
        name: o.name,
        createdAt: k.createdAt,
        host: k.host,
        username: k.username,
        ...(k.label === undefined ? {} : { label: k.label }),
        current: o.name === repo.keyName,
      });
    } catch (err) {
      if (!(err instanceof FoleBackupError)) throw err;
      out.push({
        name: o.name,
        createdAt: '',
        host: '',
        username: '',
        current: false,
        damaged: keyFileProblem(err, o.name),
      });
    }
  }
  const rank = (k: KeyInfo): number => (k.damaged === undefined ? 0 : 1);
  return out.sort(
    (a, b) => rank(a) - rank(b) || a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name),
  );
}

/** Add a key file for a new password to the repository's one master key (under the exclusive lock).
 * Returns the new key file's name. */
export async function addKey(repo: Repository, password: string, label?: string): Promise<string> {
  checkLabel(label);
  const lock = await RepositoryLock.acquire(repo, { exclusive: true, operation: 'key add' });
  try {
    return await repo.addKey(password, DEFAULT_KDF, label);
  } finally {
    await lock.release();
  }
}

function checkLabel(label: string | undefined): void {
  const problem = label === undefined ? undefined : keyLabelProblem(label);
  if (problem !== undefined) throw new FoleBackupError('USAGE', `--label: ${problem}`);
}

/**
 * Change the password of the key in use: a key file for the new password is written (with the old one's label
 * unless a new one is given), then the old key file is removed, under one exclusive lock. Killed between the
 * two, both passwords open the repository, and `key list` shows both: nothing is ever locked out.
 */
export async function changePassword(
  repo: Repository,
  password: string,
  label?: string,
): Promise<{ added: string; removed: string }> {
  checkLabel(label);
  const lock = await RepositoryLock.acquire(repo, { exclusive: true, operation: 'key passwd' });
  try {
    const current = (await listKeys(repo)).find((k) => k.current);
    const added = await repo.addKey(password, DEFAULT_KDF, label ?? current?.label);
    await repo.backend.remove({ type: 'keys', name: repo.keyName });
    return { added, removed: repo.keyName };
  } finally {
    await lock.release();
  }
}

/** Remove a key file (a unique prefix of its name is enough). Never the one in use, never the last. */
export async function removeKey(repo: Repository, ref: string): Promise<string> {
  const lock = await RepositoryLock.acquire(repo, { exclusive: true, operation: 'key remove' });
  try {
    const keys = await listKeys(repo);
    const matches = keys.filter((k) => k.name.startsWith(ref));
    if (ref.length < 8 || matches.length !== 1) {
      const ambiguous = ref.length >= 8 && matches.length > 1;
      const why = ambiguous
        ? `ambiguous prefix, ${matches.length} keys start with it`
        : 'no such key (give at least 8 characters of its name)';
      throw new FoleBackupError('USAGE', `key ${ref}: ${why}`, {
        hint: ambiguous
          ? `name it by more of its name: ${matches
              .slice(0, 5)
              .map((k) => k.name)
              .join(', ')}`
          : 'see `fole-backup key list`',
      });
    }
    const k = matches[0] as KeyInfo;
    if (k.current) {
      throw new FoleBackupError('USAGE', `key ${k.name.slice(0, 12)} is the one you opened the repository with`, {
        hint: 'open the repository with another key to remove this one, so you cannot lock yourself out',
      });
    }
    if (k.damaged === undefined && keys.filter((o) => o.damaged === undefined).length <= 1) {
      throw new FoleBackupError('USAGE', 'refusing to remove the last key: the repository would be unreadable forever');
    }
    await repo.backend.remove({ type: 'keys', name: k.name });
    return k.name;
  } finally {
    await lock.release();
  }
}
