/**
 * Worker thread of restore (main-thread side: src/restore/worker-pool.ts,
 * driven by src/restore/write-files.ts). The main thread keeps the repository
 * and its backend: it reads pack spans and hands each one over (its bytes
 * transferred, not copied); the workers do the per-byte and per-file work —
 * open every blob (AEAD, decompress, SHA-256 against its id where no whole-file
 * hash covers it), write it, hash
 * whole files again, integrity-check databases — so a restore uses every core
 * and its reads overlap its writes.
 *
 * Protocol (one job per message; every answer carries the job id):
 *   main → worker  {t:'span', job, pack, data, root, span}
 *                    data: the span's bytes (transferred); span: its blobs and
 *                    their targets (src/restore/span-job.ts). Each blob is
 *                    opened from data[at, at+length) and written to every
 *                    target: a one-chunk file (`create`) is created here,
 *                    exclusively, written, given its owner (when the restore
 *                    gives owners), mode and mtime, closed; a
 *                    target in a longer file (created empty by the main
 *                    thread) is written at its offset
 *   main → worker  {t:'verify', job, file, path, size, sha256, meta?}
 *                    read the written file back: its size and SHA-256 must be
 *                    the backup's (CHECKSUM_MISMATCH); then its owner, mode and mtime
 *   main → worker  {t:'database', job, file, path, meta}
 *                    src/restore/check-database.ts, then owner, mode and mtime
 *   worker → main  {t:'done', job, bytes, buffer?}
 *                    bytes: content bytes written; buffer: a span's buffer,
 *                    transferred back to take another span's bytes
 *                    (src/concurrency/buffer-pool.ts)
 *                  {t:'failed', job, error}   a FoleBackupError as data
 *                  {t:'cancelled', job}       the pool was stopping
 * Jobs run one at a time, synchronously, so every descriptor a job opens is
 * closed before its answer is sent. A shared flag (workerData.cancel) set by
 * the main thread stops the work between blobs: after a failure or an abort
 * the pool waits for the answers of jobs already sent, which come quickly. (A
 * worker that dies mid-job cannot close what it opened: the main thread then
 * closes whatever is still open under staging.)
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, openSync, readSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { errorToData, fsError, type ErrorData } from '../errors.js';
import { fsPath } from '../fs/byte-names.js';
import { BlobCipher, type BlobCipherForWorker } from '../repository/blob-cipher.js';
import { checkRestoredDatabase } from './check-database.js';
import { decodeSpan, type EncodedSpan, type FileMeta } from './span-job.js';
import { contentMismatch } from './window-plan.js';
import { applyMeta } from './apply-meta.js';
import { utimeSeconds } from '../fs/file-times.js';
import { optionalNativeModule } from '../native/module.js';

export type ToWorker =
  | { t: 'span'; job: number; pack: string; data: Uint8Array; root: string; span: EncodedSpan }
  | { t: 'verify'; job: number; file: string; path: string; size: number; sha256: string; meta?: FileMeta }
  | { t: 'database'; job: number; file: string; path: string; meta: FileMeta };

export type FromWorker =
  | { t: 'done'; job: number; bytes: number; buffer?: ArrayBuffer }
  | { t: 'failed'; job: number; error: ErrorData }
  | { t: 'cancelled'; job: number };

export interface RestoreWorkerData {
  /** Opens the blobs (Repository.blobCipher). */
  cipher: BlobCipherForWorker;
  /** Int32 flag: non-zero when the pool is stopping. */
  cancel: SharedArrayBuffer;
  /** The process umask: a file created with its final mode needs no chmod when the umask keeps all of it. */
  umask: number;
}

const { cipher: carried, cancel, umask } = workerData as RestoreWorkerData;
const cipher = BlobCipher.fromWorker(carried);
const cancelled = new Int32Array(cancel);
const port = parentPort;
if (port === null) throw new Error('restore-worker must run in a worker thread');

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
const readBuf = Buffer.allocUnsafe(1024 * 1024);
/**
 * Where each blob's plaintext goes: it is written (and hashed) before the next blob is opened. A new buffer per
 * blob lived until this thread's next garbage collection, seldom in a worker that allocates little: 30–50 MB more
 * peak RSS on a restore of many 16 KiB database chunks.
 */
let plainBuf = Buffer.allocUnsafeSlow(1024 * 1024);

function plainRoom(rawLength: number): Buffer {
  if (plainBuf.length < rawLength) plainBuf = Buffer.allocUnsafeSlow(rawLength);
  return plainBuf;
}

class Cancelled extends Error {}

function stopping(): boolean {
  return Atomics.load(cancelled, 0) !== 0;
}

function writeAll(fd: number, data: Buffer, offset: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
}

/** The mode to create a one-chunk file with, and whether it still needs a chmod after. */
function creationMode(meta: FileMeta | undefined): { mode: number; chmod: boolean } {
  // plain permission bits the umask leaves alone: created with them, no chmod needed
  if (meta !== undefined && (meta.mode & ~0o777) === 0 && (meta.mode & umask) === 0)
    return { mode: meta.mode, chmod: false };
  return { mode: 0o600, chmod: meta !== undefined };
}

/** A longer file a span writes to: its descriptor, where the span wrote into it, and how many bytes. */
interface Written {
  fd: number;
  from: number;
  to: number;
  bytes: number;
}

/**
 * A span's writes into one file of at least this many bytes are sent on to the disk as soon as they are written;
 * smaller ones (tiles, small files) wait for the restore's syncs: a system call each would cost more than it saves.
 */
const WRITE_BACK_BYTES = 1024 * 1024;
/** The native module's writeBack, where the module is built (it is a hint: without it, the final sync does all). */
const writeBack = optionalNativeModule()?.writeBack;

function writeSpan(pack: string, data: Uint8Array, root: string, span: EncodedSpan): number {
  const bytesOf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // descriptors of the longer files this span writes to, each opened once, and the range of it written
  const open = new Map<string, Written>();
  let bytes = 0;
  try {
    for (const b of decodeSpan(span)) {
      if (stopping()) throw new Cancelled();
      // A chunk that goes only into longer files is not hashed alone: each of those
      // files is read back and hashed whole (verifyFile, sent for every file with more
      // than one chunk), which checks these bytes against the backup's SHA-256 anyway.
      // A one-chunk file (`create`) has no such check: its hash is the chunk's id.
      const checkId = b.targets.some((t) => t.create);
      const plain = cipher.open(b, pack, bytesOf.subarray(b.at, b.at + b.length), checkId, plainRoom(b.rawLength));
      for (const t of b.targets) {
        // backup paths are relative, without '.', '..' or empty parts (src/snapshot/validate.ts); names that are
        // not UTF-8 reach the file system as bytes (src/fs/byte-names.ts)
        const file = `${root}/${t.path}`;
        if (!t.create) {
          try {
            let w = open.get(file);
            if (w === undefined) {
              w = { fd: openSync(fsPath(file), constants.O_WRONLY), from: t.offset, to: t.offset, bytes: 0 };
              open.set(file, w);
            }
            writeAll(w.fd, plain, t.offset);
            w.from = Math.min(w.from, t.offset);
            w.to = Math.max(w.to, t.offset + plain.length);
            w.bytes += plain.length;
          } catch (err) {
            throw fsError('write', file, err);
          }
        } else {
          const { mode, chmod } = creationMode(t.meta);
          let fd: number | undefined;
          try {
            fd = openSync(fsPath(file), CREATE, mode);
            writeAll(fd, plain, t.offset);
            if (t.meta !== undefined) {
              // the owner before the mode: a chown may clear set-id bits
              const owner = t.meta.owner;
              if (owner !== undefined) fchownSync(fd, owner.uid, owner.gid);
              if (chmod || owner !== undefined) fchmodSync(fd, t.meta.mode);
              futimesSync(fd, utimeSeconds(t.meta.mtimeMs), utimeSeconds(t.meta.mtimeMs));
            }
          } catch (err) {
            throw fsError('write', file, err);
          } finally {
            if (fd !== undefined) closeSync(fd);
          }
        }
        bytes += plain.length;
      }
    }
    // what a span wrote into a longer file goes on to the disk now, in the background (native/write-back.c)
    for (const w of open.values()) if (w.bytes >= WRITE_BACK_BYTES) writeBack?.(w.fd, w.from, w.to - w.from);
  } finally {
    for (const w of open.values()) closeSync(w.fd);
  }
  return bytes;
}

/** The chunks were verified one by one; the whole file is hashed again from what is on disk. */
function verifyFile(file: string, path: string, size: number, sha256: string, meta: FileMeta | undefined): void {
  const hash = createHash('sha256');
  let read = 0;
  let fd: number | undefined;
  try {
    fd = openSync(fsPath(file), constants.O_RDONLY);
    for (;;) {
      if (stopping()) throw new Cancelled();
      const n = readSync(fd, readBuf, 0, readBuf.length, read);
      if (n === 0) break;
      hash.update(readBuf.subarray(0, n));
      read += n;
    }
  } catch (err) {
    throw err instanceof Cancelled ? err : fsError('write', file, err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (read !== size) throw contentMismatch(path, `restored content is ${read} bytes, the backup recorded ${size}`);
  if (hash.digest('hex') !== sha256)
    throw contentMismatch(path, 'SHA-256 of the restored content does not match the manifest');
  if (meta !== undefined) applyMeta(file, meta);
}

function run(m: ToWorker): number {
  switch (m.t) {
    case 'span':
      return writeSpan(m.pack, m.data, m.root, m.span);
    case 'verify':
      verifyFile(m.file, m.path, m.size, m.sha256, m.meta);
      return 0;
    case 'database':
      checkRestoredDatabase(m.file, m.path);
      applyMeta(m.file, m.meta);
      return 0;
  }
}

port.on('message', (m: ToWorker) => {
  let answer: FromWorker;
  let transfer: ArrayBuffer[] = [];
  try {
    answer = stopping() ? { t: 'cancelled', job: m.job } : { t: 'done', job: m.job, bytes: run(m) };
    // the span is written (synchronously: nothing holds its bytes now), so its buffer goes back for the next one
    if (answer.t === 'done' && m.t === 'span' && m.data.buffer instanceof ArrayBuffer) {
      answer.buffer = m.data.buffer;
      transfer = [m.data.buffer];
    }
  } catch (err) {
    answer =
      err instanceof Cancelled ? { t: 'cancelled', job: m.job } : { t: 'failed', job: m.job, error: errorToData(err) };
  }
  port.postMessage(answer, transfer);
});
