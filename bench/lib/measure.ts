/**
 * Running and measuring child processes. Every measured command runs under
 * GNU time (`/usr/bin/time -f '%e %U %S %M'`), which reports the user and
 * system CPU time and the peak RSS of the child and every descendant it
 * waited for (wait4 rusage), so a shell script that runs sqlite3 many times is
 * measured as a whole. Wall time is taken here with a monotonic clock.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const GNU_TIME = '/usr/bin/time';

export interface Timed {
  /** Wall-clock seconds (monotonic clock, around the whole child). */
  wallS: number;
  userS: number;
  sysS: number;
  /** Peak resident set size of the process tree, KiB (GNU time %M). */
  maxRssKiB: number;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Each stderr line with when it arrived, seconds after the start (pipes are written synchronously by Node). */
  stderrLines: { atS: number; line: string }[];
}

/** Run a command to completion; throw with its stderr if it fails. For set-up steps, not measurements. */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; allowFail?: boolean } = {},
): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0 && opts.allowFail !== true) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-2000)}`,
    );
  }
  return r;
}

/** Make sure GNU time is there (apt-get install time, as root, if it is not). */
export function ensureGnuTime(log: (m: string) => void): void {
  if (existsSync(GNU_TIME)) return;
  log('installing GNU time (apt-get install time)');
  aptInstall(['time'], log);
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} is still missing after apt-get install time`);
}

/** apt-get install, running apt-get update first if the install fails. Needs root. */
export function aptInstall(packages: string[], log: (m: string) => void): void {
  if (process.getuid?.() !== 0)
    throw new Error(`${packages.join(', ')} missing and not root: install them with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const first = run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env, allowFail: true });
  if (first.status === 0) return;
  log('apt-get install failed; running apt-get update and trying again');
  run('apt-get', ['update'], { env });
  run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { env });
}

/**
 * Run `cmd args` under GNU time and measure it. Never throws for a non-zero
 * exit: the caller decides (Borg exits 1 for warnings).
 */
export async function timed(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeFile: string },
): Promise<Timed> {
  rmSync(opts.timeFile, { force: true });
  const child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', opts.timeFile, cmd, ...args], {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stderrLines: { atS: number; line: string }[] = [];
  let partial = '';
  const t0 = performance.now();
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => {
    err.push(b);
    const atS = (performance.now() - t0) / 1000;
    const lines = (partial + b.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) stderrLines.push({ atS, line });
  });
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const wallS = (performance.now() - t0) / 1000;
  const stderr = Buffer.concat(err).toString('utf8');
  let userS = NaN;
  let sysS = NaN;
  let maxRssKiB = NaN;
  if (existsSync(opts.timeFile)) {
    // the last line holds the figures; "Command exited with non-zero status N" may come first
    const lines = readFileSync(opts.timeFile, 'utf8').trim().split('\n');
    const f = (lines[lines.length - 1] ?? '').trim().split(/\s+/).map(Number);
    userS = f[1] ?? NaN;
    sysS = f[2] ?? NaN;
    maxRssKiB = f[3] ?? NaN;
  }
  if (partial !== '') stderrLines.push({ atS: wallS, line: partial });
  return { wallS, userS, sysS, maxRssKiB, exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr, stderrLines };
}

/** Apparent size in bytes of everything under `paths` (du -sb), 0 for absent paths. */
export function duBytes(...paths: string[]): number {
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) return 0;
  const r = run('du', ['-sbc', ...present]);
  const total = r.stdout.trim().split('\n').pop() ?? '0';
  return Number(total.split(/\s+/)[0]);
}

/** Write a log of a measured command for later reading. */
export function saveLog(path: string, cmd: string, t: Timed): void {
  const err = t.stderrLines.map((l) => `[${l.atS.toFixed(2).padStart(7)} s] ${l.line}`).join('\n');
  writeFileSync(
    path,
    `$ ${cmd}\n# exit ${t.exitCode}, ${t.wallS.toFixed(3)} s wall, ${t.userS} s user, ${t.sysS}` +
      ` s sys, ${t.maxRssKiB} KiB peak RSS\n--- stdout\n${t.stdout.slice(-200_000)}\n--- stderr (arrival time)\n` +
      `${err.slice(-200_000)}\n`,
  );
}
