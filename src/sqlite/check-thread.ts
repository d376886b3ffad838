/**
 * checkCopy (src/sqlite/check-copy.ts) on a thread of its own
 * (src/sqlite/check-worker.ts), so the capture copies the next database while
 * the last copy is checked: a check reads its copy about twice, a third of a
 * capture's CPU, and the capture thread is the one stage of a backup that
 * works on one database at a time. Copies are checked in the order given.
 *
 * Protocol:
 *   capture → check  {t:'check', id, copy}                    one per copy
 *   check → capture  {t:'checked', id, captured} | {t:'failed', id, error}
 */
import type { Worker } from 'node:worker_threads';
import { errorFromData, type ErrorData, FoleBackupError } from '../errors.js';
import { startWorker } from '../concurrency/start-worker.js';
import type { CapturedDatabase, CopyToCheck } from './check-copy.js';

export interface CheckWorkerData {
  /** Delete this lock row from the copy of this database before it is checked (our own row in core.db). */
  dropLockRow?: { path: string; lockId: string };
  /** Int32 flag: non-zero once the checks still queued are to be answered ABORTED instead of run. */
  cancel: SharedArrayBuffer;
}

export type ToCheckWorker = { t: 'check'; id: number; copy: CopyToCheck };
export type FromCheckWorker =
  | { t: 'checked'; id: number; captured: CapturedDatabase }
  | { t: 'failed'; id: number; error: ErrorData };

interface Waiting {
  resolve: (c: CapturedDatabase) => void;
  reject: (err: unknown) => void;
}

/** The thread starts with the first check: an incremental that copies no database starts none. */
export class CheckThread {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;
  /** Why the thread is gone (every check after it fails with this). */
  private gone: FoleBackupError | undefined;

  private readonly cancelled = new SharedArrayBuffer(4);

  constructor(private readonly data: Omit<CheckWorkerData, 'cancel'>) {}

  /** The checks not yet begun fail with ABORTED at once (a check under way runs to its end). */
  cancel(): void {
    Atomics.store(new Int32Array(this.cancelled), 0, 1);
  }

  /** Check `copy` (transform, integrity_check, measure); rejects with what checkCopy throws. */
  check(copy: CopyToCheck): Promise<CapturedDatabase> {
    if (this.gone !== undefined) return Promise.reject(this.gone);
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<CapturedDatabase>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ t: 'check', id, copy } satisfies ToCheckWorker);
    });
  }

  /** Stop the thread. Call once no check is under way: a check in progress fails. */
  async close(): Promise<void> {
    this.gone ??= new FoleBackupError('INTERNAL', 'check thread closed');
    await this.worker?.terminate();
  }

  private start(): Worker {
    const worker = startWorker(import.meta.url, 'check-worker', {
      workerData: { ...this.data, cancel: this.cancelled } satisfies CheckWorkerData,
    });
    worker.on('message', (m: FromCheckWorker) => {
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.t === 'checked') w.resolve(m.captured);
      else w.reject(errorFromData(m.error));
    });
    worker.on('error', (err) => this.end(`check worker failed: ${err.message}`, err));
    worker.on('exit', (code) => this.end(`check worker exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private end(message: string, cause?: unknown): void {
    this.gone ??= new FoleBackupError('INTERNAL', message, cause === undefined ? {} : { cause });
    for (const w of this.waiting.values()) w.reject(this.gone);
    this.waiting.clear();
  }
}
