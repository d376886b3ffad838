/**
 * The main-thread side of the restore workers (src/restore/restore-worker.ts),
 * on the shared WorkerPool (src/concurrency/worker-pool.ts): one worker per
 * core, at most CAPACITY units of work sent to a worker at a time, so one long
 * database check does not leave spans waiting behind it while the other worker
 * idles.
 *
 * Lifecycle: run() until the first failure, then close(). close() makes the
 * workers skip what they have not started (a shared flag), waits for the
 * answer to every job already sent — a job closes its descriptors before it
 * answers, so none stays open — and terminates the workers. A worker that dies
 * (an uncaught error, out of memory) fails its jobs with INTERNAL; what it
 * had open stays open, so the caller closes it (see `crashed`).
 */
import { availableParallelism } from 'node:os';
import { WorkerPool, type JobBody } from '../concurrency/worker-pool.js';
import { FoleBackupError } from '../errors.js';
import type { BlobCipher } from '../repository/blob-cipher.js';
import type { FromWorker, RestoreWorkerData, ToWorker } from './restore-worker.js';

/** Units of work sent to one worker at a time: the job it runs and the next one. */
const CAPACITY = 2;
/**
 * A worker's young generation, in MB (V8's default is several times more). A
 * worker keeps next to nothing alive between jobs; a small young generation is
 * collected often, so the spans and plaintexts it is done with are freed soon.
 * On the default preset (6 alternating runs each), 8 MB restores 3% faster than
 * 2 MB (5.85 vs 6.05 s) for ~10 MB more peak RSS; the file workers of a backup
 * use 8 MB too.
 */
const WORKER_YOUNG_GENERATION_MB = 8;

/** A job as the caller gives it (the pool numbers it). */
export type RestoreJob = JobBody<ToWorker>;

function stopped(): FoleBackupError {
  return new FoleBackupError('ABORTED', 'restore worker: job not run, the restore is stopping');
}

export class RestorePool {
  private readonly pool: WorkerPool<ToWorker, FromWorker>;
  private readonly cancel = new SharedArrayBuffer(4);
  private closing = false;

  /** `cipher`: the repository's (Repository.blobCipher), handed to each worker. */
  constructor(cipher: BlobCipher, threads = availableParallelism()) {
    // process.umask() without an argument only reads it (deprecated in the docs for a race
    // that reading here cannot hit)
    const workerData: RestoreWorkerData = { cipher: cipher.toWorker(), cancel: this.cancel, umask: process.umask() };
    this.pool = new WorkerPool({
      callerUrl: import.meta.url,
      name: 'restore-worker',
      label: 'restore',
      threads,
      capacity: CAPACITY,
      workerData,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
  }

  /**
   * Run one job on some worker: resolves with the content bytes it wrote and, for a span, its buffer back (when
   * the worker could give it); rejects with its error (the FoleBackupError the worker threw, as such).
   * `transfer`: buffers handed to the worker (they become unusable here).
   */
  async run(body: RestoreJob, transfer: ArrayBuffer[] = []): Promise<{ bytes: number; buffer?: ArrayBuffer }> {
    if (this.closing && this.pool.broken === undefined) throw stopped();
    // a database check is long: it runs alone on its worker, so spans do not wait behind it
    const weight = body.t === 'database' ? CAPACITY : 1;
    const m = await this.pool.run(body, { weight, transfer });
    if (m.t === 'cancelled') throw stopped();
    if (m.t !== 'done') return { bytes: 0 };
    return m.buffer === undefined ? { bytes: m.bytes } : { bytes: m.bytes, buffer: m.buffer };
  }

  /** Whether a worker died on its own (its descriptors may still be open: the caller knows where they point). */
  get crashed(): boolean {
    return this.pool.broken !== undefined;
  }

  /** Stop: jobs not started are rejected, jobs under way settle, workers exit. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      Atomics.store(new Int32Array(this.cancel), 0, 1);
    }
    return this.pool.close();
  }
}
