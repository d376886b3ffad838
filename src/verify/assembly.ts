/**
 * Files checked as a whole (read-plan.ts: a file of several chunks, or a
 * database). Their chunks come out of several packs, checked in whatever
 * order the packs finish, so each such file collects them:
 *
 *   HashedFile       a file of several chunks: the plaintexts are handed over
 *                    and hashed in chunk order on the main thread (pieces
 *                    that arrive early wait; packs are checked in about the
 *                    order the file was written, so few do)
 *   ScratchDatabase  a database: the workers write each chunk straight into
 *                    a scratch file at its offset (nothing comes back); once
 *                    every pack it needs is done, a worker reads the file back
 *                    for its size and SHA-256 and runs PRAGMA integrity_check
 *
 * Either way the outcome says what reading the file chunk by chunk would have
 * found first: the first chunk in file order that did not open, else a write
 * error, else a size or SHA-256 mismatch, else an integrity_check failure.
 */
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { FoleBackupError, StopError, fsError } from '../errors.js';
import { sideFilesOf } from '../sqlite/integrity.js';
import type { AssemblyPlan } from './read-plan.js';

export interface AssemblyOutcome {
  plan: AssemblyPlan;
  /** Size and SHA-256 match the tree. */
  contentOk: boolean;
  /** Content bytes hashed. */
  bytesVerified: number;
  /** A database's integrity_check ran (whatever it said). */
  checked: boolean;
  /** Why the content is not right (the error as thrown), when it is not. */
  error?: unknown;
  /** integrity_check's first lines, when it was not ok. */
  integrity?: string[];
}

/** What a database check on a worker found (pack-worker.ts). */
export interface DatabaseCheck {
  /** Size and SHA-256 of the scratch file as read back. */
  size: number;
  sha256: string;
  /** Whether integrity_check ran (only when size and SHA-256 matched). */
  checked: boolean;
  ok: boolean;
  problems: string[];
}

/**
 * A failure to make or write a scratch copy, as an error about our scratch
 * space, never about the repository: a missing directory there is a
 * WRITE_ERROR, not NOT_FOUND (which, for a pack, means damage).
 */
export function scratchError(what: string, path: string, err: unknown): FoleBackupError {
  const e = fsError(what, path, err);
  if (e.code !== 'NOT_FOUND') return e;
  return new FoleBackupError(
    'WRITE_ERROR',
    `${what} ${path}: no such directory for the scratch copies of the databases`,
    {
      path,
      cause: err,
      hint:
        'give --scratch-dir a directory that exists ' +
        "(it needs room for up to all of the backup's databases), and run it again",
    },
  );
}

/** What a scratch database needs from the run. */
export interface ScratchHost {
  /** A path for a new scratch file in the private scratch directory. */
  scratchFile(): Promise<string>;
  /** Read the file back (size, SHA-256) and, when they are `expect`ed, integrity-check it. */
  checkDatabase(file: string, expect: { size: number; sha256: string }): Promise<DatabaseCheck>;
}

const sizeMismatch = (size: number, recorded: number): StopError =>
  new StopError('CHECKSUM_MISMATCH', `content is ${size} bytes, the backup recorded ${recorded}`);
const hashMismatch = (): StopError =>
  new StopError('CHECKSUM_MISMATCH', 'SHA-256 of the content does not match the manifest');

/** Chunk positions of every blob id of a file (an id may occur more than once). */
function positionsOf(chunks: readonly string[]): Map<string, number[]> {
  const at = new Map<string, number[]>();
  chunks.forEach((id, i) => {
    const list = at.get(id);
    if (list === undefined) at.set(id, [i]);
    else list.push(i);
  });
  return at;
}

type Piece = Buffer | { failed: unknown };

/** A file of several chunks, hashed in chunk order as the plaintexts arrive. */
export class HashedFile {
  readonly done: Promise<AssemblyOutcome>;
  private resolve!: (o: AssemblyOutcome) => void;
  private readonly positions: Map<string, number[]>;
  private readonly waiting = new Map<number, Piece>();
  private readonly hash = createHash('sha256');
  private next = 0;
  private size = 0;
  private finished = false;

  constructor(readonly plan: AssemblyPlan) {
    this.done = new Promise((resolve) => (this.resolve = resolve));
    this.positions = positionsOf(plan.chunks);
    this.advance();
  }

  /** A chunk's verified plaintext. */
  deliver(id: string, plain: Buffer): void {
    this.put(id, plain);
  }

  /** A chunk that did not open. */
  fail(id: string, err: unknown): void {
    this.put(id, { failed: err });
  }

  private put(id: string, piece: Piece): void {
    if (this.finished) return;
    for (const i of this.positions.get(id) ?? []) {
      if (i < this.next) continue;
      // a plaintext that must wait for an earlier chunk is copied: held as it came, a view
      // would keep the whole answer it arrived in (up to a pack's plaintext) alive
      this.waiting.set(i, i > this.next && Buffer.isBuffer(piece) ? Buffer.from(piece) : piece);
    }
    this.advance();
  }

  private advance(): void {
    for (;;) {
      if (this.next === this.plan.chunks.length) {
        this.finish(undefined);
        return;
      }
      const piece = this.waiting.get(this.next);
      if (piece === undefined) return;
      this.waiting.delete(this.next);
      if (!Buffer.isBuffer(piece)) {
        this.finish(piece.failed);
        return;
      }
      this.hash.update(piece);
      this.size += piece.length;
      this.next++;
    }
  }

  private finish(failure: unknown): void {
    this.finished = true;
    this.waiting.clear();
    const p = this.plan;
    let error = failure;
    if (error === undefined && this.size !== p.size) error = sizeMismatch(this.size, p.size);
    else if (error === undefined && this.hash.digest('hex') !== p.sha256) error = hashMismatch();
    const outcome: AssemblyOutcome = {
      plan: p,
      contentOk: error === undefined,
      bytesVerified: this.size,
      checked: false,
    };
    this.resolve(error === undefined ? outcome : { ...outcome, error });
  }
}

/**
 * A database restored into a scratch file by the workers, checked once every
 * pack it needs is done. The caller creates the file (prepare()) before it
 * sends the first pack that writes into it, and tells it about every pack
 * done, every chunk that failed and every failed write.
 */
export class ScratchDatabase {
  readonly done: Promise<AssemblyOutcome>;
  private resolve!: (o: AssemblyOutcome) => void;
  private readonly positions: Map<string, number[]>;
  /** Offset of every chunk in the file. */
  private readonly offsets: number[] = [];
  private readonly packsLeft: Set<string>;
  /** The first failed chunk in file order so far, and why. */
  private failedAt = Infinity;
  private failure: unknown;
  private writeError: unknown;
  /** Plaintext lengths that are not the index's (the file's layout is off then). */
  private readonly odd = new Map<number, number>();
  private file: Promise<string | undefined> | undefined;
  private finished = false;

  constructor(
    readonly plan: AssemblyPlan,
    private readonly host: ScratchHost,
  ) {
    this.done = new Promise((resolve) => (this.resolve = resolve));
    this.positions = positionsOf(plan.chunks);
    let at = 0;
    for (const n of plan.rawLengths) {
      this.offsets.push(at);
      at += n;
    }
    this.packsLeft = new Set(plan.chunkPacks);
    if (this.packsLeft.size === 0) void this.conclude();
  }

  /** Create the scratch file (once); undefined when it cannot be, and the database has failed. */
  prepare(): Promise<string | undefined> {
    this.file ??= (async () => {
      let file: string | undefined;
      try {
        file = await this.host.scratchFile();
        // mode 0600 in a 0700 directory: nobody else reads the decrypted copy
        await (await open(file, 'wx', 0o600)).close();
        return file;
      } catch (err) {
        this.writeError ??= file === undefined ? err : scratchError('write', file, err);
        return undefined;
      }
    })();
    return this.file;
  }

  /** Where blob `id` goes in the file (one offset per place it occurs). */
  offsetsOf(id: string): number[] {
    return (this.positions.get(id) ?? []).map((i) => this.offsets[i] as number);
  }

  /** A chunk did not open. */
  fail(id: string, err: unknown): void {
    const first = this.positions.get(id)?.[0];
    if (first !== undefined && first < this.failedAt) {
      this.failedAt = first;
      this.failure = err;
    }
  }

  /** A chunk opened to another length than the index says. */
  oddLength(id: string, length: number): void {
    for (const i of this.positions.get(id) ?? []) this.odd.set(i, length);
  }

  /** Writing into the file failed (the worker's error). */
  writeFailed(err: unknown): void {
    this.writeError ??= err;
  }

  /** Every blob this database needs from `pack` has been opened and written (or failed). */
  packDone(pack: string): void {
    if (!this.packsLeft.delete(pack) || this.packsLeft.size > 0 || this.finished) return;
    void this.conclude();
  }

  /** Give up (the run is stopping): remove the scratch file. */
  async abandon(): Promise<void> {
    this.finished = true;
    await this.remove();
  }

  private async conclude(): Promise<void> {
    this.finished = true;
    let outcome: AssemblyOutcome;
    try {
      outcome = await this.check();
    } finally {
      await this.remove();
    }
    this.resolve(outcome);
  }

  private async check(): Promise<AssemblyOutcome> {
    const p = this.plan;
    // what the chunks before the first failure hold, as a chunk-by-chunk read would have hashed them
    const lengthAt = (i: number): number => this.odd.get(i) ?? (p.rawLengths[i] as number);
    let verified = 0;
    for (let i = 0; i < Math.min(this.failedAt, p.chunks.length); i++) verified += lengthAt(i);
    const outcome: AssemblyOutcome = { plan: p, contentOk: false, bytesVerified: verified, checked: false };
    try {
      if (this.failure !== undefined) return { ...outcome, error: this.failure };
      const file = await this.prepare();
      // no scratch file: nothing was written, and the content was never put together
      if (file === undefined) return { ...outcome, bytesVerified: 0, error: this.writeError };
      if (this.writeError !== undefined) return { ...outcome, error: this.writeError };
      // a chunk of another length than the index says was written at the wrong place: the file is not the content
      if (this.odd.size > 0)
        return { ...outcome, error: verified !== p.size ? sizeMismatch(verified, p.size) : hashMismatch() };
      const r = await this.host.checkDatabase(file, { size: p.size, sha256: p.sha256 });
      if (r.size !== p.size) return { ...outcome, error: sizeMismatch(r.size, p.size) };
      if (r.sha256 !== p.sha256) return { ...outcome, error: hashMismatch() };
      return { ...outcome, contentOk: true, checked: r.checked, ...(r.ok ? {} : { integrity: r.problems }) };
    } catch (err) {
      return { ...outcome, error: err };
    }
  }

  private async remove(): Promise<void> {
    const file = await this.file;
    if (file !== undefined) await Promise.all([file, ...sideFilesOf(file)].map((f) => rm(f, { force: true })));
  }
}
