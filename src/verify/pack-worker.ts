/**
 * Worker thread of `verify --read-data` (main-thread side: pack-pool.ts). The
 * main thread keeps the repository and its backend: it reads each pack and
 * hands its bytes over (transferred, not copied); a worker does the per-byte
 * work — the SHA-256 of the whole pack, opening every blob the backup needs
 * in it (AEAD, decompress, SHA-256 against its id, with the BlobCipher
 * restore uses), writing database chunks into their scratch files — and the
 * read-back and PRAGMA integrity_check of each database, so the checks use
 * every core.
 *
 * Protocol (one job per message; every answer carries the job id):
 *   main → worker  {t:'pack', job, pack, data, hash, files, blobs}
 *                    hash: also return the SHA-256 of all of `data`
 *                    blobs: where each needed blob is in `data`; `keep` ones
 *                    have their plaintext sent back (files checked whole on
 *                    the main thread), `writes` ones are written into
 *                    files[i] at the offsets given (databases; the files
 *                    exist already)
 *   worker → main  {t:'pack', job, sha256?, failed, lengths, writeFailed, kept, keptAt}
 *                    failed: blobs that did not open, with the error as data
 *                    lengths: blobs whose plaintext length is not the index's
 *                    writeFailed: files a write failed for (not written further)
 *                    kept: the kept plaintexts, back to back (transferred)
 *   main → worker  {t:'database', job, file, size, sha256}
 *   worker → main  {t:'database', job, check}
 *                    the file read back (size, SHA-256) and, only when both
 *                    are the expected ones, integrity-checked
 *                    (src/sqlite/integrity.ts)
 *   worker → main  {t:'failed', job, error}            anything unexpected
 * Every job runs synchronously and closes what it opened before it answers.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { errorToData, fsError, type ErrorData } from '../errors.js';
import { BlobCipher, type BlobCipherForWorker } from '../repository/blob-cipher.js';
import type { PackedBlob } from '../repository/pack.js';
import { checkDatabaseFile } from '../sqlite/integrity.js';
import type { DatabaseCheck } from './assembly.js';
import { blobBytesIn } from './pack-bytes.js';

export interface BlobToOpen extends PackedBlob {
  /** Send the plaintext back. */
  keep: boolean;
  /** Write the plaintext into files[i] at these offsets: [i, offset] pairs. */
  writes?: [number, number][];
}

export type ToWorker =
  | { t: 'pack'; job: number; pack: string; data: Uint8Array; hash: boolean; files: string[]; blobs: BlobToOpen[] }
  | { t: 'database'; job: number; file: string; size: number; sha256: string };

export interface PackAnswer {
  t: 'pack';
  job: number;
  sha256?: string;
  failed: { id: string; error: ErrorData }[];
  lengths: { id: string; length: number }[];
  writeFailed: { file: number; error: ErrorData }[];
  kept: Uint8Array;
  keptAt: { id: string; offset: number; length: number }[];
}

export interface PackWorkerData {
  /** Opens the blobs (Repository.blobCipher). */
  cipher: BlobCipherForWorker;
}

export type FromWorker =
  | PackAnswer
  | { t: 'database'; job: number; check: DatabaseCheck }
  | { t: 'failed'; job: number; error: ErrorData };

function writeAll(fd: number, data: Buffer, offset: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
}

/** The scratch files one job writes into: each opened once; a file a write failed for is written no further. */
class ScratchFiles {
  readonly failed: PackAnswer['writeFailed'] = [];
  private readonly fds = new Map<number, number>();
  private readonly broken = new Set<number>();

  constructor(private readonly paths: readonly string[]) {}

  write(file: number, data: Buffer, offset: number): void {
    if (this.broken.has(file)) return;
    const path = this.paths[file] as string;
    try {
      let fd = this.fds.get(file);
      if (fd === undefined) {
        fd = openSync(path, constants.O_WRONLY);
        this.fds.set(file, fd);
      }
      writeAll(fd, data, offset);
    } catch (err) {
      this.broken.add(file);
      this.failed.push({ file, error: errorToData(fsError('write', path, err)) });
    }
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

function checkPack(
  m: Extract<ToWorker, { t: 'pack' }>,
  cipher: BlobCipher,
): { answer: PackAnswer; transfer: ArrayBuffer[] } {
  const scratch = new ScratchFiles(m.files);
  try {
    return openBlobs(m, cipher, scratch);
  } finally {
    scratch.close();
  }
}

function openBlobs(
  m: Extract<ToWorker, { t: 'pack' }>,
  cipher: BlobCipher,
  scratch: ScratchFiles,
): { answer: PackAnswer; transfer: ArrayBuffer[] } {
  const failed: PackAnswer['failed'] = [];
  const lengths: PackAnswer['lengths'] = [];
  const kept: Buffer[] = [];
  const keptAt: PackAnswer['keptAt'] = [];
  let keptBytes = 0;
  for (const b of m.blobs) {
    let plain: Buffer;
    try {
      plain = cipher.open(b, m.pack, blobBytesIn(m.data, m.pack, b));
    } catch (err) {
      failed.push({ id: b.id, error: errorToData(err) });
      continue;
    }
    if (plain.length !== b.rawLength) lengths.push({ id: b.id, length: plain.length });
    for (const [file, offset] of b.writes ?? []) scratch.write(file, plain, offset);
    if (b.keep) {
      kept.push(plain);
      keptAt.push({ id: b.id, offset: keptBytes, length: plain.length });
      keptBytes += plain.length;
    }
  }
  const sha256 = m.hash ? createHash('sha256').update(m.data).digest('hex') : undefined;
  // a buffer of its own (never a slice of Node's shared pool), so it can be transferred
  const out = Buffer.allocUnsafeSlow(keptBytes);
  let at = 0;
  for (const k of kept) at += k.copy(out, at);
  const answer: PackAnswer = {
    t: 'pack',
    job: m.job,
    failed,
    lengths,
    writeFailed: scratch.failed,
    kept: out,
    keptAt,
    ...(sha256 === undefined ? {} : { sha256 }),
  };
  return { answer, transfer: [out.buffer as ArrayBuffer] };
}

const readBuf = Buffer.allocUnsafe(1024 * 1024);

/** Read a database's scratch file back; integrity-check it when it is what the backup recorded. */
function checkDatabase(m: Extract<ToWorker, { t: 'database' }>): DatabaseCheck {
  const hash = createHash('sha256');
  let size = 0;
  let fd: number | undefined;
  try {
    fd = openSync(m.file, constants.O_RDONLY);
    for (;;) {
      const n = readSync(fd, readBuf, 0, readBuf.length, size);
      if (n === 0) break;
      hash.update(readBuf.subarray(0, n));
      size += n;
    }
  } catch (err) {
    throw fsError('read', m.file, err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const sha256 = hash.digest('hex');
  if (size !== m.size || sha256 !== m.sha256) return { size, sha256, checked: false, ok: true, problems: [] };
  const r = checkDatabaseFile(m.file);
  return { size, sha256, checked: true, ok: r.ok, problems: r.problems };
}

const port = parentPort;
if (port !== null) {
  const cipher = BlobCipher.fromWorker((workerData as PackWorkerData).cipher);
  port.on('message', (m: ToWorker) => {
    try {
      if (m.t === 'pack') {
        const { answer, transfer } = checkPack(m, cipher);
        port.postMessage(answer, transfer);
      } else {
        port.postMessage({ t: 'database', job: m.job, check: checkDatabase(m) } satisfies FromWorker);
      }
    } catch (err) {
      port.postMessage({ t: 'failed', job: m.job, error: errorToData(err) } satisfies FromWorker);
    }
  });
}
