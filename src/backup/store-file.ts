/**
 * Store one file's content as fixed-size chunks: hash the whole file (the
 * manifest's sha256) and each chunk (its blob id), hand chunks to the
 * repository (which dedups, compresses, encrypts and packs them).
 *
 * A file is opened with O_NOFOLLOW, so a symlink swapped in after the scan is
 * never followed. If the file changes while it is read (size or mtime differ
 * before and after), it is read again, up to MAX_ATTEMPTS times.
 */
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { errnoCode, fsError } from '../errors.js';
import { sha256Hex } from '../crypto/hash.js';
import type { Repository } from '../repository/repository.js';

export interface StoredContent {
  size: number;
  sha256: string;
  chunks: string[];
  addedBytes: number;
}

export type StoreOutcome =
  | { status: 'stored'; content: StoredContent; stat: Stats; changedWhileReading: boolean }
  | { status: 'vanished' }
  | { status: 'not-a-file' };

const MAX_ATTEMPTS = 3;

/** Bytes read per syscall: a whole number of chunks, at least 1 MiB (small reads cost more than hashing them). */
function readSizeFor(chunkSize: number): number {
  return Math.max(1, Math.ceil((1024 * 1024) / chunkSize)) * chunkSize;
}

async function readAll(fh: FileHandle, repo: Repository, chunkSize: number, onBytes?: (n: number) => void): Promise<StoredContent> {
  const chunks: string[] = [];
  const whole = createHash('sha256');
  let size = 0;
  let addedBytes = 0;
  const readSize = readSizeFor(chunkSize);
  const buf = Buffer.allocUnsafe(readSize);
  for (;;) {
    // fill the buffer (a read may return less than asked)
    let filled = 0;
    while (filled < readSize) {
      const { bytesRead } = await fh.read(buf, filled, readSize - filled, size + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled === 0) break;
    whole.update(buf.subarray(0, filled));
    for (let off = 0; off < filled; off += chunkSize) {
      const chunk = buf.subarray(off, Math.min(off + chunkSize, filled));
      const id = sha256Hex(chunk);
      chunks.push(id);
      // the buffer is refilled only after saveBlob has settled (it has sealed a copy by then)
      addedBytes += await repo.saveBlob('data', id, chunk);
    }
    size += filled;
    onBytes?.(filled);
    if (filled < readSize) break;
  }
  const sha256 = chunks.length === 1 ? (chunks[0] as string) : whole.digest('hex');
  return { size, sha256: chunks.length === 0 ? sha256Hex(Buffer.alloc(0)) : sha256, chunks, addedBytes };
}

/** Store the file at `absPath`. `onBytes` reports content bytes as they are read. */
export async function storeFile(
  repo: Repository,
  absPath: string,
  chunkSize: number,
  onBytes?: (n: number) => void,
): Promise<StoreOutcome> {
  let fh: FileHandle;
  try {
    fh = await open(absPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return { status: 'vanished' };
    if (code === 'ELOOP') return { status: 'not-a-file' };
    throw fsError('read', absPath, err);
  }
  try {
    for (let attempt = 1; ; attempt++) {
      const before = await fh.stat();
      if (!before.isFile()) return { status: 'not-a-file' };
      let content: StoredContent;
      try {
        content = await readAll(fh, repo, chunkSize, onBytes);
      } catch (err) {
        throw fsError('read', absPath, err);
      }
      const after = await fh.stat();
      const changed = after.size !== content.size || after.mtimeMs !== before.mtimeMs;
      if (!changed || attempt === MAX_ATTEMPTS) {
        return { status: 'stored', content, stat: after, changedWhileReading: changed };
      }
    }
  } finally {
    await fh.close();
  }
}
