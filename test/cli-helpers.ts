/**
 * Running the real CLI as a child process (from source, through tsx), for
 * end-to-end and crash tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Who the CLI runs as (needs root): spawn drops every supplementary group when it sets them. */
export interface RunAs {
  uid: number;
  gid: number;
}

export function spawnCli(args: string[], env: Record<string, string> = {}, as?: RunAs): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(as === undefined ? {} : { uid: as.uid, gid: as.gid }),
  });
}

export function runCli(args: string[], env: Record<string, string> = {}, as?: RunAs): Promise<CliResult> {
  const child = spawnCli(args, env, as);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}
