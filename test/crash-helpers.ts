/**
 * Killing a real CLI process with SIGKILL at instants spread over its run, for
 * the crash tests of backup, prune and restore. The kill points come from one
 * undisturbed run of the same command: they fall after the CLI has started up
 * (a `--version` run measures that) and spread evenly over the rest, so every
 * kill lands in the real work rather than in module loading.
 */
import type { ChildProcess } from 'node:child_process';
import { sleep } from '../src/concurrency/sleep.js';
import { type CliExit, runCli, waitExit } from './cli-helpers.js';

/** Where to kill: milliseconds after spawning. */
export interface KillPoints {
  /** The `i`-th of `count` instants spread over the work of the run (0 ≤ i < count). */
  at(i: number, count: number): number;
}

/** Runs `run` undisturbed and times it and the CLI's start-up: its result and the kill points it gives. */
export async function timeUndisturbedRun<T>(run: () => Promise<T>): Promise<{ result: T; points: KillPoints }> {
  const t0 = Date.now();
  const result = await run();
  const span = Date.now() - t0;
  const b0 = Date.now();
  await runCli(['--version']);
  const boot = Date.now() - b0;
  const work = Math.max(1, span - boot);
  return { result, points: { at: (i, count) => Math.floor(boot + ((i + 0.5) / count) * work) } };
}

/** Kills `child` with SIGKILL `ms` milliseconds from now; how it ended (it may have exited before). */
export async function killAfter(child: ChildProcess, ms: number): Promise<CliExit> {
  const exited = waitExit(child);
  await sleep(ms);
  child.kill('SIGKILL');
  return exited;
}
