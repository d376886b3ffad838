/**
 * The main-thread side of the restore workers (src/restore/restore-worker.ts):
 * one worker per core, jobs handed out from one queue to whichever worker has
 * room (at most CAPACITY units of work sent to a worker at a time, so one
 * long database check does not leave spans waiting behind it while the other
 * worker idles).
 *
 * Lifecycle: run() until the first failure, then close(). close() makes the
 * workers skip what they have not started (a shared flag), waits for the
 * answer to every job already sent — a job closes its descriptors before it
 * answers, so none stays open — and terminates the workers. A worker that dies
 * (an uncaught error, out of memory) fails its jobs with INTERNAL; what it
 * had open stays open, so the caller closes it (see `crashed`).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { FoleBackupError, errorFromData } from '../errors.js';
import { startWorker } from '../concurrency/start-worker.js';
import type { FromWorker, RestoreWorkerData, ToWorker } from './restore-worker.js';

/** Units of work sent to one worker at a time: the job it runs and the next one. */
const CAPACITY = 2;
/**
 * A worker's young generation, in MB (V8's default is several times more). A
 * worker keeps next to nothing alive between jobs; a small young generation is
 * collected often, so the spans and plaintexts it is done with are freed soon.
 * Measured on the default preset (fifth session, 6 alternating runs each): 8 MB
 * restores 3% faster than 2 MB (5.85 vs 6.05 s) for ~10 MB more peak RSS; the
 * file workers of a backup use 8 MB too.
 */
const WORKER_YOUNG_GENERATION_MB = 8;

/** A job as the caller gives it (the pool numbers it). */
export type RestoreJob = WithoutJob<ToWorker>;
type WithoutJob<T> = T extends unknown ? Omit<T, 'job'> : never;

interface Slot {
  worker: Worker;
  load: number;
  gone: boolean;
}

interface Pending {
  slot: Slot;
  weight: number;
  resolve: (bytes: number) => void;
  reject: (err: unknown) => void;
}

interface Queued {
  body: RestoreJob;
  transfer: ArrayBuffer[];
  weight: number;
  resolve: (bytes: number) => void;
  reject: (err: unknown) => void;
}

function stopped(): FoleBackupError {
  return new FoleBackupError('ABORTED', 'restore worker: job not run, the restore is stopping');
}

export class RestorePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Queued[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly cancel = new SharedArrayBuffer(4);
  private nextJob = 1;
  private broken: FoleBackupError | undefined;
  private closing: Promise<void> | undefined;
  private settled: (() => void)[] = [];

  constructor(key: Uint8Array, threads = availableParallelism()) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      // process.umask() without an argument only reads it (deprecated in the docs for a race that reading here cannot hit)
      const workerData: RestoreWorkerData = { key, cancel: this.cancel, umask: process.umask() };
      const worker = startWorker(import.meta.url, 'restore-worker', {
        workerData,
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      });
      const slot: Slot = { worker, load: 0, gone: false };
      worker.on('message', (m: FromWorker) => this.onAnswer(m));
      worker.on('error', (err) =>
        this.onGone(slot, new FoleBackupError('INTERNAL', `restore worker failed: ${err.message}`, { cause: err })),
      );
      worker.on('exit', (code) =>
        this.onGone(slot, new FoleBackupError('INTERNAL', `restore worker exited with code ${code}`)),
      );
      this.slots.push(slot);
    }
  }

  /**
   * Run one job on some worker: resolves with the content bytes it wrote,
   * rejects with its error (the FoleBackupError the worker threw, as such).
   * `transfer`: buffers handed to the worker (they become unusable here).
   */
  run(body: RestoreJob, transfer: ArrayBuffer[] = []): Promise<number> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    if (this.closing !== undefined) return Promise.reject(stopped());
    // a database check is long: it runs alone on its worker, so spans do not wait behind it
    const weight = body.t === 'database' ? CAPACITY : 1;
    return new Promise((resolve, reject) => {
      this.queue.push({ body, transfer, weight, resolve, reject });
      this.dispatch();
    });
  }

  /** Whether a worker died on its own (its descriptors may still be open: the caller knows where they point). */
  get crashed(): boolean {
    return this.broken !== undefined;
  }

  /** Stop: jobs not started are rejected, jobs under way settle, workers exit. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      Atomics.store(new Int32Array(this.cancel), 0, 1);
      for (const q of this.queue.splice(0)) q.reject(stopped());
      while (this.pending.size > 0) await new Promise<void>((resolve) => this.settled.push(resolve));
      await Promise.all(this.slots.map((s) => s.worker.terminate()));
    })();
    return this.closing;
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.closing === undefined && this.broken === undefined) {
      const next = this.queue[0] as Queued;
      let slot: Slot | undefined;
      for (const s of this.slots)
        if (!s.gone && s.load + next.weight <= CAPACITY && (slot === undefined || s.load < slot.load)) slot = s;
      if (slot === undefined) return;
      this.queue.shift();
      const job = this.nextJob++;
      slot.load += next.weight;
      const p: Pending = { slot, weight: next.weight, resolve: next.resolve, reject: next.reject };
      this.pending.set(job, p);
      try {
        slot.worker.postMessage({ ...next.body, job } as ToWorker, next.transfer);
      } catch (err) {
        // not sendable (a bug): that job fails, the pool goes on
        this.finish(job, p);
        p.reject(
          new FoleBackupError(
            'INTERNAL',
            `restore worker: cannot send a job: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          ),
        );
      }
    }
  }

  private onAnswer(m: FromWorker): void {
    const p = this.pending.get(m.job);
    if (p === undefined) return;
    this.finish(m.job, p);
    if (m.t === 'done') p.resolve(m.bytes);
    else if (m.t === 'failed') p.reject(errorFromData(m.error));
    else p.reject(stopped());
    this.dispatch();
  }

  private finish(job: number, p: Pending): void {
    this.pending.delete(job);
    p.slot.load -= p.weight;
    if (this.pending.size === 0) for (const wake of this.settled.splice(0)) wake();
  }

  private onGone(slot: Slot, err: FoleBackupError): void {
    if (slot.gone) return;
    slot.gone = true;
    // an exit after close() asked for it is no failure
    if (this.closing !== undefined && this.pending.size === 0) return;
    this.broken ??= err;
    for (const [job, p] of this.pending) {
      if (p.slot !== slot) continue;
      this.finish(job, p);
      p.reject(err);
    }
    for (const q of this.queue.splice(0)) q.reject(err);
  }
}
