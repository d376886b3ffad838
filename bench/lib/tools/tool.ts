/**
 * One interface for every tool the benchmark runs (fole-backup, restic, Borg):
 * set up a repository, then back up, restore and verify with the tool's real
 * command-line program, each step measured as child processes under GNU time.
 */
import { join } from 'node:path';
import { saveLog, timed, type Timed } from '../measure.js';

/** The anchors beside fole-backup. */
export type AnchorName = 'restic' | 'restic-plain' | 'borg';
/** `fole` is the build under test; `fole@REF` another commit built by --baseline (bench/lib/baseline.ts). */
export type FoleName = 'fole' | `fole@${string}`;
export type ToolName = FoleName | AnchorName;

export function isAnchor(name: ToolName): name is AnchorName {
  return name === 'restic' || name === 'restic-plain' || name === 'borg';
}

/** A tool's name as a file or directory name: a ref such as `main~5` or `v1/x` may hold any character. */
export function fileSafe(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

export type BackupKind = 'full' | 'incremental';

/** A repository behind a server (`npm run bench -- --offsite`, bench/lib/offsite/targets.ts), as one tool names it. */
export interface RemoteRepo {
  /** What the tool is given as its repository: fole's `--repo`, restic's RESTIC_REPOSITORY. */
  location: string;
  /** Arguments every command of the tool needs for it (CA file, SSH key and known_hosts, restic's `-o`). */
  args: readonly string[];
  /** Environment every command needs for it (S3 credentials). */
  env: Readonly<Record<string, string>>;
  /** The repository's directory on this machine where the server keeps one (SFTP), for du; else null. */
  dir: string | null;
}

/** One measured child process of a step (an anchor's backup is "capture databases" + "backup"). */
export interface StepPart {
  label: string;
  t: Timed;
}

export interface StepOutcome {
  status: 'ok' | 'failed' | 'unavailable';
  parts: StepPart[];
  /** Why it failed or is unavailable. */
  error?: string;
  /** What the tool itself reported (files, bytes added, …). */
  info: Record<string, number | string | null>;
}

export interface BenchTool {
  readonly name: ToolName;
  /** Version string of the program measured. */
  readonly version: string;
  /** The repository's local directory (its growth is measured with du); null behind a server that hides it (S3). */
  readonly repo: string | null;
  /** Everything a step reads besides the source tree: repository, local caches, staging. */
  readonly stateDirs: readonly string[];
  /** Runs and logs the tool's commands (its `tag` names the logs). */
  readonly runner: StepRunner;
  init(): Promise<void>;
  backup(root: string, kind: BackupKind): Promise<StepOutcome>;
  restore(target: string): Promise<StepOutcome>;
  verify(): Promise<StepOutcome>;
}

/** Runs a tool's measured commands, keeping a log of each in the work directory. */
export class StepRunner {
  private seq = 0;

  constructor(
    private readonly logDir: string,
    /** A tool's name, or what else the harness runs (an offsite raw upload). */
    private readonly tool: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  /** Prefix for log names: set by the harness to "run1-full" etc. */
  tag = 'setup';

  async measure(
    label: string,
    cmd: string,
    args: string[],
    opts: { cwd?: string; okCodes?: number[] } = {},
  ): Promise<StepPart & { ok: boolean }> {
    const base = join(
      this.logDir,
      `${this.tag}-${fileSafe(this.tool)}-${++this.seq}-${label.replace(/[^a-z0-9]+/gi, '_')}`,
    );
    const t = await timed(cmd, args, { env: this.env, cwd: opts.cwd, timeFile: `${base}.time` });
    saveLog(`${base}.log`, [cmd, ...args].join(' '), t);
    return { label, t, ok: (opts.okCodes ?? [0]).includes(t.exitCode) };
  }
}

/** A failed outcome naming the command's exit code and the end of its stderr. */
export function failed(parts: StepPart[], what: string, t: Timed): StepOutcome {
  const tail = (t.stderr.trim() || t.stdout.trim()).split('\n').slice(-6).join(' | ');
  return { status: 'failed', parts, error: `${what} exited ${t.exitCode}: ${tail.slice(0, 600)}`, info: {} };
}

/** The last line of `text` that parses as a JSON object with `message_type === type` (restic --json). */
export function lastJsonLine(
  text: string,
  pred: (o: Record<string, unknown>) => boolean,
): Record<string, unknown> | undefined {
  const lines = text.trim().split('\n').reverse();
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      if (pred(o)) return o;
    } catch {
      // progress lines may be cut; keep looking
    }
  }
  return undefined;
}

export function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
