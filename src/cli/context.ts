/**
 * What every command needs from the global flags: the repository location, the
 * password (FOLE_BACKUP_PASSWORD, --password-file / FOLE_BACKUP_PASSWORD_FILE,
 * or a prompt on a TTY), output mode and a progress reporter.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { abortError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { openRepository } from '../repository/open-repository.js';
import { makeOutput, UsageError, type Output } from './output.js';
import { readPasswordFile } from './password-file.js';
import { makeProgressReporter } from './progress-bar.js';
import type { ProgressReporter } from '../progress/reporter.js';

export interface GlobalFlags {
  repo?: string;
  passwordFile?: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  keyHint?: string;
}

export interface Context {
  flags: GlobalFlags;
  out: Output;
  reporter: ProgressReporter & { stop(): void };
  repoLocation(): string;
  password(opts?: { confirm?: boolean }): Promise<string>;
  openRepo(): Promise<Repository>;
  /**
   * For a command that can stop cleanly: a signal that Ctrl-C (SIGINT) or
   * SIGTERM sets, so the command undoes its work in progress and ends with
   * ABORTED; the same signal again quits at once. A command that never asks
   * keeps Node's default: a signal ends it at once.
   */
  interruptible(): AbortSignal;
  /**
   * From now on the command completes rather than stops (`what` is under way):
   * a signal says so instead of promising to undo anything; a second still quits at once.
   */
  finishing(what: string): void;
  /** The signal that stopped the command, if one did. */
  readonly interruptedBy: NodeJS.Signals | undefined;
  /** Stop listening for signals (the runner calls it when the command ends). */
  release(): void;
}

const SIGNAL_NUMBER: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/** The exit status of a command stopped by `sig`: the shell's convention, 128 + its number (130 for SIGINT). */
export const signalExitCode = (sig: NodeJS.Signals): number => 128 + (SIGNAL_NUMBER[sig] ?? 0);

/** Ask on the terminal without echo. */
async function prompt(question: string): Promise<string> {
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

export function makeContext(flags: GlobalFlags): Context {
  const out = makeOutput(flags.json === true, flags.quiet === true);
  const reporter = makeProgressReporter({ enabled: flags.progress !== false, quiet: flags.quiet === true });
  let cached: string | undefined;
  let stop: AbortController | undefined;
  let caught: NodeJS.Signals | undefined;
  let finishing: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    // the second one: the user wants out now (a restore left half-done is settled by `recover` or the next restore)
    if (caught !== undefined) process.exit(signalExitCode(sig));
    caught = sig;
    reporter.stop();
    process.stderr.write(
      finishing === undefined
        ? `\nfole-backup: ${sig}: stopping cleanly, undoing the work in progress (send it again to quit at once)\n`
        : `\nfole-backup: ${sig}: ${finishing} is under way and completes first (send it again to quit at once)\n`,
    );
    stop?.abort(abortError());
  };
  const ctx: Context = {
    flags,
    out,
    reporter,
    repoLocation() {
      const loc = flags.repo ?? process.env.FOLE_BACKUP_REPO;
      if (loc === undefined || loc === '') {
        throw new UsageError('no repository given', 'pass --repo <dir> or set FOLE_BACKUP_REPO');
      }
      return loc;
    },
    async password(opts = {}) {
      if (cached !== undefined) return cached;
      const file = flags.passwordFile ?? process.env.FOLE_BACKUP_PASSWORD_FILE;
      if (file !== undefined && file !== '') {
        cached = await readPasswordFile(file);
        return cached;
      }
      const env = process.env.FOLE_BACKUP_PASSWORD;
      if (env !== undefined && env !== '') {
        cached = env;
        return cached;
      }
      if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
        throw new UsageError(
          'no password given',
          'set FOLE_BACKUP_PASSWORD, pass --password-file <file> (or FOLE_BACKUP_PASSWORD_FILE), or run on a ' +
            'terminal to be asked',
        );
      }
      const first = await prompt('repository password: ');
      if (opts.confirm) {
        const again = await prompt('enter it again: ');
        if (again !== first) throw new UsageError('the two passwords differ');
      }
      if (first === '') throw new UsageError('empty password');
      cached = first;
      return cached;
    },
    async openRepo() {
      const loc = ctx.repoLocation();
      const keyHint = flags.keyHint ?? process.env.FOLE_BACKUP_KEY_HINT;
      return openRepository(loc, await ctx.password(), {
        reporter,
        ...(keyHint !== undefined && keyHint !== '' ? { keyHint } : {}),
      });
    },
    interruptible() {
      if (stop === undefined) {
        stop = new AbortController();
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      }
      return stop.signal;
    },
    finishing(what) {
      finishing = what;
    },
    get interruptedBy() {
      return caught;
    },
    release() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
  return ctx;
}

/** Runs a command body with a fresh context; errors become exit codes (src/cli/main.ts). */
export type Runner = (fn: (ctx: Context) => Promise<void>) => Promise<void>;
