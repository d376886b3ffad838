/**
 * Running the real CLI as a child process (from source, through tsx), for
 * end-to-end and crash tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** How to run the CLI besides its arguments: as another user, or under a wrapper command (e.g. `unshare -m …`) that ends by running its arguments. */
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

export function runCli(args: string[], env: Record<string, string> = {}, opts: CliRunOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, env, opts);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}
