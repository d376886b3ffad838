/**
 * Worker thread of the file pipeline (src/backup/file-pool.ts): reads files,
 * cuts them into chunks, hashes them, and — for the chunks the main thread says
 * the repository lacks — compresses and seals them. The main thread keeps the
 * index, the packs and the tree; the two workers do the per-byte work, so a
 * backup uses both cores.
 *
 * Protocol (every message carries the job id; `seq` numbers a job's segments):
 *   main → worker  {t:'job', job, files:[{path, chunkSize, small}]}
 *   worker → main  {t:'ids', job, seq, results:[FileSegment]}   chunk ids, per file
 *   main → worker  {t:'need', job, seq, ids:[…]}                 which ones to seal
 *   worker → main  {t:'sealed', job, seq, blobs:[…]}             sealed chunks
 * A job of small files is one segment; a large file is one segment per MiB.
 * The plaintext of a segment is kept only until its 'need' answer arrives.
 * A very large file comes as several jobs that run at once on every worker
 * (FilePool): parts of it (`part`: its chunks in [from, to)) and one job that
 * only hashes it whole (`hashOnly`), which posts its one segment at the end.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { closeSync, constants, fstatSync, openSync, read, readSync, type Stats } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { SEAL_OVERHEAD } from '../crypto/aead.js';
import { sha256Hex } from '../crypto/hash.js';
import { COMPRESSION_NONE, COMPRESSION_ZSTD, compressBound, compressInto } from '../repository/compress.js';
import { BlobCipher, type BlobCipherForWorker } from '../repository/blob-cipher.js';
import { Budget } from '../concurrency/budget.js';
import { fsPath } from '../fs/byte-names.js';
import { BufferPool } from '../concurrency/buffer-pool.js';

export interface WorkerFile {
  path: string;
  chunkSize: number;
  /** Read in one go (the scan saw at most SMALL_FILE bytes). */
  small: boolean;
  /** Only bytes [from, to) (`to` undefined: to the end), `from` a multiple of chunkSize; not hashed whole. */
  part?: { from: number; to?: number };
  /** Only the file's SHA-256, size and stat: no chunks. */
  hashOnly?: boolean;
}

export interface FileStat {
  size: number;
  mode: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  uid: number;
  gid: number;
}

/** What a segment message says about one file (of a part: about those bytes, with no SHA-256). */
export interface FileSegment {
  index: number;
  ids: string[];
  /** Bytes of content in this segment. */
  bytes: number;
  /** Present on a file's last segment. */
  final?:
    | { status: 'stored'; sha256: string; size: number; stat: FileStat; changed: boolean }
    | { status: 'vanished' | 'not-a-file' }
    | { status: 'error'; code: string | undefined; message: string };
}

/** One sealed chunk: its bytes are data[offset, offset + length) of the message. */
export interface SealedBlob {
  id: string;
  offset: number;
  length: number;
  rawLength: number;
  compression: number;
}

export interface FileWorkerData {
  /** Seals the chunks (Repository.blobCipher). */
  cipher: BlobCipherForWorker;
}

export type ToWorker =
  | { t: 'job'; job: number; files: WorkerFile[] }
  | { t: 'need'; job: number; seq: number; ids: string[]; buffers?: ArrayBuffer[] };

export type FromWorker =
  | { t: 'ids'; job: number; seq: number; results: FileSegment[] }
  | { t: 'sealed'; job: number; seq: number; blobs: SealedBlob[]; data: Uint8Array }
  | { t: 'done'; job: number };

const SEGMENT = 1024 * 1024;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;
const EMPTY_SHA256 = sha256Hex(Buffer.alloc(0));
const cipher = BlobCipher.fromWorker((workerData as FileWorkerData).cipher);

function workerPort(): MessagePort {
  if (parentPort === null) throw new Error('file-worker must run in a worker thread');
  return parentPort;
}
const port = workerPort();

const waiting = new Map<string, (ids: string[]) => void>();
port.on('message', (m: ToWorker) => {
  if (m.t === 'job') void runJob(m.job, m.files);
  else {
    for (const b of m.buffers ?? []) sealRooms.give(b);
    waiting.get(`${m.job}:${m.seq}`)?.(m.ids);
  }
});

function needOf(job: number, seq: number): Promise<string[]> {
  return new Promise((resolve) => {
    waiting.set(`${job}:${seq}`, (ids) => {
      waiting.delete(`${job}:${seq}`);
      resolve(ids);
    });
  });
}

function statOf(st: Stats): FileStat {
  return {
    size: st.size,
    mode: st.mode & 0o7777,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    ino: st.ino,
    uid: st.uid,
    gid: st.gid,
  };
}

function errorOf(err: unknown): FileSegment['final'] {
  const code =
    typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
  if (code === 'ENOENT') return { status: 'vanished' };
  if (code === 'ELOOP') return { status: 'not-a-file' };
  return { status: 'error', code, message: err instanceof Error ? err.message : String(err) };
}

/** Cut `data` into chunks, remembering their plaintext for sealing. */
function cut(data: Buffer, chunkSize: number, plain: Map<string, Buffer>): string[] {
  const ids: string[] = [];
  for (let off = 0; off < data.length; off += chunkSize) {
    const chunk = data.subarray(off, Math.min(off + chunkSize, data.length));
    const id = sha256Hex(chunk);
    ids.push(id);
    plain.set(id, chunk);
  }
  return ids;
}

/**
 * Buffers this worker reads into, kept and reused: the per-byte work then
 * allocates little more than what it hands to the main thread, and a backup's
 * peak memory is not garbage waiting for a collection. They never leave this
 * thread: a file's bytes go on sealed, in the buffers below.
 */
const ARENA_BYTES = 1280 * 1024;
const arenas = new BufferPool(ARENA_BYTES, 6);

/** A buffer of `n` bytes (in a kept one when it fits); give it back with giveArena. */
function takeArena(n: number): Buffer {
  const view = arenas.take(n);
  return Buffer.from(view.buffer, 0, n);
}

/** Keep `a`'s memory for reuse; nothing may still refer to its bytes. */
function giveArena(a: Buffer): void {
  arenas.give(a.buffer as ArrayBuffer);
}

/**
 * Buffers chunks are sealed into, kept to be sealed into again (src/concurrency/buffer-pool.ts): they come back
 * through FilePool once a local repository's pack drafts hold their bytes; elsewhere a new one is made each time.
 */
const sealRooms = new BufferPool(SEGMENT + 128 * 1024, 8);

/** Where compressed chunks wait to be sealed (one exchange at a time: sealing never awaits). */
let packed = Buffer.allocUnsafeSlow(0);

/** Post chunk ids, wait for which ones to seal, seal and post them. */
async function exchange(job: number, seq: number, results: FileSegment[], plain: Map<string, Buffer>): Promise<void> {
  const need = needOf(job, seq);
  port.postMessage({ t: 'ids', job, seq, results } satisfies FromWorker);
  const ids = await need;
  const blobs: SealedBlob[] = [];
  const bytes: Uint8Array[] = [];
  let bound = 0;
  for (const id of ids) bound += compressBound(plain.get(id)?.length ?? 0);
  if (packed.length < bound) packed = Buffer.allocUnsafeSlow(bound);
  let at = 0;
  let total = 0;
  for (const id of ids) {
    const chunk = plain.get(id);
    if (chunk === undefined) continue;
    const n = compressInto(chunk, packed.subarray(at));
    const b = n < 0 ? chunk : packed.subarray(at, at + n);
    if (n >= 0) at += n;
    blobs.push({
      id,
      offset: total,
      length: b.length + SEAL_OVERHEAD,
      rawLength: chunk.length,
      compression: n < 0 ? COMPRESSION_NONE : COMPRESSION_ZSTD,
    });
    bytes.push(b);
    total += b.length + SEAL_OVERHEAD;
  }
  // every chunk already stored (an incremental re-reading a file): nothing to seal, nothing to send
  if (blobs.length === 0) return;
  // sealed straight into one buffer, moved to the main thread (transferred, not copied)
  const data = sealRooms.take(total);
  blobs.forEach((blob, i) => {
    if (cipher.sealInto('data', blob.id, bytes[i] as Uint8Array, data, blob.offset) !== blob.length)
      throw new Error('sealed length differs from plan');
  });
  port.postMessage({ t: 'sealed', job, seq, blobs, data } satisfies FromWorker, [data.buffer as ArrayBuffer]);
}

/**
 * Small files are read with up to READS_IN_FLIGHT reads outstanding per worker
 * (on libuv's thread pool): a cold disk serves several readers at once far
 * faster than one, while the worker hashes and seals what already arrived.
 * open and fstat stay synchronous: the scan has just brought the inodes in.
 */
const READS_IN_FLIGHT = 16;
const reads = new Budget(READS_IN_FLIGHT);

function readAsync(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  );
}

/** A job's room for its small files: one kept arena, handed out front to back. */
class Room {
  readonly arena: Buffer;
  private used = 0;
  constructor(bytes: number) {
    this.arena = takeArena(bytes);
  }

  /** `n` bytes of the arena, or a buffer of their own when it is full (a file grew since the scan). */
  take(n: number): Buffer {
    if (this.used + n > this.arena.length) return Buffer.allocUnsafe(n);
    const b = this.arena.subarray(this.used, this.used + n);
    this.used += n;
    return b;
  }
}

/** Read a small file whole; undefined when it turned out larger than the scan said. */
async function readSmall(
  file: WorkerFile,
  index: number,
  plain: Map<string, Buffer>,
  room: Room,
): Promise<FileSegment | undefined> {
  await reads.take(1);
  let fd: number | undefined;
  let slot = true;
  const release = (): void => {
    if (slot) reads.give(1);
    slot = false;
  };
  try {
    fd = openSync(fsPath(file.path), OPEN_FLAGS);
    const before = fstatSync(fd);
    if (!before.isFile()) return { index, ids: [], bytes: 0, final: { status: 'not-a-file' } };
    const buf = room.take(before.size + 1);
    let filled = await readAsync(fd, buf, 0, buf.length, 0);
    release();
    if (filled === buf.length) return undefined; // it grew: read it as a large file
    if (filled > 0 && filled !== before.size) {
      // a short read that is not the size the file had: read on to the end
      for (;;) {
        const n = readSync(fd, buf, filled, buf.length - filled, filled);
        if (n === 0) break;
        filled += n;
        if (filled === buf.length) return undefined;
      }
    }
    const after = fstatSync(fd);
    const data = buf.subarray(0, filled);
    const ids = cut(data, file.chunkSize, plain);
    const sha256 = ids.length === 0 ? EMPTY_SHA256 : ids.length === 1 ? (ids[0] as string) : sha256Hex(data);
    // `after.size !== filled` also catches a file that grew after a read that stopped at the old size
    const changed = after.size !== filled || after.mtimeMs !== before.mtimeMs;
    return {
      index,
      ids,
      bytes: filled,
      final: { status: 'stored', sha256, size: filled, stat: statOf(after), changed },
    };
  } catch (err) {
    return { index, ids: [], bytes: 0, final: errorOf(err) };
  } finally {
    release();
    if (fd !== undefined) closeSync(fd);
  }
}

/** Stream a large file (or a part of one) segment by segment. */
async function readLarge(job: number, file: WorkerFile, index: number, seqStart: number): Promise<number> {
  let seq = seqStart;
  let fd: number;
  try {
    fd = openSync(fsPath(file.path), OPEN_FLAGS);
  } catch (err) {
    await exchange(job, seq++, [{ index, ids: [], bytes: 0, final: errorOf(err) }], new Map());
    return seq;
  }
  let buf: Buffer | undefined;
  try {
    const before = fstatSync(fd);
    if (!before.isFile()) {
      await exchange(job, seq++, [{ index, ids: [], bytes: 0, final: { status: 'not-a-file' } }], new Map());
      return seq;
    }
    const segment = Math.max(1, Math.ceil(SEGMENT / file.chunkSize)) * file.chunkSize;
    const from = file.part?.from ?? 0;
    const to = file.part?.to ?? Number.POSITIVE_INFINITY;
    // a part is not hashed whole: the file's hashOnly job does that
    const whole: Hash | undefined = file.part === undefined ? createHash('sha256') : undefined;
    const cutting = file.hashOnly !== true;
    let size = 0;
    // one buffer for every segment: a segment is sealed and posted (exchange awaited) before the next is read
    buf = takeArena(segment);
    for (;;) {
      const want = Math.min(segment, to - from - size);
      let filled = 0;
      while (filled < want) {
        const n = readSync(fd, buf, filled, want - filled, from + size + filled);
        if (n === 0) break;
        filled += n;
      }
      const data = buf.subarray(0, filled);
      whole?.update(data);
      const plain = new Map<string, Buffer>();
      const ids = cutting ? cut(data, file.chunkSize, plain) : [];
      size += filled;
      if (filled < segment || from + size >= to) {
        const after = fstatSync(fd);
        // a one-chunk file's hash is its chunk's id, and an empty one's the empty SHA-256: the digest is those
        const sha256 = whole?.digest('hex') ?? '';
        // read to the end: the file must end there; a part: the file must not have changed size meanwhile
        const grown = to === Number.POSITIVE_INFINITY ? after.size !== from + size : after.size !== before.size;
        const changed = grown || after.mtimeMs !== before.mtimeMs;
        const stored = { status: 'stored' as const, sha256, size, stat: statOf(after), changed };
        await exchange(job, seq++, [{ index, ids, bytes: cutting ? filled : 0, final: stored }], plain);
        return seq;
      }
      if (cutting) await exchange(job, seq++, [{ index, ids, bytes: filled }], plain);
      // a hashOnly job posts nothing until the end: it lets this worker's other jobs run between segments
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } catch (err) {
    await exchange(job, seq++, [{ index, ids: [], bytes: 0, final: errorOf(err) }], new Map());
    return seq;
  } finally {
    closeSync(fd);
    if (buf !== undefined) giveArena(buf);
  }
}

async function runJob(job: number, files: WorkerFile[]): Promise<void> {
  let seq = 0;
  const plain = new Map<string, Buffer>();
  const large: number[] = [];
  // a batch is at most BATCH_BYTES (1 MiB) plus one small file as scanned: one arena holds it
  const room = files.some((f) => f.small) ? new Room(ARENA_BYTES) : undefined;
  const read = await Promise.all(
    files.map((f, i) => (f.small && room ? readSmall(f, i, plain, room) : Promise.resolve(undefined))),
  );
  const results: FileSegment[] = [];
  read.forEach((r, i) => {
    if (r === undefined) large.push(i);
    else results.push(r);
  });
  if (results.length > 0) await exchange(job, seq++, results, plain);
  plain.clear();
  if (room) giveArena(room.arena);
  for (const i of large) seq = await readLarge(job, files[i] as WorkerFile, i, seq);
  port.postMessage({ t: 'done', job } satisfies FromWorker);
}
