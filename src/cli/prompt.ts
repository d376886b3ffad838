/** Asking for secrets on the terminal: never echoed, never taken from argv. */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { UsageError } from './output.js';

/** Ask on the terminal without echo. */
export async function prompt(question: string): Promise<string> {
  const muted = new Writable({ write: (_c, _e, cb) => cb() });
  process.stderr.write(question);
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/**
 * A new secret: from the environment variable `env` if set, else asked twice on a terminal. USAGE when neither
 * is possible, when the two answers differ, or for an empty one.
 */
export async function askNew(env: string, what: string): Promise<string> {
  const given = process.env[env];
  if (given !== undefined && given !== '') return given;
  if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
    throw new UsageError(`no ${what} given`, `set ${env}, or run on a terminal to be asked`);
  }
  const first = await prompt(`${what}: `);
  if (first === '') throw new UsageError(`empty ${what}`);
  if ((await prompt('enter it again: ')) !== first) throw new UsageError(`the two ${what}s differ`);
  return first;
}
