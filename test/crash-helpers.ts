/**
 * Killing a real CLI process with SIGKILL at instants spread over its run, for
 * the crash tests of backup, prune and restore. The kill points come from one
 * undisturbed run of the same command: they fall after the CLI has started up
 * (a `--version` run measures that) and spread evenly over the rest, so every
 * kill lands in the real work rather than in module loading.
 */
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { sleep } from '../src/concurrency/sleep.js';
import { Repository } from '../src/repository/repository.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';
import { type CliExit, runCli, spawnCli, waitExit } from './cli-helpers.js';

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

/** A repository command SIGKILLed on copies of one repository (repositoryKillTrials). */
export interface KillTrials {
  /** The repository every trial starts from (copied, never changed). */
  template: string;
  /** Where the copies go. */
  work: string;
  /** The command, without --repo. */
  args: string[];
  env: Record<string, string>;
  kills: number;
  /** After the undisturbed run, on its copy. */
  afterRun(repoDir: string): Promise<void>;
  /** After each kill, once the dead process's lock is stale: what must hold, and the run that finishes the job. */
  afterKill(repoDir: string): Promise<void>;
}

/** The lease of a killed command's lock in the trials: stale once it ran out and the pid is gone. */
const TRIAL_LEASE_MS = 1000;

/**
 * Run the command once undisturbed (timing it), then `kills` times on a fresh copy of the template, SIGKILLed at
 * points spread over its work. Returns how many of the kills ended a process still at work.
 */
export async function repositoryKillTrials(t: KillTrials): Promise<number> {
  const probe = join(t.work, 'probe');
  cpSync(t.template, probe, { recursive: true });
  const { result: ok, points } = await timeUndisturbedRun(() => runCli([...t.args, '--repo', probe], t.env));
  expect(ok.code, ok.stderr).toBe(0);
  await t.afterRun(probe);
  let interrupted = 0;
  for (let i = 0; i < t.kills; i++) {
    const repoDir = join(t.work, `kill-${i}`);
    cpSync(t.template, repoDir, { recursive: true });
    const child = spawnCli([...t.args, '--repo', repoDir], {
      ...t.env,
      FOLE_BACKUP_LOCK_LEASE_MS: String(TRIAL_LEASE_MS),
    });
    if ((await killAfter(child, points.at(i, t.kills))).signal === 'SIGKILL') interrupted++;
    // the dead one's lock is stale once its lease ran out (same host, boot and PID namespace, dead pid)
    await sleep(TRIAL_LEASE_MS + 200);
    await t.afterKill(repoDir);
    rmSync(repoDir, { recursive: true, force: true });
  }
  return interrupted;
}

/**
 * The start of a trial world under `work`: a STORAGE_ROOT (`root`) with a core.db and an empty files folder, and
 * a new repository at `template` with small packs (many of them from little data), open for the backups to make.
 */
export async function trialWorld(
  work: string,
): Promise<{ root: string; files: string; template: string; repo: Repository }> {
  const root = join(work, 'storage');
  const template = join(work, 'repo-template');
  createDatabase(join(root, 'core', 'core.db'), 10);
  const files = join(root, 'projects', 'p1', 'files');
  mkdirSync(files, { recursive: true });
  const repo = await Repository.init(new LocalBackend(template), TEST_PASSWORD, {
    kdf: FAST_KDF,
    packSize: 128 * 1024,
  });
  return { root, files, template, repo };
}
