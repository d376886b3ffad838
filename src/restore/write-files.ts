/**
 * Writing restored files into staging (restic's restorer, in spirit), on
 * worker threads. Each window (its size: `windows`, chosen by how the backend
 * reads) is planned pack by pack
 * (pure: src/restore/window-plan.ts); this executor carries the plans out, and
 * the per-byte work runs on the workers (src/restore/restore-worker.ts):
 *
 *   addWindow(files), in tree order:
 *     create its empty and its multi-chunk files, exclusively (nothing is ever
 *     overwritten); then plan it piece by piece (PLAN_CHUNKS), queueing each
 *     piece's spans, the next piece once few reads are queued — so a chunk the
 *     index lacks in a later piece stops the restore after the earlier pieces
 *     were written into staging, which the failure then removes
 *   reads, in queue order (a span each, or from a backend that streams, a
 *   window's pack in one request: see window-plan.ts), through the backend on
 *   this thread; at most maxHeld (2 per worker + 2) spans at a time read or
 *   being written (bounded memory: a span takes its room before its bytes are
 *   read, a streamed request waits for it). A span read alone comes through the
 *   pack readers, each pack opened once for its spans
 *   (src/repository/pack-readers.ts) — several reads in flight, as the disk
 *   serves parallel readers faster; a streamed request is cut into its spans
 *   as it arrives (src/restore/span-stream.ts). Then each span's bytes go
 *   to a worker, which opens every blob (AEAD; SHA-256 against its id when a
 *   one-chunk file uses it, the longer files being hashed whole) and
 *   writes it to every place that uses it; a one-chunk file is created,
 *   written, given its mode and mtime and closed right there
 *   a file whose spans are all written: a one-chunk file is complete (its hash
 *   is its verified chunk id); a longer one is read back by a worker — size and
 *   whole-file SHA-256 — and then gets its mode and mtime
 *   checkDatabase(e): when e's bytes are all written, its integrity check on a
 *   worker (src/restore/check-database.ts) while another reads it back, then its
 *   mode and mtime
 *   (wherever a file gets its mode, it first gets its owner when the restore
 *   gives owners: src/restore/ownership.ts)
 *   addWindow returns once few enough reads are queued (span by span: enough
 *   to keep the reads going) and few enough windows are unfinished (bounded
 *   memory; `windows`, Windowing)
 *
 * The first failure (or an abort) stops everything: nothing more is read or
 * handed out, and close() waits for the jobs under way — so no descriptor
 * stays open and nothing writes into staging after it returns — then stops
 * the workers. Durability is the caller's: one filesystem sync after staging
 * instead of an fsync per file (which cost minutes on 100k files).
 */
import { availableParallelism } from 'node:os';
import { closeSync, constants, openSync } from 'node:fs';
import { FoleBackupError, StopError, abortError, fsError, throwIfAborted } from '../errors.js';
import type { BlobReader } from '../repository/slices.js';
import type { TreeEntry } from '../snapshot/snapshot.js';
import { SpanEncoder, type EncodedSpan, type FileMeta } from './span-job.js';
import { planWindow, type PlanCursor, type SpanLimits, type WindowPlan } from './window-plan.js';
import { cutSpans } from './span-stream.js';
import { BufferPool } from '../concurrency/buffer-pool.js';
import { PackReaders } from '../repository/pack-readers.js';
import { RestorePool } from './worker-pool.js';
import type { Owner } from './ownership.js';
import { fsPath } from '../fs/byte-names.js';
import { deferred, type Deferred } from '../concurrency/deferred.js';
import { transferable } from '../concurrency/transferable.js';
import { openUnder } from '../host/open-files.js';
import { applyMeta } from './apply-meta.js';

export interface WriteFilesOptions {
  /** Apply mode and mtime to files (databases get theirs after their integrity check). */
  applyMetadata: (e: TreeEntry) => boolean;
  /** The owner to give an entry along with its mode (src/restore/ownership.ts); undefined: leave it as created. */
  owner?: (e: TreeEntry) => Owner | undefined;
  /** Content bytes written (n), and the path of the last file they went to. */
  onBytes?: (n: number, path: string) => void;
  /** `n` more files are written and verified. */
  onFiles?: (n: number) => void;
  signal?: AbortSignal;
  /** Worker threads (default: one per core, at most 8). */
  threads?: number;
  /** Chunks planned at once (default PLAN_CHUNKS; tests cut small files into many pieces with less). */
  planChunks?: number;
}

/**
 * Spans are cut at 4 MiB (a pack is ~16 MiB): more spans being written for the same memory. A backend that streams
 * (remote) reads a window's pack in one request through gaps of up to READ_GAP. The gaps hold blobs other windows
 * need, read again there: on `default` (windows of 8,192 files) a READ_GAP of 0 makes 365 requests for 1,156 MB,
 * 1 MiB 338 for 1,179 MB, 2 MiB 217 for 1,372 MB, 8 MiB 156 for 1,609 MB. On loopback Swift 8 MiB restored no
 * faster than spans read one by one (the server's time per byte ate what its time per request gave back), so
 * READ_GAP is the gap a span reads through anyway.
 */
const LIMITS: SpanLimits = { maxSpan: 4 * 1024 * 1024, maxGap: 1024 * 1024 };
const READ_GAP = LIMITS.maxGap;
/**
 * Chunks planned at once: a window is planned in pieces of this many chunks (window-plan.ts), the next once the
 * last one's reads are under way, so what a restore holds of its plans is bounded whatever the size of a file (not
 * the file's entry: its chunk ids are the tree's). A piece of 8,192 chunks is ~32 spans of a database's 16 KiB
 * chunks, and a window of tiles whole. From a backend that streams, a window of more chunks (up to 512 MiB of
 * database chunks) reads a pack once per piece that needs it, rather than once per window.
 */
const PLAN_CHUNKS = 8192;
/**
 * Streamed requests under way at once. Their memory is the spans they hold (counted in maxHeld) and what the
 * transport buffers per connection; more requests would only add idle connections, as a stream waits for room.
 */
const STREAMS = 3;
/** How files are cut into windows (by the caller: bounded in entries, bytes and multi-chunk files), and how many
 * are planned ahead. */
export interface Windowing {
  files: number;
  bytes: number;
  multiFiles: number;
  /** Windows planned and not yet complete (their files wait for spans or for their whole-file check) beyond the one
   * being added: a bound on the plans held. */
  maxWindows: number;
  /** addWindow waits while this many reads are queued: a bound on the encoded spans held. */
  maxQueued: number;
}

/**
 * Read span by span (a local disk, SFTP): windows small enough that their entries and plans die young on the main
 * thread (4,096 tiles per window kept 60 MB more heap), the next planned once the queue runs short. Windows of
 * 8,192 files cut the reads of `default` from 756 to 508 (larger spans, fewer system calls) but cost ~20 MiB of
 * peak RSS and were no faster from a local disk, nor from SFTP (whose reads are 32 KiB whatever the span).
 */
const SPAN_WINDOWS: Omit<Windowing, 'maxQueued'> = {
  files: 1024,
  bytes: 64 * 1024 * 1024,
  multiFiles: 128,
  maxWindows: 8,
};
/**
 * Streamed (S3): each pack a window needs is a request, and a backup interleaves its packs over the tree: on
 * `default`, windows of 1,024 files needed each pack in 3 to 80 windows (381 window-pack pairs for 57 packs);
 * windows of 8,192 files, 149 pairs. The next window is planned while this one is read (bounded by windows, not
 * by queued reads: a window is kept encoded, src/restore/span-job.ts), so the workers do not wait for its plan;
 * one more, not two: on `default` from Swift, peak RSS 378 MiB against 404–413 with two (350 read span by span).
 */
const STREAMED_WINDOWS: Windowing = {
  files: 8192,
  bytes: 512 * 1024 * 1024,
  multiFiles: 1024,
  maxWindows: 1,
  maxQueued: Number.POSITIVE_INFINITY,
};

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

/**
 * A file that needs more than its spans: a longer file (read back and hashed
 * whole) or a database (its check waits for it). The rest of a window's files
 * are done when their one span is: they are only counted.
 */
interface Followed {
  entry: Pick<TreeEntry, 'path' | 'kind' | 'size' | 'sha256'>;
  chunks: number;
  /** Spans planned to write to it and not yet written. */
  spansLeft: number;
  /** Its last chunk is planned: no more spans will be added to spansLeft. */
  planned: boolean;
  /** Mode and mtime to apply once a longer file is verified (a database gets them after its check). */
  meta: FileMeta | undefined;
}

/** One request: a span, or (from a backend that streams) a pack's spans and the gaps between them. */
interface QueuedRead {
  pack: string;
  offset: number;
  length: number;
  spans: QueuedSpan[];
}

/** A span as a window keeps it until it is written: its job already encoded (the plan's objects die young). */
interface QueuedSpan {
  pack: string;
  offset: number;
  length: number;
  job: EncodedSpan;
  /** The window's followed files this span writes to. */
  followed: Followed[];
  /** Files this span completes by itself (one-chunk files that are no database). */
  simple: number;
  /** The last file it writes to, for progress. */
  lastPath: string;
}

interface WindowState {
  /** Files not yet complete. */
  filesLeft: number;
  done: Deferred;
}

/**
 * Close every descriptor of this process open on a file under `root` (Linux:
 * /proc/self/fd; elsewhere nothing). Only for staging after a worker died:
 * nothing but the restore's workers keeps files there open.
 */
function closeDescriptorsUnder(root: string): void {
  for (const fd of openUnder(root).keys()) {
    try {
      closeSync(fd);
    } catch {
      // closed meanwhile: nothing to close
    }
  }
}

/**
 * Where an entry goes: backup paths are relative, without '.', '..' or empty parts (src/snapshot/validate.ts); to the
 * file system through fsPath.
 */
const pathIn = (root: string, e: Pick<TreeEntry, 'path'>): string => `${root}/${e.path}`;

export class FileWriter {
  private readonly pool: RestorePool;
  private readonly packs: PackReaders;
  /** The buffers spans are read into, back from the workers after each span. */
  private readonly buffers: BufferPool;
  /** Spans read or being written at most. */
  private readonly maxHeld: number;
  /** Unfinished windows, oldest first. */
  private readonly unfinished = new Set<WindowState>();
  private readonly queue: { w: WindowState; read: QueuedRead }[] = [];
  /** Spans read (or being read) and not yet written. */
  private held = 0;
  /** Reads waiting for a span's room, first come first served. */
  private roomWaiters: (() => void)[] = [];
  /** Reads under way, and how many of them at most. */
  private readonly reads = new Set<Promise<unknown>>();
  private readonly maxReads: number;
  /** Whether reads are streamed (Backend.loadStream): a pack's spans in one request. */
  private readonly streamed: boolean;
  /** How the caller cuts the files into windows, and how many this writer plans ahead. */
  readonly windows: Windowing;
  /** A window's next piece is planned once fewer reads than this are queued. */
  private readonly pieceQueue: number;
  /** Databases by path: settled when written and verified. */
  private readonly complete = new Map<string, Deferred>();
  private failure: { err: unknown } | undefined;
  /** close() was called: reads under way stop before their next span. */
  private closing = false;
  /** addWindow calls waiting for room: woken whenever a span starts or a window completes. */
  private waiting: (() => void)[] = [];
  private readonly onAbort = (): void => this.fail(abortError());

  private constructor(
    private readonly repo: BlobReader,
    private readonly root: string,
    private readonly opts: WriteFilesOptions,
  ) {
    const threads = opts.threads ?? Math.min(8, availableParallelism());
    this.pool = new RestorePool(repo.blobCipher(), threads);
    // each worker holds a span it writes and the next; a few more are being read. Memory by design: at most maxHeld
    // span buffers of LIMITS.maxSpan bytes (one blob larger than that is a span of its own) — 24 MiB with 2
    // workers — whether read one by one or cut out of a streamed read, whatever the size of the restore; the same
    // buffers over and over (src/concurrency/buffer-pool.ts)
    this.maxHeld = 2 * threads + 2;
    this.buffers = new BufferPool(LIMITS.maxSpan, this.maxHeld);
    this.streamed = repo.backend.loadStream !== undefined;
    this.maxReads = this.streamed ? STREAMS : this.maxHeld;
    this.windows = this.streamed ? STREAMED_WINDOWS : { ...SPAN_WINDOWS, maxQueued: this.maxHeld };
    this.pieceQueue = this.streamed ? STREAMS : this.maxHeld;
    if (opts.planChunks !== undefined && !(Number.isInteger(opts.planChunks) && opts.planChunks >= 1))
      throw new RangeError(`FileWriter: planChunks must be a whole number of chunks, 1 or more (${opts.planChunks})`);
    // as many packs open as spans may be read at once: spans come pack by pack
    this.packs = new PackReaders(repo.backend, this.maxHeld);
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Start the workers and load the repository's index meanwhile. Call close() in the end, whatever happens. */
  static async start(repo: BlobReader, root: string, opts: WriteFilesOptions): Promise<FileWriter> {
    throwIfAborted(opts.signal);
    const writer = new FileWriter(repo, root, opts);
    try {
      await repo.loadIndex();
      throwIfAborted(opts.signal);
    } catch (err) {
      await writer.close();
      throw err;
    }
    return writer;
  }

  /**
   * Plan a window of file and database entries (tree order; their directories
   * exist) and start writing it. Resolves when the window is under way, fewer
   * than `windows.maxQueued` reads wait and at most `windows.maxWindows` more
   * windows are unfinished; rejects with the first failure.
   */
  async addWindow(files: readonly TreeEntry[]): Promise<void> {
    this.throwIfFailed();
    if (files.length === 0) return;
    const w: WindowState = { filesLeft: files.length, done: deferred() };
    let followed: Map<number, Followed>;
    try {
      followed = this.follow(files);
      this.unfinished.add(w);
      // the empty and the multi-chunk files now; a one-chunk file (most of them) is created when its blob is written
      for (const e of files) {
        if ((e.chunks?.length ?? 0) === 1) continue;
        const p = pathIn(this.root, e);
        try {
          closeSync(openSync(fsPath(p), CREATE, 0o600));
        } catch (err) {
          throw fsError('write', p, err);
        }
      }
      // an empty file is complete now
      for (const e of files) {
        if ((e.chunks?.length ?? 0) > 0) continue;
        if (this.opts.applyMetadata(e)) applyMeta(pathIn(this.root, e), this.metaOf(e));
        this.fileDone(w, e);
      }
    } catch (err) {
      this.fail(err);
      throw err;
    }
    const limits = this.streamed ? { ...LIMITS, readGap: READ_GAP } : LIMITS;
    let from: PlanCursor | undefined = { file: 0, chunk: 0, offset: 0 };
    while (from !== undefined) {
      try {
        const plan = planWindow(
          files,
          (id) => this.repo.index.get(id),
          limits,
          (id) => this.repo.whyMissing(id),
          { from, chunks: this.opts.planChunks ?? PLAN_CHUNKS },
        );
        for (const read of this.encodePiece(plan, followed)) this.queue.push({ w, read });
        from = plan.next;
        // a file whose last chunk is planned is written once its spans are (the piece that plans its last chunk adds
        // spans to it before any of them can be written, so spansLeft is not 0 here)
        for (const [i, f] of followed) if (from === undefined || i < from.file) f.planned = true;
        this.pump();
      } catch (err) {
        this.fail(err);
        throw err;
      }
      // the next piece once this one's reads are under way: what a window holds of its plan is a piece
      if (from !== undefined) await this.waitWhile(() => this.queue.length >= this.pieceQueue);
    }
    const { maxQueued, maxWindows } = this.windows;
    await this.waitWhile(() => this.queue.length >= maxQueued || this.unfinished.size > maxWindows);
  }

  /**
   * Wait while `busy` says so (asked again whenever a read starts or a window completes); rejects on a failure, or
   * when the writer is closed meanwhile.
   */
  private async waitWhile(busy: () => boolean): Promise<void> {
    while (this.failure === undefined && !this.closing && busy())
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.throwIfFailed();
    if (this.closing)
      throw new FoleBackupError('ABORTED', 'restore: the file writer was closed while files were added');
  }

  /** The files of a window that need more than their spans (a longer file, a database), by their place in it. */
  private follow(files: readonly TreeEntry[]): Map<number, Followed> {
    const followed = new Map<number, Followed>();
    files.forEach((e, i) => {
      const chunks = e.chunks?.length ?? 0;
      if (chunks > 1 || e.kind === 'db') {
        const entry = { path: e.path, kind: e.kind, size: e.size, sha256: e.sha256 };
        const meta = this.opts.applyMetadata(e) ? this.metaOf(e) : undefined;
        followed.set(i, { entry, chunks, spansLeft: 0, planned: false, meta });
      }
      if (e.kind === 'db') this.complete.set(e.path, deferred());
    });
    return followed;
  }

  /** What a window keeps of a piece's plan: each span's job encoded, its spans counted on the files they write. */
  private encodePiece(plan: WindowPlan, followed: Map<number, Followed>): QueuedRead[] {
    for (const [i, f] of followed) f.spansLeft += plan.spansPerFile[i] as number;
    const spans = plan.spans.map((span): QueuedSpan => {
      const job = new SpanEncoder();
      for (const { blob, targets } of span.blobs) {
        job.blob(blob, blob.offset - span.offset);
        for (const t of targets) {
          const e = plan.files[t.file] as TreeEntry;
          const create = e.chunks?.length === 1;
          job.target(e.path, t.offset, create, create && this.opts.applyMetadata(e) ? this.metaOf(e) : undefined);
        }
      }
      const mine = span.files.map((f) => followed.get(f)).filter((f): f is Followed => f !== undefined);
      const last = plan.files[span.files[span.files.length - 1] as number] as TreeEntry;
      return {
        pack: span.pack,
        offset: span.offset,
        length: span.length,
        job: job.finish(),
        followed: mine,
        simple: span.files.length - mine.length,
        lastPath: last.path,
      };
    });
    return plan.reads.map(
      (r): QueuedRead => ({
        pack: r.pack,
        offset: r.offset,
        length: r.length,
        spans: spans.slice(r.first, r.first + r.count),
      }),
    );
  }

  /**
   * Check database entry `e` (added in a window) once it is complete: side
   * files, integrity_check, then its mode and mtime. Rejects with the
   * StopError of the check, or with the failure that kept `e` from being written.
   * A failed check does not stop the writer: the caller decides when to report it.
   */
  checkDatabase(e: TreeEntry): Promise<void> {
    const written = this.complete.get(e.path);
    if (written === undefined)
      return Promise.reject(new FoleBackupError('INTERNAL', `${e.path}: database checked before it was added`));
    const file = pathIn(this.root, e);
    return written.promise.then(async () => {
      await this.pool.run({ t: 'database', file, path: e.path, meta: this.metaOf(e) });
    });
  }

  /** What a complete file or database gets: its mode and mtime, and its owner when the restore gives owners. */
  private metaOf(e: TreeEntry): FileMeta {
    const owner = this.opts.owner?.(e);
    return owner === undefined ? { mode: e.mode, mtimeMs: e.mtimeMs } : { mode: e.mode, mtimeMs: e.mtimeMs, owner };
  }

  /** Wait until every window added is written and verified; rejects with the first failure. */
  async drain(): Promise<void> {
    for (const w of this.unfinished) await w.done.promise;
    this.throwIfFailed();
  }

  /** Stop: nothing new starts, the jobs under way finish, the workers exit. Safe to call more than once. */
  async close(): Promise<void> {
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.queue.length = 0;
    this.closing = true;
    for (const resolve of this.roomWaiters.splice(0)) resolve();
    for (const resolve of this.waiting.splice(0)) resolve();
    await Promise.allSettled([...this.reads]);
    await this.packs.close();
    await this.pool.close();
    // a worker that died in the middle of a job could not close what it had open
    if (this.pool.crashed) closeDescriptorsUnder(this.root);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.err;
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = { err };
    this.queue.length = 0;
    for (const w of this.unfinished) w.done.reject(err);
    for (const d of this.complete.values()) d.reject(err);
    this.wake();
    // the workers stop between blobs; close() waits for them
    void this.pool.close();
  }

  private wake(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
    // reads waiting for room see the failure and stop
    if (this.failure !== undefined) for (const resolve of this.roomWaiters.splice(0)) resolve();
  }

  private pump(): void {
    let started = false;
    // a read waiting for room comes before a new one: the room is its
    while (
      this.failure === undefined &&
      this.held < this.maxHeld &&
      this.roomWaiters.length === 0 &&
      this.reads.size < this.maxReads &&
      this.queue.length > 0
    ) {
      const { w, read } = this.queue.shift() as { w: WindowState; read: QueuedRead };
      started = true;
      const done = this.readSpans(w, read)
        .catch((err: unknown) => this.fail(err))
        .finally(() => {
          this.reads.delete(done);
          this.pump();
        });
      this.reads.add(done);
    }
    // the queue shrank: a waiting addWindow may have room now
    if (started) this.wake();
  }

  /** Room for one more span; false once the writer failed or is closing. */
  private async room(): Promise<boolean> {
    if (this.failure !== undefined || this.closing) return false;
    if (this.held < this.maxHeld) {
      this.held++;
      return true;
    }
    // freeRoom hands its room over (held stays as it is), or a failure or close() wakes this without one
    await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    return this.failure === undefined && !this.closing;
  }

  /** A span is written (or was never read): its room goes to the first read waiting for one, else back. */
  private freeRoom(): void {
    const next = this.roomWaiters.shift();
    if (next !== undefined) {
      next();
      return;
    }
    this.held--;
    this.pump();
  }

  /**
   * Read the spans of `read` — each alone through the pack readers, or all in one streamed request — and hand
   * each to a worker as soon as it is in, each taking room in maxHeld before its bytes are read.
   */
  private async readSpans(w: WindowState, read: QueuedRead): Promise<void> {
    const h = { type: 'data' as const, name: read.pack };
    const stream = this.streamed ? this.repo.backend.loadStream?.(h, read) : undefined;
    const alloc = (n: number): Uint8Array => this.buffers.take(n);
    const pieces = stream === undefined ? undefined : cutSpans(stream, read, read.spans, `data/${read.pack}`, alloc);
    try {
      for (const span of read.spans) {
        if (!(await this.room())) return;
        let data: Uint8Array;
        const into = pieces === undefined ? alloc(span.length) : undefined;
        try {
          data =
            into === undefined
              ? await nextSpan(pieces as AsyncGenerator<Uint8Array>)
              : await this.packs.read(span.pack, { offset: span.offset, length: span.length }, into);
        } catch (err) {
          // the read settled: nothing writes into its buffer any more
          if (into !== undefined) this.buffers.give(into.buffer as ArrayBuffer);
          this.freeRoom();
          throw damaged(span.pack, err);
        }
        // a reader that read into a buffer of its own: ours is free again
        if (into !== undefined && data.buffer !== into.buffer) this.buffers.give(into.buffer as ArrayBuffer);
        this.writeSpan(w, span, data)
          .catch((err: unknown) => this.fail(err))
          .finally(() => this.freeRoom());
      }
    } finally {
      await pieces?.return();
    }
  }

  private async writeSpan(w: WindowState, span: QueuedSpan, data: Uint8Array): Promise<void> {
    if (this.failure !== undefined) return;
    // a pool buffer travels whole (the span viewing its start); a reader's own buffer as transferable() says
    const { view, transfer } = this.buffers.ours(data)
      ? { view: data, transfer: [data.buffer as ArrayBuffer] }
      : transferable(data);
    const { bytes, buffer } = await this.pool.run(
      { t: 'span', pack: span.pack, data: view, root: this.root, span: span.job },
      transfer,
    );
    if (buffer !== undefined) this.buffers.give(buffer);
    this.opts.onBytes?.(bytes, span.lastPath);
    if (span.simple > 0) this.filesDone(w, span.simple);
    for (const f of span.followed) if (--f.spansLeft === 0 && f.planned) this.fileWritten(w, f);
  }

  /** All of a followed file's chunks are written: a longer file is read back and checked whole. */
  private fileWritten(w: WindowState, f: Followed): void {
    const e = f.entry;
    // A database's check (another worker) reads it while it is read back: the two run at
    // once, not one after the other at the end of a restore. Bytes that are not the
    // backup's fail the read-back, which stops the restore before any check is reported.
    if (e.kind === 'db') this.complete.get(e.path)?.resolve();
    if (f.chunks <= 1) {
      this.fileDone(w, e);
      return;
    }
    const meta = f.meta !== undefined ? { meta: f.meta } : {};
    this.pool
      .run({
        t: 'verify',
        file: pathIn(this.root, e),
        path: e.path,
        size: e.size ?? 0,
        sha256: e.sha256 ?? '',
        ...meta,
      })
      .then(
        () => this.fileDone(w, e),
        (err: unknown) => this.fail(err),
      );
  }

  private fileDone(w: WindowState, e: Pick<TreeEntry, 'path' | 'kind'>): void {
    if (this.failure !== undefined) return;
    // an empty database is complete once created
    if (e.kind === 'db') this.complete.get(e.path)?.resolve();
    this.filesDone(w, 1);
  }

  private filesDone(w: WindowState, n: number): void {
    if (this.failure !== undefined) return;
    this.opts.onFiles?.(n);
    w.filesLeft -= n;
    if (w.filesLeft === 0) {
      this.unfinished.delete(w);
      w.done.resolve();
      this.wake();
    }
  }
}

/** The next span cut out of a streamed read (one per span of the read, by cutSpans). */
async function nextSpan(pieces: AsyncGenerator<Uint8Array>): Promise<Uint8Array> {
  const r = await pieces.next();
  if (r.done === true) throw new FoleBackupError('INTERNAL', 'a streamed read ended before its spans');
  return r.value;
}

/**
 * A pack missing or shorter than the index says is damage (STOP CHECKSUM_MISMATCH); a read that failed (the
 * network, the disk) is not, and fails the restore as the error it is, which running it again may cure.
 */
function damaged(pack: string, err: unknown): unknown {
  if (!(err instanceof FoleBackupError && (err.code === 'NOT_FOUND' || err.code === 'REPO_CORRUPT'))) return err;
  return new StopError('CHECKSUM_MISMATCH', `pack ${pack.slice(0, 12)}: ${err.message}`, {
    cause: err,
    hint: 'a pack the backup needs is missing or truncated; run `fole-backup check --read-data`',
  });
}

/** Write one window of files and wait for it (a FileWriter used once). */
export async function writeWindow(
  repo: BlobReader,
  root: string,
  files: readonly TreeEntry[],
  opts: WriteFilesOptions,
): Promise<void> {
  const writer = await FileWriter.start(repo, root, opts);
  try {
    await writer.addWindow(files);
    await writer.drain();
  } finally {
    await writer.close();
  }
}
