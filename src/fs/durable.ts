/**
 * Durability in one module. Every file this tool writes that must survive a crash
 * goes through here:
 *
 *   write   <dir>/.tmp-<random>     (the final name never holds a partial file)
 *   fsync   the temp file           (its bytes are on stable storage)
 *   rename  temp -> final           (atomic replace on POSIX filesystems)
 *   fsync   <dir>                   (the rename itself is on stable storage)
 *
 * A crash at any instant leaves the old file, the new file, or (at worst) a stray
 * `.tmp-*` file that readers skip via isTempName. Same recipe as restic's local
 * backend and Litestream's file replica client.
 */

import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { link, open, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode, FoleBackupError, fsError } from '../errors.js';

const TEMP_PREFIX = '.tmp-';

/** Whether a directory entry is a temporary file left by writeFileAtomic (complete or not). */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

interface WriteOptions {
  /** Permission bits for a newly written file (before umask); default 0o600. */
  mode?: number;
}

/**
 * A file's bytes: one buffer, parts written one after the other, or a stream of them (an upload too large to
 * hold in memory). A stream that throws leaves no file: its error is what the write throws.
 */
export type FileBytes = Uint8Array | readonly Uint8Array[] | AsyncIterable<Uint8Array>;

/** Writes a whole file durably (writeFileAtomic, writeFileExclusive). */
export type FileWriter = (path: string, data: FileBytes, opts?: WriteOptions) => Promise<void>;

/**
 * Write `data` to `path` atomically and durably: when the promise resolves the file
 * is complete on stable storage; on failure the final name is untouched (old content
 * or absent) and the temp file has been removed. Errors are FoleBackupErrors from
 * fsError('write', path, …), so a full disk is code NO_SPACE.
 */
export const writeFileAtomic: FileWriter = (path, data, opts = {}) =>
  writeThroughTemp(path, data, opts, (tmp) => rename(tmp, path));

/**
 * Like writeFileAtomic, but only if `path` does not exist: the complete temp file is hard-linked to the final
 * name, which fails if anything holds that name, so of two writers racing for one name exactly one wins and
 * the other gets ALREADY_EXISTS. Nothing ever replaces an existing file. The append-only chains (registry,
 * audit log, an approval's consumption) rely on it.
 */
export const writeFileExclusive: FileWriter = (path, data, opts = {}) =>
  writeThroughTemp(path, data, opts, async (tmp) => {
    try {
      await link(tmp, path);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') {
        throw new FoleBackupError('ALREADY_EXISTS', `write ${path}: it already exists`, { path, cause: err });
      }
      throw err;
    } finally {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  });

/**
 * Write `data` into a draft beside `path` and publish it with `publish` (which gives the temp file its final name).
 * On failure the temp file is removed and the error is an fsError for `path`.
 */
async function writeThroughTemp(
  path: string,
  data: FileBytes,
  opts: WriteOptions,
  publish: (tmp: string) => Promise<void>,
): Promise<void> {
  const draft = createDraftFile(dirname(path), { ...opts, errorsName: path });
  try {
    // a stream's pieces one at a time: the next is pulled once the last is written
    if (isStream(data)) for await (const chunk of data) await draft.append([chunk]);
    else await draft.append(data instanceof Uint8Array ? [data] : data);
  } catch (err) {
    // best effort: if even the unlink fails, readers still skip `.tmp-*` names
    await draft.discard();
    throw fsError('write', path, err);
  }
  await draft.publish(path, publish);
}

/**
 * A file written piece by piece before its name is known (a pack is named by the hash of its bytes): its pieces
 * go to a fresh temp file in `dir` as they come, so they need not be held in memory, and publish() gives it its
 * final name with writeFileAtomic's guarantees. A draft that is never published is a `.tmp-*` file: discard()
 * removes it, and one a crash leaves behind is what prune removes.
 */
export interface DraftFile {
  /** Append `parts` after everything appended before (appends may overlap: each has its own position). */
  append(parts: readonly Uint8Array[]): Promise<void>;
  /**
   * Wait for the appends, fsync, rename to `path` (replacing what is there) and fsync its directory. Errors are
   * fsErrors for `path` (a full disk is NO_SPACE); on failure the temp file is removed. `how`: gives the complete
   * temp file its name instead of the rename (writeFileExclusive links it), and removes the temp name if it stays.
   */
  publish(path: string, how?: (tmp: string) => Promise<void>): Promise<void>;
  /** Remove the temp file (after a failure, or when the draft is not wanted); never throws. */
  discard(): Promise<void>;
}

/** Start a draft in `dir` (which must exist). The temp file is made at once; an error opening it comes out of the
 * first append, or of publish. `errorsName`: the path an append's error names (default: the temp file's). */
export function createDraftFile(dir: string, opts: WriteOptions & { errorsName?: string } = {}): DraftFile {
  const tmp = join(dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
  // 'wx': never follow or reuse an existing file under the temp name
  const opened = open(tmp, 'wx', opts.mode ?? 0o600);
  opened.catch(() => undefined);
  let size = 0;
  let accepting = true;
  let failure: FoleBackupError | undefined;
  const appends = new Set<Promise<void>>();
  let removed: Promise<void> | undefined;
  const remove = (): Promise<void> =>
    (removed ??= (async () => {
      accepting = false;
      await Promise.allSettled([...appends]);
      const fh = await opened.catch(() => undefined);
      if (fh === undefined) return;
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
    })());
  return {
    append(parts) {
      if (!accepting) return Promise.reject(new FoleBackupError('INTERNAL', `write ${tmp}: the draft has ended`));
      const at = size;
      for (const p of parts) size += p.length;
      const write = opened
        .then((fh) => writeAll(fh, parts, at))
        .catch((err: unknown) => {
          failure ??= fsError('write', opts.errorsName ?? tmp, err);
          throw failure;
        });
      appends.add(write);
      const done = (): boolean => appends.delete(write);
      void write.then(done, done);
      return write;
    },
    async publish(path, how = (from) => rename(from, path)) {
      if (!accepting) throw new FoleBackupError('INTERNAL', `write ${path}: the draft has ended`);
      accepting = false;
      try {
        const fh = await opened;
        // every append settled before the file goes; the first that failed fails the draft
        await Promise.allSettled([...appends]);
        if (failure !== undefined) throw failure;
        await fh.sync();
        await fh.close();
        await how(tmp);
        removed = Promise.resolve();
      } catch (err) {
        await remove();
        throw fsError('write', path, err);
      }
      // the new name must be durable; the temp name's removal need not be (a `.tmp-*` name is never an object)
      await fsyncDir(dirname(path));
    },
    discard: remove,
  };
}

function isStream(data: FileBytes): data is AsyncIterable<Uint8Array> {
  return Symbol.asyncIterator in data;
}

/** Write `parts` one after the other from `start` in `fh` (writev, however short each write is). */
async function writeAll(fh: FileHandle, parts: readonly Uint8Array[], start = 0): Promise<void> {
  let rest = parts.filter((p) => p.length > 0);
  let position = start;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest as Uint8Array[], position);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    position += bytesWritten;
    // drop what was written, keeping the unwritten end of a part cut short
    let skip = bytesWritten;
    let i = 0;
    while (i < rest.length && skip >= (rest[i] as Uint8Array).length) skip -= (rest[i++] as Uint8Array).length;
    rest = rest.slice(i);
    if (skip > 0) rest[0] = (rest[0] as Uint8Array).subarray(skip);
  }
}

/**
 * fsync a directory so that entries created, renamed or removed in it are durable.
 * Filesystems that cannot sync a directory (EINVAL/ENOTSUP, e.g. some network
 * mounts) are tolerated, as restic does; any other failure is thrown.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR') throw fsError('sync', dir, err);
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Rename `from` to `to` and fsync both parent directories (once if they are the same). */
export async function renameDurable(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    throw fsError('rename', `${from} -> ${to}`, err);
  }
  await fsyncDir(dirname(to));
  if (dirname(from) !== dirname(to)) await fsyncDir(dirname(from));
}

/** Remove a file and fsync its directory. A missing file is not an error. */
export async function removeDurable(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw fsError('remove', path, err);
  }
  await fsyncDir(dirname(path));
}
