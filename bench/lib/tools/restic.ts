/**
 * restic as its users run it: `restic init` (repository format 2, so
 * compression "auto" = zstd, its default), RESTIC_PASSWORD, a local cache in
 * the work directory, `restic backup` (a later backup of the same paths finds
 * its parent by itself), `restic restore latest --target`, `restic check
 * --read-data`. Databases come from the capture hook's staging directory, and
 * a restore is followed by the check hook's integrity_check of each of them.
 *
 * `restic-plain` is restic on the raw tree, databases and their -wal files
 * included, without either hook: what a user who knows nothing of SQLite runs.
 * Its copy of a live database is not a consistent one; it is there as the
 * reference figure issue 18 quotes, not as a backup to compare guarantees with.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../measure.js';
import { captureDatabases, checkDatabases, EXCLUDED_DIRS, EXCLUDED_NAMES, stagingDir } from './anchor.js';
import { failed, lastJsonLine, num, StepRunner, type BenchTool, type RemoteRepo, type StepOutcome } from './tool.js';

export function resticVersion(): string {
  return run('restic', ['version']).stdout.trim();
}

export class ResticTool implements BenchTool {
  readonly name: 'restic' | 'restic-plain';
  readonly repo: string | null;
  readonly stateDirs: readonly string[];
  readonly runner: StepRunner;
  readonly version = resticVersion();
  private readonly staging: string;
  private readonly excludeFile: string;
  /** What every command needs for a remote repository (`--cacert`, `-o …`), after its own arguments. */
  private readonly remoteArgs: readonly string[];

  /**
   * `remote`: a repository behind a server instead of one in the work directory. `plain`: the raw tree, no
   * capture hook (the tool `restic-plain`).
   */
  constructor(workDir: string, logDir: string, remote?: RemoteRepo, plain = false) {
    this.name = plain ? 'restic-plain' : 'restic';
    const local = join(workDir, `${this.name}-repo`);
    this.repo = remote === undefined ? local : remote.dir;
    this.remoteArgs = remote?.args ?? [];
    const cache = join(workDir, `${this.name}-cache`);
    this.staging = plain ? '' : stagingDir(workDir, 'restic');
    this.excludeFile = join(workDir, `${this.name}-excludes.txt`);
    this.stateDirs = [...(this.repo === null ? [] : [this.repo]), cache, ...(plain ? [] : [this.staging])];
    this.runner = new StepRunner(logDir, this.name, {
      ...process.env,
      RESTIC_REPOSITORY: remote?.location ?? local,
      RESTIC_PASSWORD: 'bench-password-restic',
      RESTIC_CACHE_DIR: cache,
      ...remote?.env,
    });
  }

  /** Run restic `args` (and the remote repository's arguments), measured. */
  private restic(label: string, args: string[]) {
    return this.runner.measure(label, 'restic', [...args, ...this.remoteArgs]);
  }

  async init(): Promise<void> {
    const p = await this.restic('init', ['init']);
    if (!p.ok) throw new Error(failed([], 'restic init', p.t).error);
  }

  async backup(root: string): Promise<StepOutcome> {
    const plain = this.name === 'restic-plain';
    // anchored to the tree, so the staged copies (also *.db) are kept; plain: only the ephemeral directories
    writeFileSync(
      this.excludeFile,
      `${[...(plain ? [] : EXCLUDED_NAMES), ...EXCLUDED_DIRS].map((p) => `${root}/**/${p}`).join('\n')}\n`,
    );
    const cap = plain ? null : await captureDatabases(this.runner, root, this.staging);
    if (cap !== null && !cap.ok) return failed([cap], 'capture-sqlite.sh', cap.t);
    const pre = cap === null ? [] : [cap];
    const p = await this.restic('backup', [
      'backup',
      '--json',
      '--quiet',
      '--exclude-file',
      this.excludeFile,
      root,
      ...(plain ? [] : [this.staging]),
    ]);
    if (!p.ok) return failed([...pre, p], 'restic backup', p.t);
    const s = lastJsonLine(p.t.stdout, (o) => o.message_type === 'summary') ?? {};
    return {
      status: 'ok',
      parts: [...pre, p],
      info: {
        files: num(s.total_files_processed),
        bytes: num(s.total_bytes_processed),
        dataAdded: num(s.data_added),
        filesNew: num(s.files_new),
        filesChanged: num(s.files_changed),
        filesUnmodified: num(s.files_unmodified),
        snapshot: typeof s.snapshot_id === 'string' ? s.snapshot_id : null,
      },
    };
  }

  async restore(target: string): Promise<StepOutcome> {
    mkdirSync(target, { recursive: true });
    const p = await this.restic('restore', ['restore', 'latest', '--target', target, '--quiet']);
    if (!p.ok) return failed([p], 'restic restore', p.t);
    if (this.name === 'restic-plain') return { status: 'ok', parts: [p], info: {} };
    const check = await checkDatabases(this.runner, target);
    if (!check.ok) return failed([p, check], 'check-sqlite.sh', check.t);
    return { status: 'ok', parts: [p, check], info: {} };
  }

  async verify(): Promise<StepOutcome> {
    const p = await this.restic('check', ['check', '--read-data']);
    if (!p.ok) return failed([p], 'restic check --read-data', p.t);
    return { status: 'ok', parts: [p], info: {} };
  }
}
