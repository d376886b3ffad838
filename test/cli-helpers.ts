/**
 * Running the real CLI as a child process (from source, through tsx), for
 * end-to-end and crash tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src', import.meta.url));
const DIST = fileURLToPath(new URL('../dist', import.meta.url));

/** Modification times of the files under `dir` whose names end with `ext` (none if it does not exist). */
function mtimes(dir: string, ext: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return entries.filter((f) => f.endsWith(ext) && !f.endsWith('.test.ts')).map((f) => statSync(join(dir, f)).mtimeMs);
}

/**
 * The CLI the tests run: the compiled one when it was built after the last change to the source (`npm test`
 * builds it first; it starts in a third of the time tsx needs), else the source through tsx, so a test run
 * right after an edit never runs stale code.
 */
function chooseCli(): { path: string; viaTsx: boolean } {
  const built = mtimes(DIST, '.js');
  const fresh = built.length > 0 && Math.max(...mtimes(SRC, '.ts')) <= Math.min(...built);
  return fresh
    ? { path: join(DIST, 'cli', 'main.js'), viaTsx: false }
    : { path: join(SRC, 'cli', 'main.ts'), viaTsx: true };
}

const chosen = chooseCli();
export const CLI = chosen.path;

export interface CliResult extends CliExit {
  stdout: string;
  /** stdout as the bytes written (what `dump` writes is not text). */
  stdoutBytes: Buffer;
  stderr: string;
}

/**
 * How to run the CLI besides its arguments: as another user, or under a wrapper command (e.g. `unshare -m …`) that ends
 * by running its arguments.
 */
export interface CliRunOptions {
  uid?: number;
  gid?: number;
  wrapper?: string[];
}

export function spawnCli(args: string[], env: Record<string, string> = {}, opts: CliRunOptions = {}): ChildProcess {
  const command = [process.execPath, ...(chosen.viaTsx ? ['--import', 'tsx'] : []), CLI, ...args];
  const [file, ...rest] = opts.wrapper === undefined ? command : [...opts.wrapper, ...command];
  return spawn(file as string, rest, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.uid === undefined ? {} : { uid: opts.uid }),
    ...(opts.gid === undefined ? {} : { gid: opts.gid }),
  });
}

/** How a child process ended: its exit code, or the signal that killed it. */
export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves when `child` has exited and its output pipes are closed. Call it before anything can end the child. */
export function waitExit(child: ChildProcess): Promise<CliExit> {
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
}

export function runCli(args: string[], env: Record<string, string> = {}, opts: CliRunOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, env, opts);
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return waitExit(child).then((exit) => {
    const stdoutBytes = Buffer.concat(out);
    return { ...exit, stdout: stdoutBytes.toString(), stdoutBytes, stderr };
  });
}
