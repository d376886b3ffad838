/**
 * The main-thread side of the verify workers (pack-worker.ts): one worker per
 * core, jobs handed out from one queue to whichever worker has the fewest
 * (at most CAPACITY each: the one it runs and the next, so a worker never
 * waits for a message between jobs and the main thread never piles up packs
 * in a worker's queue). A worker that dies fails its jobs with INTERNAL, and
 * every later job too.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../concurrency/start-worker.js';
import { FoleBackupError, errorFromData } from '../errors.js';
import type { DatabaseCheck } from './assembly.js';
import type { BlobToOpen, FromWorker, PackAnswer, ToWorker } from './pack-worker.js';

const CAPACITY = 2;

interface Slot {
  worker: Worker;
  jobs: number;
}

interface Job {
  msg: ToWorker;
  transfer: ArrayBuffer[];
  resolve: (m: FromWorker) => void;
  reject: (err: unknown) => void;
  slot?: Slot;
}

/** Workers used by default: one per core, at most 4. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

export class PackPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<number, Job>();
  private nextJob = 1;
  private broken: FoleBackupError | undefined;
  private closed = false;

  /** `key`: the repository's master key (Repository.workerKey), handed to each worker. */
  constructor(key: Uint8Array, threads = defaultWorkers()) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const worker = startWorker(import.meta.url, 'pack-worker', { workerData: { key } });
      const slot: Slot = { worker, jobs: 0 };
      worker.on('message', (m: FromWorker) => this.onAnswer(slot, m));
      worker.on('error', (err) =>
        this.fail(new FoleBackupError('INTERNAL', `verify worker failed: ${err.message}`, { cause: err })),
      );
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new FoleBackupError('INTERNAL', `verify worker exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  /**
   * Open `blobs` in a pack's bytes (and hash all of them when `hash`),
   * writing those with `writes` into `files`. `data` is transferred to the
   * worker when it owns its whole ArrayBuffer (a buffer from Backend.load is
   * the caller's), and copied otherwise (a slice of Node's shared pool);
   * either way the caller must not use it afterwards.
   */
  async checkPack(
    pack: string,
    data: Buffer,
    hash: boolean,
    files: string[],
    blobs: BlobToOpen[],
  ): Promise<PackAnswer> {
    const own =
      data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
    const bytes = own ? data : Buffer.from(data);
    const m = await this.run({ t: 'pack', job: 0, pack, data: bytes, hash, files, blobs }, [
      bytes.buffer as ArrayBuffer,
    ]);
    return m as PackAnswer;
  }

  /** Read a database's scratch file back and, when it is what was `expect`ed, integrity-check it. */
  async checkDatabase(file: string, expect: { size: number; sha256: string }): Promise<DatabaseCheck> {
    const m = await this.run({ t: 'database', job: 0, file, ...expect }, []);
    return (m as Extract<FromWorker, { t: 'database' }>).check;
  }

  /** Stop every worker; jobs not answered yet are rejected. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new FoleBackupError('ABORTED', 'verify worker: stopped'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private run(msg: ToWorker, transfer: ArrayBuffer[]): Promise<FromWorker> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ msg: { ...msg, job: this.nextJob++ }, transfer, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const slot = this.slots.reduce((a, b) => (b.jobs < a.jobs ? b : a));
      if (slot.jobs >= CAPACITY) return;
      const job = this.queue.shift() as Job;
      job.slot = slot;
      slot.jobs++;
      this.running.set(job.msg.job, job);
      slot.worker.postMessage(job.msg, job.transfer);
    }
  }

  private onAnswer(slot: Slot, m: FromWorker): void {
    const job = this.running.get(m.job);
    if (job === undefined) return;
    this.running.delete(m.job);
    slot.jobs--;
    if (m.t === 'failed') job.reject(errorFromData(m.error));
    else job.resolve(m);
    this.dispatch();
  }

  private fail(err: FoleBackupError): void {
    this.broken ??= err;
    for (const job of [...this.running.values(), ...this.queue.splice(0)]) job.reject(this.broken);
    this.running.clear();
  }
}
