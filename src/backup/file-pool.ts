/**
 * The file pipeline's main-thread side: hands files to worker threads
 * (src/backup/file-worker.ts, on the shared WorkerPool of
 * src/concurrency/worker-pool.ts), answers which chunks the repository lacks,
 * and feeds the sealed chunks into the repository's packs.
 *
 * Small files are batched (up to BATCH_FILES files or BATCH_BYTES bytes per job)
 * so a million tiles cost thousands of messages, not millions; a large file is a
 * job of its own, streamed in 1 MiB segments; a very large one is cut into
 * parts that every worker takes, plus a job that hashes it whole (storeParted).
 * Dedup happens before sealing: a
 * worker seals only the chunks this side claims (Repository.claimBlob), so an
 * unchanged database re-read by an incremental costs hashing, not compression
 * and encryption. Memory stays bounded: at most MAX_JOBS jobs per worker, and
 * sealed data waiting for a pack upload holds back the next answers.
 */
import { availableParallelism } from 'node:os';
import { type Reply, WorkerPool } from '../concurrency/worker-pool.js';
import { FoleBackupError, fsError } from '../errors.js';
import type {
  FileSegment,
  FileStat,
  FileWorkerData,
  FromWorker,
  SealedBlob,
  ToWorker,
  WorkerFile,
} from './file-worker.js';
import type { BlobWriter } from '../repository/slices.js';
import type { SharedBytes } from '../repository/open-pack.js';

/** Files up to this size (as scanned) are batched and read in one go. */
const SMALL_FILE = 256 * 1024;
const BATCH_FILES = 64;
const BATCH_BYTES = 1024 * 1024;
const MAX_JOBS = 4;
const MAX_ATTEMPTS = 3;
/**
 * A file worker's young generation, in MB: its segments' buffers are freed
 * sooner. On the default preset with caches dropped, peak RSS is ~45 MB lower
 * than with V8's default and wall time the same within the noise (2 MB: −50 MB
 * but +1 CPU s).
 */
const WORKER_YOUNG_GENERATION_MB = 8;
/** Sealed bytes waiting for the pack writer before workers are held back. */
const BACKLOG_LIMIT = 16 * 1024 * 1024;
/**
 * Sealed segments' buffers whose bytes are written, kept to go back to a worker with its next answer (`need`), and
 * how many go with one answer.
 */
const FREED_KEPT = 16;
const FREED_PER_ANSWER = 2;
/**
 * A file of more than PARTED_FILE bytes (as scanned) is stored in parts of about PART bytes, so that one large
 * database copy or upload keeps every worker busy instead of one: a 1 GB database copy took one worker 7 s while
 * the other waited. The parts and the whole-file hash read the file at several offsets at once; the page cache
 * serves the second read of each byte, and a database copy was just written. Measured on SSD-like virtual disks
 * only: on a spinning disk those are seeks.
 */
const PART = 16 * 1024 * 1024;
const PARTED_FILE = 2 * PART;

export interface StoredContent {
  size: number;
  sha256: string;
  chunks: string[];
}

export type StoreOutcome =
  | { status: 'stored'; content: StoredContent; stat: FileStat; changedWhileReading: boolean }
  | { status: 'vanished' }
  | { status: 'not-a-file' };

export interface StoreRequest {
  path: string;
  chunkSize: number;
  /** Size seen by the scan (decides batching; the worker reads whatever is there). */
  size: number;
  onBytes?: (n: number) => void;
  /** Go ahead of queued work (a database copy: large, and waited for by the tree order). */
  first?: boolean;
}

interface Pending {
  req: StoreRequest;
  attempt: number;
  chunks: string[];
  resolve: (o: StoreOutcome) => void;
  reject: (e: unknown) => void;
  /** A job of a parted file (storeParted): its outcome is the part's, and storeParted decides on reading again. */
  part?: { from: number; to?: number };
  hashOnly?: boolean;
}

type Stored = Extract<StoreOutcome, { status: 'stored' }>;

export class FilePool {
  private readonly pool: WorkerPool<ToWorker, FromWorker>;
  /** The files of every job given to the pool and not done (waiting there or under way). */
  private readonly jobs = new Set<Pending[]>();
  private batch: Pending[] = [];
  private batchBytes = 0;
  private batchTimer: NodeJS.Immediate | undefined;
  private adding: Promise<unknown> = Promise.resolve();
  private backlog = 0;
  /** Sealed segments' buffers written to the repository, for the workers to seal into again. */
  private freed: ArrayBuffer[] = [];
  /** How many sealed segments' buffers were written and could go back (for tests). */
  buffersFreed = 0;

  /** Sealed bytes handed to the repository and not yet added to its packs (for tests: 0 once drained). */
  get backlogBytes(): number {
    return this.backlog;
  }
  private failure: unknown;
  private idle: (() => void)[] = [];

  constructor(
    private readonly repo: Pick<BlobWriter, 'claimBlob' | 'addSealedBlob' | 'blobCipher'>,
    // one per core, at most 4: four workers on two cores are no faster end to end (the main
    // thread is the bottleneck) and take 120 MiB more (`npm run bench`, default preset)
    threads = Math.max(1, Math.min(4, availableParallelism())),
  ) {
    const workerData: FileWorkerData = { cipher: repo.blobCipher().toWorker() };
    this.pool = new WorkerPool({
      callerUrl: import.meta.url,
      name: 'file-worker',
      label: 'file',
      threads,
      capacity: MAX_JOBS,
      workerData,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      isFinal: (m) => m.t === 'done',
    });
  }

  /** Store one file: resolves when its chunk list and hash are known. */
  store(req: StoreRequest): Promise<StoreOutcome> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (req.size > PARTED_FILE) return this.storeParted(req, 1);
    return new Promise((resolve, reject) => {
      const p: Pending = { req, attempt: 1, chunks: [], resolve, reject };
      if (req.size > SMALL_FILE) {
        this.submit([p]);
        return;
      }
      this.batch.push(p);
      this.batchBytes += req.size;
      if (this.batch.length >= BATCH_FILES || this.batchBytes >= BATCH_BYTES) this.flushBatch();
      else this.batchTimer ??= setImmediate(() => this.flushBatch());
    });
  }

  /**
   * A very large file as jobs that run at once: parts of PART bytes (the last one to the end of the file), each
   * cutting and sealing its chunks, and one job hashing the file whole. Their reads are one read of the file only
   * if it did not change between them: every job's stat must agree and every part be whole, else it is read again,
   * as a file that changed while it was read.
   */
  private async storeParted(req: StoreRequest, attempt: number): Promise<StoreOutcome> {
    const part = Math.max(1, Math.round(PART / req.chunkSize)) * req.chunkSize;
    const parts = Math.ceil(req.size / part);
    const job = (fields: Partial<Pending>): Promise<StoreOutcome> =>
      new Promise((resolve, reject) => {
        this.submit([{ req, attempt, chunks: [], resolve, reject, ...fields }]);
      });
    // in file order, the whole-file hash first (the longest job); a `first` request goes to the front of the queue,
    // so its jobs are submitted last to first
    const jobs: (() => Promise<StoreOutcome>)[] = [
      () => job({ hashOnly: true }),
      ...Array.from({ length: parts }, (_, k) => () => {
        const to = k === parts - 1 ? {} : { to: (k + 1) * part };
        return job({ part: { from: k * part, ...to } });
      }),
    ];
    const started = (req.first === true ? [...jobs].reverse() : jobs).map((start) => start());
    const outcomes = await Promise.all(req.first === true ? started.reverse() : started);
    const [whole, ...pieces] = outcomes as [StoreOutcome, ...StoreOutcome[]];
    // vanished or replaced by a non-file while it was read: as a file read in one job would say
    const gone = outcomes.find((o) => o.status !== 'stored');
    if (gone !== undefined) return gone;
    const hashed = whole as Stored;
    const stored = pieces as Stored[];
    const size = stored.reduce((n, o) => n + o.content.size, 0);
    const same = (o: Stored): boolean =>
      o.stat.size === hashed.stat.size && o.stat.mtimeMs === hashed.stat.mtimeMs && o.stat.ino === hashed.stat.ino;
    const consistent =
      size === hashed.content.size &&
      stored.every((o, k) => k === parts - 1 || o.content.size === part) &&
      outcomes.every((o) => same(o as Stored));
    const changed = !consistent || outcomes.some((o) => (o as Stored).changedWhileReading);
    if (changed && attempt < MAX_ATTEMPTS) {
      const now = { ...req, size: hashed.content.size };
      return now.size > PARTED_FILE ? this.storeParted(now, attempt + 1) : this.store(now);
    }
    return {
      status: 'stored',
      content: { size, sha256: hashed.content.sha256, chunks: stored.flatMap((o) => o.content.chunks) },
      stat: hashed.stat,
      changedWhileReading: changed,
    };
  }

  /** Wait until every job is done and every sealed chunk is in the repository's packs. */
  async drain(): Promise<void> {
    this.flushBatch();
    while (this.jobs.size > 0) {
      if (this.failure !== undefined) throw this.failure;
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
    await this.adding;
    if (this.failure !== undefined) throw this.failure;
  }

  /** Stop the workers: stores not finished by then are rejected (ABORTED, unless the pool failed before). */
  async close(): Promise<void> {
    if (this.batchTimer) clearImmediate(this.batchTimer);
    await this.pool.terminate();
    // files still batched never reached the pool
    this.fail(new FoleBackupError('ABORTED', 'file worker: stopped before the file was stored'));
  }

  private flushBatch(): void {
    if (this.batchTimer) clearImmediate(this.batchTimer);
    this.batchTimer = undefined;
    if (this.batch.length === 0) return;
    const files = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    this.submit(files);
  }

  private submit(files: Pending[]): void {
    this.jobs.add(files);
    const wf: WorkerFile[] = files.map((p) => ({
      path: p.req.path,
      chunkSize: p.req.chunkSize,
      small: p.req.size <= SMALL_FILE && p.attempt === 1,
      ...(p.part !== undefined ? { part: p.part } : {}),
      ...(p.hashOnly === true ? { hashOnly: true } : {}),
    }));
    this.pool
      .run(
        { t: 'job', files: wf },
        { first: files[0]?.req.first === true, onMessage: (m, reply) => this.onMessage(files, m, reply) },
      )
      .then(
        () => this.onDone(files),
        (err: unknown) => this.fail(err),
      );
  }

  private onMessage(files: Pending[], m: FromWorker, reply: Reply<ToWorker>): void {
    if (this.failure !== undefined) return;
    if (m.t === 'ids') void this.onIds(files, m.seq, m.results, reply).catch((err: unknown) => this.fail(err));
    else if (m.t === 'sealed') this.onSealed(m.blobs, m.data);
  }

  private async onIds(files: Pending[], seq: number, results: FileSegment[], reply: Reply<ToWorker>): Promise<void> {
    // the decision which chunks are new is taken now, in message order
    const need: string[] = [];
    for (const r of results) {
      const p = files[r.index] as Pending;
      for (const id of r.ids) {
        p.chunks.push(id);
        if (this.repo.claimBlob(id)) need.push(id);
      }
      if (r.bytes > 0) p.req.onBytes?.(r.bytes);
      if (r.final !== undefined) this.finish(p, r.final);
    }
    // hold the workers back while the pack writer is behind
    while (this.backlog > BACKLOG_LIMIT && this.failure === undefined) await this.adding;
    const buffers = this.freed.splice(0, FREED_PER_ANSWER);
    reply({ t: 'need', seq, ids: need, buffers }, buffers);
  }

  private finish(p: Pending, final: NonNullable<FileSegment['final']>): void {
    switch (final.status) {
      case 'stored':
        if (final.changed && p.attempt < MAX_ATTEMPTS && p.part === undefined && p.hashOnly !== true) {
          // changed while it was read: read it again (what was sealed is harmless extra data)
          this.submit([{ ...p, attempt: p.attempt + 1, chunks: [] }]);
          return;
        }
        p.resolve({
          status: 'stored',
          content: { size: final.size, sha256: final.sha256, chunks: p.chunks },
          stat: final.stat,
          changedWhileReading: final.changed,
        });
        return;
      case 'vanished':
      case 'not-a-file':
        p.resolve({ status: final.status });
        return;
      case 'error':
        p.reject(fsError('read', p.req.path, Object.assign(new Error(final.message), { code: final.code })));
        return;
    }
  }

  private onSealed(blobs: SealedBlob[], data: Uint8Array): void {
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    // counted by its length now: once written, its buffer may go back to a worker (detached here: length 0)
    // before the last add below returns
    const length = bytes.length;
    this.backlog += length;
    // the segment came whole (transferred): once its blobs are written, its buffer can be sealed into again
    const buffer = data.buffer as ArrayBuffer;
    const shared: SharedBytes = {
      blobsLeft: blobs.length,
      written: () => {
        if (this.freed.length < FREED_KEPT) this.freed.push(buffer);
        this.buffersFreed++;
      },
    };
    this.adding = this.adding.then(async () => {
      try {
        for (const b of blobs) {
          await this.repo.addSealedBlob(
            'data',
            b.id,
            bytes.subarray(b.offset, b.offset + b.length),
            b.rawLength,
            b.compression,
            shared,
          );
        }
      } catch (err) {
        this.fail(err);
      } finally {
        this.backlog -= length;
      }
    });
  }

  private onDone(files: Pending[]): void {
    if (this.failure !== undefined) return;
    this.jobs.delete(files);
    if (this.jobs.size === 0) for (const wake of this.idle.splice(0)) wake();
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    for (const files of this.jobs) for (const p of files) p.reject(err);
    for (const p of this.batch) p.reject(err);
    this.jobs.clear();
    this.batch = [];
    for (const wake of this.idle.splice(0)) wake();
  }
}
