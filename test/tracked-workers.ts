/**
 * Every worker thread the code under test starts, seen through the real
 * Worker class: a test then knows which threads were started and whether each
 * has exited, without asking the code that started them.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { Worker } from 'node:worker_threads';

export interface TrackedWorker {
  worker: Worker;
  exited: boolean;
}

const workerThreads = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
const RealWorker = workerThreads.Worker;

/**
 * Record every Worker constructed until stop() (call it in afterAll): `started`
 * lists them in the order they were made.
 */
export function trackWorkers(): { started: TrackedWorker[]; stop: () => void } {
  const started: TrackedWorker[] = [];
  class Tracked extends RealWorker {
    constructor(...args: ConstructorParameters<typeof RealWorker>) {
      super(...args);
      const t: TrackedWorker = { worker: this, exited: false };
      started.push(t);
      this.once('exit', () => {
        t.exited = true;
      });
    }
  }
  workerThreads.Worker = Tracked;
  syncBuiltinESMExports();
  return {
    started,
    stop: () => {
      workerThreads.Worker = RealWorker;
      syncBuiltinESMExports();
    },
  };
}
