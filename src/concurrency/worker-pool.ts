/**
 * A pool of worker threads that run jobs: the life cycle shared by the backup's
 * file workers (src/backup/file-pool.ts), verify's pack workers
 * (src/verify/pack-pool.ts) and restore's workers (src/restore/worker-pool.ts).
 *
 * Protocol: the pool numbers each job and posts it as `{ ...body, job }`; every
 * message a worker sends back names its job. A job ends with its final message
 * (`isFinal`; by default every message is final): `{ t: 'failed', error }`
 * rejects it with the error it carries (errorFromData), any other resolves it.
 * Messages before the final one go to the job's `onMessage`, which may answer
 * the worker running the job through `reply`.
 *
 * Back-pressure: a worker is sent at most `capacity` units of work at a time (a
 * job weighs 1 unless told otherwise): the job it runs and the next ones, so it
 * never waits for a message between jobs, and the main thread never piles work
 * into a worker's message queue that another worker could have taken. The rest
 * waits here in order (a `first` job goes to the front) and is handed to the
 * worker with the least load as room frees up. A job that does not fit anywhere
 * holds back the ones behind it, so a heavy job is not overtaken forever.
 *
 * Stopping: close() sends nothing more, rejects what was not sent, waits for the
 * answer to every job under way (a job that closes its descriptors before it
 * answers then leaves none open), and terminates the workers. terminate()
 * rejects every unanswered job at once and terminates the workers. Either
 * resolves once every thread has exited.
 *
 * A worker that dies on its own (an uncaught error, process.exit, out of
 * memory) breaks the pool: its jobs, every job not sent yet and every later
 * run() are rejected with INTERNAL naming how it died. Jobs under way on the
 * other workers still get their answers.
 */
import type { ResourceLimits, TransferListItem, Worker } from 'node:worker_threads';
import { type ErrorData, FoleBackupError, errorFromData } from '../errors.js';
import { startWorker } from './start-worker.js';

/** Every message between a pool and its workers names its job. */
export interface JobMessage {
  job: number;
}

/** The final answer of a job that failed; the pool rejects the job with `error`. */
export interface FailedAnswer {
  t: 'failed';
  job: number;
  error: ErrorData;
}

/** A message as the caller gives it: the pool adds the job number. */
export type JobBody<T extends JobMessage> = T extends unknown ? Omit<T, 'job'> : never;

export interface WorkerPoolOptions<Out extends JobMessage> {
  /** The worker module: `name` next to `callerUrl` (see startWorker). */
  callerUrl: string;
  name: string;
  /** Names the workers in errors: "LABEL worker exited with code 1". */
  label: string;
  /** Worker threads started (at least one). */
  threads: number;
  /** Units of work sent to one worker at a time. */
  capacity: number;
  workerData?: unknown;
  resourceLimits?: ResourceLimits;
  /** Whether a message ends its job; by default every message does. */
  isFinal?: (m: Out) => boolean;
}

/** Send a message to the worker running a job (the pool adds the job number). */
export type Reply<In extends JobMessage> = (m: JobBody<In>, transfer?: readonly TransferListItem[]) => void;

export interface JobOptions<In extends JobMessage, Out extends JobMessage> {
  /** Units of a worker's capacity the job takes (default 1; more than the capacity counts as all of it). */
  weight?: number;
  /** Objects moved to the worker with the job (they become unusable here). */
  transfer?: readonly TransferListItem[];
  /** Go ahead of the jobs waiting. */
  first?: boolean;
  /** Messages of the job before its final one. */
  onMessage?: (m: Out, reply: Reply<In>) => void;
}

interface Slot {
  worker: Worker;
  load: number;
  gone: boolean;
}

interface Job<In extends JobMessage, Out extends JobMessage> {
  body: JobBody<In>;
  options: JobOptions<In, Out>;
  weight: number;
  resolve: (m: Out) => void;
  reject: (err: unknown) => void;
  id: number;
  slot: Slot | undefined;
}

function isFailed(m: JobMessage): m is FailedAnswer {
  return (m as { t?: unknown }).t === 'failed' && 'error' in m;
}

export class WorkerPool<In extends JobMessage, Out extends JobMessage> {
  private readonly slots: Slot[] = [];
  private readonly queue: Job<In, Out>[] = [];
  private readonly running = new Map<number, Job<In, Out>>();
  private readonly label: string;
  private readonly capacity: number;
  private readonly isFinal: (m: Out) => boolean;
  private nextJob = 1;
  private failure: FoleBackupError | undefined;
  private stopping = false;
  private closing: Promise<void> | undefined;
  /** Set once the pool terminates its workers: their exits are no failure. */
  private ending: Promise<void> | undefined;
  private settled: (() => void)[] = [];

  constructor(options: WorkerPoolOptions<Out>) {
    this.label = options.label;
    this.capacity = Math.max(1, options.capacity);
    this.isFinal = options.isFinal ?? (() => true);
    for (let i = 0; i < Math.max(1, options.threads); i++) {
      const worker = startWorker(options.callerUrl, options.name, {
        workerData: options.workerData,
        ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
      });
      const slot: Slot = { worker, load: 0, gone: false };
      worker.on('message', (m: Out) => this.onMessage(m));
      worker.on('error', (err) =>
        this.onGone(
          slot,
          new FoleBackupError('INTERNAL', `${this.label} worker failed: ${err.message}`, { cause: err }),
        ),
      );
      worker.on('exit', (code) =>
        this.onGone(slot, new FoleBackupError('INTERNAL', `${this.label} worker exited with code ${code}`)),
      );
      this.slots.push(slot);
    }
  }

  /**
   * Run one job on some worker: resolves with its final message, rejects with
   * the error of a `failed` answer, with the pool's failure, or with ABORTED
   * when the pool stops before the job is answered.
   */
  run(body: JobBody<In>, options: JobOptions<In, Out> = {}): Promise<Out> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.stopping) return Promise.reject(this.notRun());
    const weight = Math.min(this.capacity, options.weight ?? 1);
    return new Promise((resolve, reject) => {
      const job: Job<In, Out> = { body, options, weight, resolve, reject, id: 0, slot: undefined };
      if (options.first === true) this.queue.unshift(job);
      else this.queue.push(job);
      this.dispatch();
    });
  }

  /** Why the pool is broken: how a worker died on its own; undefined while none has. */
  get broken(): FoleBackupError | undefined {
    return this.failure;
  }

  /** Jobs sent to a worker and not answered yet. */
  get inFlight(): number {
    return this.running.size;
  }

  /** Jobs waiting for room on a worker. */
  get queued(): number {
    return this.queue.length;
  }

  /** Stop: jobs not sent are rejected, jobs under way are answered, then the workers exit. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      for (const job of this.queue.splice(0)) job.reject(this.notRun());
      while (this.running.size > 0) await new Promise<void>((resolve) => this.settled.push(resolve));
      await this.end();
    })();
    return this.closing;
  }

  /** Stop now: every job not answered is rejected, then the workers exit. Idempotent. */
  terminate(): Promise<void> {
    this.stopping = true;
    const err = new FoleBackupError('ABORTED', `${this.label} worker: stopped before the job was answered`);
    for (const job of [...this.running.values()]) {
      this.finish(job);
      job.reject(err);
    }
    for (const job of this.queue.splice(0)) job.reject(this.notRun());
    return this.end();
  }

  private notRun(): FoleBackupError {
    return new FoleBackupError('ABORTED', `${this.label} worker: job not run, the pool is stopping`);
  }

  private end(): Promise<void> {
    this.ending ??= Promise.all(this.slots.map((s) => s.worker.terminate())).then(() => undefined);
    return this.ending;
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.stopping && this.failure === undefined) {
      const next = this.queue[0] as Job<In, Out>;
      let slot: Slot | undefined;
      for (const s of this.slots)
        if (!s.gone && s.load + next.weight <= this.capacity && (slot === undefined || s.load < slot.load)) slot = s;
      if (slot === undefined) return;
      this.queue.shift();
      next.id = this.nextJob++;
      next.slot = slot;
      slot.load += next.weight;
      this.running.set(next.id, next);
      try {
        slot.worker.postMessage({ ...next.body, job: next.id }, next.options.transfer);
      } catch (err) {
        // not sendable (a bug in the caller): that job fails, the pool goes on
        this.finish(next);
        const why = err instanceof Error ? err.message : String(err);
        next.reject(new FoleBackupError('INTERNAL', `${this.label} worker: cannot send a job: ${why}`, { cause: err }));
      }
    }
  }

  private onMessage(m: Out): void {
    const job = this.running.get(m.job);
    if (job === undefined) return;
    if (!this.isFinal(m)) {
      job.options.onMessage?.(m, (body, transfer) => {
        // a reply after the job ended (the pool stopped meanwhile) has no one to go to
        if (this.running.get(job.id) === job && job.slot?.gone === false)
          job.slot.worker.postMessage({ ...body, job: job.id }, transfer);
      });
      return;
    }
    this.finish(job);
    if (isFailed(m)) job.reject(errorFromData(m.error));
    else job.resolve(m);
    this.dispatch();
  }

  private finish(job: Job<In, Out>): void {
    this.running.delete(job.id);
    if (job.slot !== undefined) job.slot.load -= job.weight;
    if (this.running.size === 0) for (const wake of this.settled.splice(0)) wake();
  }

  private onGone(slot: Slot, err: FoleBackupError): void {
    if (slot.gone) return;
    slot.gone = true;
    if (this.ending !== undefined) return;
    this.failure ??= err;
    for (const job of [...this.running.values()]) {
      if (job.slot !== slot) continue;
      this.finish(job);
      job.reject(err);
    }
    for (const job of this.queue.splice(0)) job.reject(err);
  }
}
