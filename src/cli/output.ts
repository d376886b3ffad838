/**
 * Everything the CLI prints goes through here: the one place errors become exit
 * codes (0 ok · 1 error · 2 usage · 3 STOP) and JSON/human output is chosen.
 * Machine-readable output goes to stdout, human text and progress to stderr.
 */
import { FoleBackupError, StopError } from '../errors.js';

export const EXIT = { ok: 0, error: 1, usage: 2, stop: 3 } as const;

export class UsageError extends FoleBackupError {
  constructor(message: string, hint?: string) {
    super('USAGE', message, { hint });
    this.name = 'UsageError';
  }
}

/**
 * Characters a terminal acts on or that disguise text: C0 controls (but the
 * line feeds and tabs of our own formatting), DEL, C1 controls, line and
 * paragraph separators, and bidirectional overrides and isolates.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: escaping them is the point
const UNSAFE_FOR_TERMINAL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_IN_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const escapeChar = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * Text as it may reach a terminal: every character a terminal would act on is
 * shown escaped (`\u001b`), so a hostile file name, symlink target or value
 * read from a repository can never move the cursor, rewrite a line, or hide a
 * warning. Names are also quoted where they are formatted (printable()), so a
 * line feed inside one cannot start a forged line; this is the net under that.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_FOR_TERMINAL, escapeChar);
}

/**
 * A JSON document that is still valid JSON but holds no character a terminal acts on (JSON.stringify leaves C1 and bidi
 * controls raw).
 */
export function jsonSafe(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(UNSAFE_IN_JSON, escapeChar);
}

/** One value as compact JSON, with the same escapes as jsonSafe: an item of a document written piece by piece. */
function jsonCompact(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE_IN_JSON, escapeChar);
}

/** Write to stdout and wait while its reader is behind, so a long listing is never held in memory. */
export async function writeStdout(text: string | Buffer): Promise<void> {
  if (!process.stdout.write(text)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
}

/**
 * One JSON document on stdout written as it is produced: `{...head, [key]: [items…], ...tail}`, for listings too
 * long to build in memory first. Valid JSON once end() ran; a run that fails before leaves it unterminated, and the
 * exit status says so.
 */
export class JsonListWriter {
  private written = 0;
  private readonly opening: string;

  constructor(
    private readonly head: Record<string, unknown>,
    private readonly key: string,
  ) {
    const fields = jsonCompact(head).slice(1, -1);
    this.opening = `{${fields}${fields === '' ? '' : ','}${jsonCompact(key)}:[\n`;
  }

  async item(value: unknown): Promise<void> {
    await writeStdout(`${this.written++ === 0 ? this.opening : ',\n'}${jsonCompact(value)}`);
  }

  async end(tail: Record<string, unknown> = {}): Promise<void> {
    if (this.written === 0) await writeStdout(jsonCompact({ ...this.head, [this.key]: [], ...tail }));
    else {
      const fields = jsonCompact(tail).slice(1, -1);
      await writeStdout(`\n]${fields === '' ? '' : `,${fields}`}}`);
    }
    await writeStdout('\n');
  }
}

export interface Output {
  json: boolean;
  /** A human line on stderr (suppressed by --quiet). */
  info(line: string): void;
  /** The command's result: JSON document on stdout with --json, else `human` lines on stdout. */
  result(value: unknown, human: () => string): void;
  /**
   * The outcome of an action that succeeded (a backup made, a key added): like `result`, but --quiet prints
   * nothing of it, as restic's does, except its warnings (on stderr), which a human must still see.
   */
  report(value: unknown, human: () => string, warnings?: readonly string[]): void;
}

export function makeOutput(json: boolean, quiet: boolean): Output {
  return {
    json,
    info(line) {
      if (!quiet) process.stderr.write(`${terminalSafe(line)}\n`);
    },
    result(value, human) {
      if (json) process.stdout.write(`${jsonSafe(value)}\n`);
      else process.stdout.write(`${terminalSafe(human())}\n`);
    },
    report(value, human, warnings = []) {
      if (!quiet || json) this.result(value, human);
      else for (const w of warnings) process.stderr.write(`fole-backup: warning: ${terminalSafe(w)}\n`);
    },
  };
}

function exitCodeOf(err: unknown): number {
  if (err instanceof StopError) return EXIT.stop;
  if (err instanceof FoleBackupError && err.code === 'USAGE') return EXIT.usage;
  return EXIT.error;
}

/** Print an error the way the CLI promises and return the exit code. */
const IN_RESULT = new WeakSet<object>();

/**
 * Mark an error whose `stop`/`error` member a command already put in its --json result: the runner still prints
 * it on stderr and exits with its code, but adds no second JSON document to stdout.
 */
export function alreadyInResult<E extends FoleBackupError>(err: E): E {
  IN_RESULT.add(err);
  return err;
}

export function reportError(err: unknown, json: boolean): number {
  const code = exitCodeOf(err);
  const e =
    err instanceof FoleBackupError
      ? err
      : new FoleBackupError('INTERNAL', err instanceof Error ? err.message : String(err), {
          cause: err,
          hint: 'this is a bug in fole-backup; please report it with the command you ran',
        });
  if (json && !IN_RESULT.has(e)) {
    const key = e instanceof StopError ? 'stop' : 'error';
    const body = {
      code: e.code,
      message: e.message,
      hint: e.hint ?? null,
      ...(e.path ? { path: e.path } : {}),
      ...(e.details ?? {}),
    };
    process.stdout.write(`${jsonSafe({ [key]: body })}\n`);
  }
  const label = e instanceof StopError ? `STOP ${e.code}` : e.code === 'USAGE' ? 'usage error' : `error ${e.code}`;
  process.stderr.write(`fole-backup: ${label}: ${terminalSafe(e.message)}\n`);
  if (e.hint) process.stderr.write(`  hint: ${terminalSafe(e.hint)}\n`);
  if (e instanceof StopError)
    process.stderr.write(
      `  This is a STOP: ${e.changed === undefined ? 'nothing was changed' : `nothing was changed but ${e.changed}`}` +
        '. A human must decide what to do next.\n',
    );
  if (e.code === 'INTERNAL' && err instanceof Error && err.stack && process.env.FOLE_BACKUP_DEBUG)
    process.stderr.write(`${err.stack}\n`);
  return code;
}

/** "1 file", "3 files": a count with its noun, plural when it is not one (`many` for an irregular plural). */
export function counted(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}
