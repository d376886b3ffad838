/**
 * Other work on the machine skews a benchmark, and the build machines are
 * shared (test suites of other sessions run beside us). So: before a step,
 * wait (bounded) for a quiet half second; around a step, count the CPU time the
 * whole machine spent (/proc/stat) and subtract the step's own CPU time, and
 * report that "foreign CPU" with the figures, so a noisy measurement is
 * visible as such instead of passing for a fact.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { run } from './measure.js';
import { sleep } from '../../src/concurrency/sleep.js';

let clkTck: number | undefined;

function ticksPerSecond(): number {
  clkTck ??= Number(run('getconf', ['CLK_TCK']).stdout.trim()) || 100;
  return clkTck;
}

/** Busy CPU seconds of the whole machine since boot (user, nice, system, irq, softirq, steal). */
export function machineBusyS(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / ticksPerSecond();
}

/**
 * Wait until half a second passes with the machine less than `maxShare` busy
 * (of all its CPUs), for at most `maxWaitS`. Returns how long it waited and
 * the busy share of the last second.
 */
export async function waitQuiet(maxWaitS: number, maxShare = 0.15): Promise<{ waitedS: number; busyShare: number }> {
  const t0 = performance.now();
  const n = cpus().length;
  for (;;) {
    const b0 = machineBusyS();
    await sleep(500);
    const share = (machineBusyS() - b0) / 0.5 / n;
    const waitedS = (performance.now() - t0) / 1000;
    if (share < maxShare || waitedS >= maxWaitS) return { waitedS, busyShare: share };
  }
}
