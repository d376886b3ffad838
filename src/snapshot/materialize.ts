/**
 * Write one backed-up file's content to a new path, verifying as it goes: each
 * chunk against its id (Repository.loadBlob), then the whole file's size and
 * SHA-256 against the tree entry. Used by restore (into staging) and by verify
 * (into scratch). The destination must not exist; it is fsynced before return.
 */
import { createHash } from 'node:crypto';
import { open, utimes, chmod } from 'node:fs/promises';
import { StopError, fsError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { TreeEntry } from './snapshot.js';

export interface MaterializeOptions {
  /** Also apply the entry's mode and mtime (restore does; scratch copies need not). */
  applyMetadata?: boolean;
  onBytes?: (n: number) => void;
  signal?: AbortSignal;
}

function mismatch(path: string, what: string): StopError {
  return new StopError('CHECKSUM_MISMATCH', `${path}: ${what}`, {
    path,
    hint: 'the backup is damaged; nothing live was touched — run `fole-backup check --read-data` and use another backup',
  });
}

export async function materializeEntry(repo: Repository, entry: TreeEntry, dest: string, opts: MaterializeOptions = {}): Promise<void> {
  let fh;
  try {
    fh = await open(dest, 'wx', 0o600);
  } catch (err) {
    throw fsError('write', dest, err);
  }
  const hash = createHash('sha256');
  let size = 0;
  try {
    for (const id of entry.chunks ?? []) {
      opts.signal?.throwIfAborted();
      const data = await repo.loadBlob(id);
      hash.update(data);
      size += data.length;
      if (size > (entry.size ?? 0)) throw mismatch(entry.path, `content is longer than the recorded ${entry.size ?? 0} bytes`);
      try {
        await fh.write(data);
      } catch (err) {
        throw fsError('write', dest, err);
      }
      opts.onBytes?.(data.length);
    }
    if (size !== entry.size) throw mismatch(entry.path, `content is ${size} bytes, the backup recorded ${entry.size ?? 0}`);
    if (hash.digest('hex') !== entry.sha256) throw mismatch(entry.path, 'SHA-256 of the restored content does not match the manifest');
    try {
      await fh.sync();
    } catch (err) {
      throw fsError('write', dest, err);
    }
  } finally {
    await fh.close();
  }
  if (opts.applyMetadata) {
    try {
      await chmod(dest, entry.mode);
      // seconds as a number keep sub-millisecond precision (a Date would not)
      await utimes(dest, entry.mtimeMs / 1000, entry.mtimeMs / 1000);
    } catch (err) {
      throw fsError('write', dest, err);
    }
  }
}
