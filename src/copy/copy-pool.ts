/**
 * The main-thread side of the copy workers (copy-worker.ts), on the shared WorkerPool: one worker per core, at most
 * CAPACITY spans sent to each (the one it works on and the next). A worker that dies fails its jobs with INTERNAL.
 */
import { availableParallelism } from 'node:os';
import { transferable } from '../concurrency/transferable.js';
import { WorkerPool } from '../concurrency/worker-pool.js';
import type { BlobCipher } from '../repository/blob-cipher.js';
import type { PackedBlob } from '../repository/pack.js';
import type { CopyWorkerData, FromWorker, ResealedBlob, ToWorker } from './copy-worker.js';

const CAPACITY = 2;
/**
 * A worker's young generation, in MB, as the backup's and restore's workers have it: each blob's plaintext dies
 * young and is freed by a cheap scavenge (measured: ~1 CPU s less per GB copied than V8's default).
 */
const WORKER_YOUNG_GENERATION_MB = 8;

type Sealed = Extract<FromWorker, { t: 'sealed' }>;

export class CopyPool {
  private readonly pool: WorkerPool<ToWorker, FromWorker>;

  constructor(source: BlobCipher, target: BlobCipher, threads = Math.max(1, Math.min(4, availableParallelism()))) {
    const workerData: CopyWorkerData = { source: source.toWorker(), target: target.toWorker() };
    this.pool = new WorkerPool({
      callerUrl: import.meta.url,
      name: 'copy-worker',
      label: 'copy',
      threads,
      capacity: CAPACITY,
      workerData,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
  }

  /**
   * Open `blobs` (offsets within `data`) with the source's key and seal them for the target. `data` goes to the
   * worker (see transferable); the caller must not use it afterwards.
   */
  async reseal(pack: string, data: Buffer, blobs: PackedBlob[]): Promise<{ data: Buffer; blobs: ResealedBlob[] }> {
    const { view, transfer } = transferable(data);
    const m = (await this.pool.run({ t: 'span', pack, data: view, blobs }, { transfer })) as Sealed;
    return { data: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength), blobs: m.blobs };
  }

  /** Stop every worker; jobs not answered yet are rejected (ABORTED). Idempotent. */
  close(): Promise<void> {
    return this.pool.terminate();
  }
}
