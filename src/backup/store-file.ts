/**
 * Store one file's content as fixed-size chunks: hash the whole file (the
 * manifest's sha256) and each chunk (its blob id), hand chunks to the
 * repository (which dedups, compresses, encrypts and packs them).
 *
 * Two paths, measured on 100k-file trees: a file of at most SMALL_FILE bytes
 * (tiles, JSON, most uploads) is read with synchronous calls into a buffer of
 * its own size — five promise round trips through the thread pool per 4 KB
 * tile cost more than reading it; larger files are read asynchronously, 1 MiB
 * (a whole number of chunks) per call.
 *
 * A file is opened with O_NOFOLLOW, so a symlink swapped in after the scan is
 * never followed. If the file changes while it is read (size or mtime differ
 * before and after), it is read again, up to MAX_ATTEMPTS times.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { errnoCode, fsError } from '../errors.js';
import { sha256Hex } from '../crypto/hash.js';
import type { Repository } from '../repository/repository.js';

export interface StoredContent {
  size: number;
  sha256: string;
  chunks: string[];
}

export type StoreOutcome =
  | { status: 'stored'; content: StoredContent; stat: Stats; changedWhileReading: boolean }
  | { status: 'vanished' }
  | { status: 'not-a-file' };

const MAX_ATTEMPTS = 3;
/** Files up to this size take the synchronous path. */
export const SMALL_FILE = 256 * 1024;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;
const EMPTY_SHA256 = sha256Hex(Buffer.alloc(0));

/** Bytes read per call: a whole number of chunks, at least 1 MiB. */
function readSizeFor(chunkSize: number): number {
  return Math.max(1, Math.ceil((1024 * 1024) / chunkSize)) * chunkSize;
}

const changed = (a: Stats, b: Stats, size: number): boolean => b.size !== size || b.mtimeMs !== a.mtimeMs;

/** Hash and store `data` as chunks; `whole` is updated only for multi-chunk content. */
async function storeChunks(repo: Repository, data: Buffer, chunkSize: number, chunks: string[], whole: ReturnType<typeof createHash> | undefined): Promise<void> {
  whole?.update(data);
  for (let off = 0; off < data.length; off += chunkSize) {
    const chunk = data.subarray(off, Math.min(off + chunkSize, data.length));
    const id = sha256Hex(chunk);
    chunks.push(id);
    // the buffer is reused only after saveBlob has settled (it has sealed a copy by then)
    await repo.saveBlob('data', id, chunk);
  }
}

function contentOf(chunks: string[], size: number, whole: ReturnType<typeof createHash> | undefined): StoredContent {
  const sha256 = chunks.length === 0 ? EMPTY_SHA256 : chunks.length === 1 ? (chunks[0] as string) : (whole as ReturnType<typeof createHash>).digest('hex');
  return { size, sha256, chunks };
}

/** Read a whole small file synchronously. undefined = it is not small after all. */
function readSmall(fd: number, absPath: string): { data: Buffer; before: Stats; after: Stats } | undefined {
  try {
    const before = fstatSync(fd);
    if (!before.isFile() || before.size > SMALL_FILE) return undefined;
    // one byte more than expected, to notice a file that grew
    const buf = Buffer.allocUnsafe(before.size + 1);
    let filled = 0;
    for (;;) {
      const n = readSync(fd, buf, filled, buf.length - filled, filled);
      if (n === 0) break;
      filled += n;
      if (filled === buf.length) return undefined; // grew past what we sized: take the general path
    }
    return { data: buf.subarray(0, filled), before, after: fstatSync(fd) };
  } catch (err) {
    throw fsError('read', absPath, err);
  }
}

async function readLarge(fh: FileHandle, repo: Repository, chunkSize: number, onBytes?: (n: number) => void): Promise<StoredContent> {
  const chunks: string[] = [];
  const whole = createHash('sha256');
  let size = 0;
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
    await storeChunks(repo, buf.subarray(0, filled), chunkSize, chunks, whole);
    size += filled;
    onBytes?.(filled);
    if (filled < readSize) break;
  }
  return contentOf(chunks, size, whole);
}

/** Store the file at `absPath`. `onBytes` reports content bytes as they are read. */
export async function storeFile(
  repo: Repository,
  absPath: string,
  chunkSize: number,
  onBytes?: (n: number) => void,
): Promise<StoreOutcome> {
  // the synchronous path first: most files in a STORAGE_ROOT are small
  let fd: number;
  try {
    fd = openSync(absPath, OPEN_FLAGS);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return { status: 'vanished' };
    if (code === 'ELOOP') return { status: 'not-a-file' };
    throw fsError('read', absPath, err);
  }
  try {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const small = readSmall(fd, absPath);
      if (small === undefined) break;
      const isChanged = changed(small.before, small.after, small.data.length);
      if (!isChanged || attempt === MAX_ATTEMPTS) {
        const chunks: string[] = [];
        const multi = small.data.length > chunkSize ? createHash('sha256') : undefined;
        await storeChunks(repo, small.data, chunkSize, chunks, multi);
        onBytes?.(small.data.length);
        return { status: 'stored', content: contentOf(chunks, small.data.length, multi), stat: small.after, changedWhileReading: isChanged };
      }
    }
  } finally {
    closeSync(fd);
  }

  let fh: FileHandle;
  try {
    fh = await open(absPath, OPEN_FLAGS);
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
        content = await readLarge(fh, repo, chunkSize, onBytes);
      } catch (err) {
        throw fsError('read', absPath, err);
      }
      const after = await fh.stat();
      const isChanged = changed(before, after, content.size);
      if (!isChanged || attempt === MAX_ATTEMPTS) {
        return { status: 'stored', content, stat: after, changedWhileReading: isChanged };
      }
    }
  } finally {
    await fh.close();
  }
}
