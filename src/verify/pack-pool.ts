/**
 * The main-thread side of the verify workers (pack-worker.ts), on the shared
 * WorkerPool (src/concurrency/worker-pool.ts): one worker per core, at most
 * CAPACITY jobs sent to each (the one it runs and the next, so a worker never
 * waits for a message between jobs and the main thread never piles up packs
 * in a worker's queue). A worker that dies fails its jobs with INTERNAL, and
 * every later job too.
 */
import { availableParallelism } from 'node:os';
import { transferable } from '../concurrency/transferable.js';
import { WorkerPool } from '../concurrency/worker-pool.js';
import type { BlobCipher } from '../repository/blob-cipher.js';
import type { DatabaseCheck } from './assembly.js';
import type { BlobToOpen, FromWorker, PackAnswer, PackWorkerData, ToWorker } from './pack-worker.js';

const CAPACITY = 2;

/** Workers used by default: one per core, at most 4. */
function defaultWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

export class PackPool {
  private readonly pool: WorkerPool<ToWorker, FromWorker>;

  /** `cipher`: the repository's (Repository.blobCipher), handed to each worker. */
  constructor(cipher: BlobCipher, threads = defaultWorkers()) {
    const workerData: PackWorkerData = { cipher: cipher.toWorker() };
    this.pool = new WorkerPool({
      callerUrl: import.meta.url,
      name: 'pack-worker',
      label: 'verify',
      threads,
      capacity: CAPACITY,
      workerData,
    });
  }

  /**
   * Open `blobs` in a pack's bytes (and hash all of them when `hash`),
   * writing those with `writes` into `files`. `data` goes to the worker
   * (see transferable); the caller must not use it afterwards.
   */
  async checkPack(
    pack: string,
    data: Buffer,
    hash: boolean,
    files: string[],
    blobs: BlobToOpen[],
  ): Promise<PackAnswer> {
    const { view, transfer } = transferable(data);
    const m = await this.pool.run({ t: 'pack', pack, data: view, hash, files, blobs }, { transfer });
    return m as PackAnswer;
  }

  /** Read a database's scratch file back and, when it is what was `expect`ed, integrity-check it. */
  async checkDatabase(file: string, expect: { size: number; sha256: string }): Promise<DatabaseCheck> {
    const m = await this.pool.run({ t: 'database', file, ...expect });
    return (m as Extract<FromWorker, { t: 'database' }>).check;
  }

  /** Stop every worker; jobs not answered yet are rejected (ABORTED). Idempotent. */
  close(): Promise<void> {
    return this.pool.terminate();
  }
}
