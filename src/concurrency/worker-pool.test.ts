/**
 * WorkerPool with real worker threads (test/fixtures/pool-worker.ts): answers,
 * back-pressure, a worker that dies, stopping mid-feed, and no thread left
 * running. The fixture holds its jobs until the test opens a gate, so what is
 * in flight is counted, never timed.
 */
import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { FromPoolWorker, PoolWorkerData, ToPoolWorker } from '../../test/fixtures/pool-worker.js';
import { type TrackedWorker, trackWorkers } from '../../test/tracked-workers.js';
import { FoleBackupError, StopError } from '../errors.js';
import { type JobOptions, WorkerPool } from './worker-pool.js';

const tracking = trackWorkers();
afterAll(() => tracking.stop());

type Done = Extract<FromPoolWorker, { t: 'done' }>;
type Options = JobOptions<ToPoolWorker, FromPoolWorker>;

interface TestPool {
  pool: WorkerPool<ToPoolWorker, FromPoolWorker>;
  /** Jobs the workers said they started, in order, by the number the test gave them. */
  started: number[];
  /** Resolves once `n` jobs have started. */
  startedCount: (n: number) => Promise<void>;
  /**
   * Let every worker answer what it holds and what it gets from now on. Only a
   * worker that has started a job is sure to hear it (its module is loaded).
   */
  open: () => void;
  workers: TrackedWorker[];
  square: (n: number, options?: Options) => Promise<Done>;
}

const channels: BroadcastChannel[] = [];
const pools: WorkerPool<ToPoolWorker, FromPoolWorker>[] = [];
afterEach(async () => {
  for (const c of channels.splice(0)) c.close();
  await Promise.all(pools.splice(0).map((p) => p.terminate()));
});

function testPool(threads: number, capacity: number, open = false): TestPool {
  const gate = `pool-test-${randomUUID()}`;
  const channel = new BroadcastChannel(gate);
  channels.push(channel);
  const from = tracking.started.length;
  const workerData: PoolWorkerData = { gate, open };
  const pool = new WorkerPool<ToPoolWorker, FromPoolWorker>({
    callerUrl: new URL('../../test/fixtures/pool-worker.ts', import.meta.url).href,
    name: 'pool-worker',
    label: 'test',
    threads,
    capacity,
    workerData,
    isFinal: (m) => m.t !== 'started' && m.t !== 'question',
  });
  pools.push(pool);
  const started: number[] = [];
  let wanted: { n: number; go: () => void } | undefined;
  const square = (n: number, options: Options = {}): Promise<Done> =>
    pool
      .run(
        { t: 'square', n },
        {
          ...options,
          onMessage: (m) => {
            if (m.t !== 'started') return;
            started.push(n);
            if (wanted !== undefined && started.length >= wanted.n) wanted.go();
          },
        },
      )
      .then((m) => m as Done);
  return {
    pool,
    started,
    startedCount: (n) => (started.length >= n ? Promise.resolve() : new Promise<void>((go) => (wanted = { n, go }))),
    open: () => channel.postMessage('open'),
    workers: tracking.started.slice(from, from + threads),
    square,
  };
}

/** The rejection of `p` (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => expect.unreachable('expected a rejection'),
    (err: unknown) => err,
  );
}

function running(workers: TrackedWorker[]): TrackedWorker[] {
  return workers.filter((w) => !w.exited);
}

describe('WorkerPool', () => {
  it('answers every job, spread over every worker', async () => {
    const t = testPool(2, 2, true);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => t.square(i)));
    expect(answers.map((a) => a.value)).toEqual(Array.from({ length: 50 }, (_, i) => i * i));
    expect(new Set(answers.map((a) => a.thread)).size).toBe(2);
    expect(t.workers).toHaveLength(2);
    await t.pool.close();
    expect(running(t.workers)).toEqual([]);
  });

  it('sends a worker no more jobs than its capacity; the rest wait for answers', async () => {
    const t = testPool(2, 2);
    const answers = Array.from({ length: 10 }, (_, i) => t.square(i));
    expect(t.pool.inFlight).toBe(4);
    expect(t.pool.queued).toBe(6);
    await t.startedCount(4);
    expect(t.pool.inFlight).toBe(4);
    t.open();
    const done = await Promise.all(answers);
    expect(done.map((a) => a.value)).toEqual(Array.from({ length: 10 }, (_, i) => i * i));
    // the workers' own count of jobs held at once: the bound, reached and never passed
    expect(Math.max(...done.map((a) => a.maxHeld))).toBe(2);
    expect(t.started).toHaveLength(10);
    expect(t.pool.inFlight + t.pool.queued).toBe(0);
  });

  it('runs a job as heavy as the capacity alone, and lets nothing overtake it', async () => {
    const t = testPool(1, 2);
    const light = t.square(1);
    const heavy = t.square(2, { weight: 2 });
    const after = t.square(3);
    expect([t.pool.inFlight, t.pool.queued]).toEqual([1, 2]);
    await t.startedCount(1);
    t.open();
    await Promise.all([light, heavy, after]);
    expect(t.started).toEqual([1, 2, 3]);
  });

  it('sends a `first` job ahead of those waiting', async () => {
    const t = testPool(1, 1);
    const jobs = [t.square(1), t.square(2), t.square(3), t.square(4, { first: true })];
    await t.startedCount(1);
    t.open();
    await Promise.all(jobs);
    expect(t.started).toEqual([1, 4, 2, 3]);
  });

  it('lets a job and its worker talk until the final answer', async () => {
    const t = testPool(1, 1, true);
    const questions: number[] = [];
    const answer = await t.pool.run(
      { t: 'ask', n: 41 },
      {
        onMessage: (m, reply) => {
          if (m.t !== 'question') return;
          questions.push(m.n);
          reply({ t: 'answer', value: m.n + 1 });
        },
      },
    );
    expect(questions).toEqual([41]);
    expect(answer).toMatchObject({ t: 'done', value: 42 });
  });

  it('rejects a job with the error its worker answered, as its class and code, and goes on', async () => {
    const t = testPool(1, 2, true);
    const err = await rejection(t.pool.run({ t: 'fail', message: 'blob 3f2a: authentication failed' }));
    expect(err).toBeInstanceOf(StopError);
    expect(err).toMatchObject({ code: 'CHECKSUM_MISMATCH', message: 'blob 3f2a: authentication failed' });
    expect((await t.square(7)).value).toBe(49);
    expect(t.pool.broken).toBeUndefined();
  });

  it('fails the pool when a worker exits on its own; the other worker still answers', async () => {
    const t = testPool(2, 2);
    // least load first: `exit` and 3 go to one worker, 2 and 4 to the other; 5 and 6 wait
    const dies = t.pool.run({ t: 'exit', code: 3 });
    const jobs = [2, 3, 4, 5, 6].map((n) => t.square(n));
    const settled = Promise.allSettled(jobs);
    expect(await rejection(dies)).toMatchObject({ code: 'INTERNAL', message: 'test worker exited with code 3' });
    // the other worker holds 2 and 4 (and listens to the gate: a channel hears only what is sent once it exists)
    await t.startedCount(2);
    t.open();
    const [two, three, four, five, six] = await settled;
    expect(two).toMatchObject({ status: 'fulfilled', value: { value: 4 } });
    expect(four).toMatchObject({ status: 'fulfilled', value: { value: 16 } });
    for (const r of [three, five, six]) expect(r).toMatchObject({ status: 'rejected', reason: t.pool.broken });
    expect(t.pool.broken).toBeInstanceOf(FoleBackupError);
    expect(await rejection(t.square(8))).toBe(t.pool.broken);
    await t.pool.close();
    expect(running(t.workers)).toEqual([]);
  });

  it('fails the pool when a worker throws and nothing catches it', async () => {
    const t = testPool(1, 2);
    const held = t.square(1);
    await t.startedCount(1);
    const err = await rejection(t.pool.run({ t: 'throw', message: 'out of cheese' }));
    expect(err).toMatchObject({ code: 'INTERNAL', message: 'test worker failed: out of cheese' });
    expect(await rejection(held)).toBe(err);
    await t.pool.terminate();
    expect(running(t.workers)).toEqual([]);
  });

  it('stops mid-feed on close: nothing more is sent, jobs under way are answered, every thread exits', async () => {
    const t = testPool(2, 2);
    const abort = new AbortController();
    abort.signal.addEventListener('abort', () => void t.pool.close());
    const jobs = Array.from({ length: 20 }, (_, i) => t.square(i));
    const settled = Promise.allSettled(jobs);
    await t.startedCount(4);
    abort.abort();
    t.open();
    const results = await settled;
    await t.pool.close();
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
    for (const r of results.slice(4))
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'ABORTED', message: /job not run/ } });
    expect([...t.started].sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    expect(await rejection(t.square(99))).toMatchObject({ code: 'ABORTED' });
    expect(t.pool.broken).toBeUndefined();
    expect(running(t.workers)).toEqual([]);
  });

  it('terminate rejects every job not answered and leaves no thread running', async () => {
    const t = testPool(2, 1);
    const jobs = Array.from({ length: 5 }, (_, i) => t.square(i));
    const settled = Promise.allSettled(jobs);
    await t.startedCount(2);
    await t.pool.terminate();
    const results = await settled;
    for (const r of results) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'ABORTED' } });
    expect(t.pool.broken).toBeUndefined();
    expect(running(t.workers)).toEqual([]);
  });
});
