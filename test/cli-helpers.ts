/**
 * Running the real CLI as a child process (from source, through tsx), for
 * end-to-end and crash tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

export interface CliResult extends CliExit {
  stdout: string;
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
  const command = [process.execPath, '--import', 'tsx', CLI, ...args];
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
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return waitExit(child).then((exit) => ({ ...exit, stdout, stderr }));
}
