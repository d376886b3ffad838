/**
 * `dump`: one file's bytes, or a directory as a tar stream, straight from a backup. Every chunk is checked against
 * its id as it is loaded, and every file's bytes against the SHA-256 its tree entry records; on a mismatch the
 * stream ends with an error (the caller exits non-zero) rather than silently handing out other bytes.
 */
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import { deferred } from '../concurrency/deferred.js';
import { FoleBackupError, StopError } from '../errors.js';
import { isPlainName } from '../fs/byte-names.js';
import { blobsInOrder } from '../repository/blobs-ahead.js';
import { PackReaders } from '../repository/pack-readers.js';
import type { BlobReader } from '../repository/slices.js';
import type { Snapshot, TreeEntry } from '../snapshot/snapshot.js';
import { printablePath } from '../snapshot/validate.js';
import { subtree } from './tree-path.js';

/** Chunks loaded ahead of the one being written: enough to keep a pack read going, few MiB held. */
const CHUNKS_AHEAD = 4;

/** What `dump` wrote. */
export interface DumpResult {
  kind: 'file' | 'db' | 'tar';
  /** Files and databases whose bytes were written (1 for a single file). */
  files: number;
  bytes: number;
}

/** Where dumped bytes go: stdout, or one entry of a tar stream. Both say when they are full. */
interface ByteSink {
  write(data: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

async function put(out: ByteSink, data: Buffer): Promise<void> {
  if (!out.write(data)) await new Promise<void>((resolve) => out.once('drain', resolve));
}

/**
 * Write one file's (or captured database's) bytes to `out`, chunk by chunk with a few loaded ahead, and check
 * their SHA-256 against the entry. CHECKSUM_MISMATCH (a STOP) when they differ.
 */
async function writeEntryBytes(
  repo: BlobReader,
  entry: TreeEntry,
  out: ByteSink,
  readers: PackReaders,
  signal?: AbortSignal,
): Promise<number> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const data of blobsInOrder(repo, entry.chunks ?? [], readers, CHUNKS_AHEAD)) {
    signal?.throwIfAborted();
    hash.update(data);
    bytes += data.length;
    await put(out, data);
  }
  if (bytes !== entry.size || hash.digest('hex') !== entry.sha256) {
    throw new StopError(
      'CHECKSUM_MISMATCH',
      `dump ${printablePath(entry.path)}: its bytes are not the ones backed up`,
      {
        hint: 'what was written is not the file; run `fole-backup check --read-data` to find the damage',
        path: printablePath(entry.path),
      },
    );
  }
  return bytes;
}

/** The name an entry has in the tar: relative to the dumped directory's parent, as `tar -C PARENT DIR` would. */
function tarName(path: string, base: string): string {
  if (!isPlainName(path)) {
    throw new FoleBackupError('USAGE', `dump: ${printablePath(path)} is not UTF-8 and cannot be named in a tar`, {
      hint: 'restore the directory with `fole-backup restore --include` instead, which keeps names byte for byte',
    });
  }
  return base === '' ? path : path.slice(base.lastIndexOf('/') + 1);
}

/** A tar stream of everything under `dir` ('' = the whole backup), written to `out` as it is read. */
async function dumpTar(
  repo: BlobReader,
  snap: Snapshot,
  dir: string,
  out: NodeJS.WritableStream,
  signal?: AbortSignal,
): Promise<DumpResult> {
  const pack = tar.pack();
  pack.pipe(out);
  const readers = new PackReaders(repo.backend, 2);
  let files = 0;
  let bytes = 0;
  try {
    for await (const e of subtree(repo, snap.tree, dir)) {
      signal?.throwIfAborted();
      if (e.path === dir) continue;
      const head = { name: tarName(e.path, dir), mode: e.mode, mtime: new Date(e.mtimeMs), uid: e.uid, gid: e.gid };
      if (e.kind === 'dir') {
        pack.entry({ ...head, type: 'directory' });
        continue;
      }
      const written = deferred();
      const entry = pack.entry({ ...head, type: 'file', size: e.size ?? 0 }, (err) =>
        err ? written.reject(err) : written.resolve(),
      );
      bytes += await writeEntryBytes(repo, e, entry, readers, signal);
      entry.end(null);
      await written.promise;
      files++;
    }
    const ended = new Promise<void>((resolve) => pack.once('end', resolve));
    pack.finalize();
    await ended;
  } finally {
    await readers.close();
  }
  return { kind: 'tar', files, bytes };
}

/**
 * Dump `path` of a backup to `out`: a file's or database's bytes, or a directory (or '' for the whole backup) as
 * a tar stream. A path the backup does not hold is a usage error.
 */
export async function dumpPath(
  repo: BlobReader,
  snap: Snapshot,
  path: string,
  out: NodeJS.WritableStream,
  signal?: AbortSignal,
): Promise<DumpResult> {
  if (path === '') return dumpTar(repo, snap, path, out, signal);
  for await (const e of subtree(repo, snap.tree, path)) {
    if (e.path !== path) break;
    if (e.kind === 'dir') return dumpTar(repo, snap, path, out, signal);
    const readers = new PackReaders(repo.backend, 2);
    try {
      const bytes = await writeEntryBytes(repo, e, out, readers, signal);
      return { kind: e.kind, files: 1, bytes };
    } finally {
      await readers.close();
    }
  }
  throw new FoleBackupError('USAGE', `backup ${snap.backupId} holds no ${printablePath(path)}`, {
    hint: `see what it holds with \`fole-backup ls ${snap.backupId.slice(0, 8)}\``,
  });
}
