/**
 * Which token created each lock, so that in append-only mode a lock is removed only by the token that made it
 * (restic's rest-server lets any client delete any lock: a client could then remove the exclusive lock of an
 * admin's prune under way). Kept in memory and in a small file beside the repository's objects, written through
 * the durable path, so a restart of the server keeps it.
 */
import { readFile } from 'node:fs/promises';
import { errnoCode, FoleBackupError, fsError } from '../errors.js';
import { writeFileAtomic } from '../fs/durable.js';

export class LockOwners {
  private owners = new Map<string, string>();
  /** Writes of the file, one after the other, each with the whole map as it is then. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string) {}

  /** The owners recorded in `file` (none if it does not exist yet). */
  static async load(file: string): Promise<LockOwners> {
    const lo = new LockOwners(file);
    const text = await readFile(file, 'utf8').catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw fsError('read', file, err);
    });
    if (text === undefined) return lo;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      v = undefined;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new FoleBackupError('REPO_CORRUPT', `read ${file}: not a lock owners file`, {
        path: file,
        hint: 'remove it while the server is stopped: every lock can then be removed by the admin token only',
      });
    }
    for (const [name, owner] of Object.entries(v)) if (typeof owner === 'string') lo.owners.set(name, owner);
    return lo;
  }

  ownerOf(lock: string): string | undefined {
    return this.owners.get(lock);
  }

  /** Record that `owner` (a token id) creates `lock`; durable when the promise resolves. */
  set(lock: string, owner: string): Promise<void> {
    this.owners.set(lock, owner);
    return this.persist();
  }

  /** Forget `lock` (it was removed, or its creation failed). */
  delete(lock: string): Promise<void> {
    if (!this.owners.delete(lock)) return Promise.resolve();
    return this.persist();
  }

  private persist(): Promise<void> {
    const next = this.writing
      .catch(() => undefined)
      .then(() => writeFileAtomic(this.file, Buffer.from(JSON.stringify(Object.fromEntries(this.owners)))));
    this.writing = next;
    return next;
  }
}
