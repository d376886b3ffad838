/**
 * restic as its users run it: `restic init` (repository format 2, so
 * compression "auto" = zstd, its default), RESTIC_PASSWORD, a local cache in
 * the work directory, `restic backup` (a later backup of the same paths finds
 * its parent by itself), `restic restore latest --target`, `restic check
 * --read-data`. Databases come from the capture hook's staging directory.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../measure.js';
import { captureDatabases, EXCLUDED_DIRS, EXCLUDED_NAMES, stagingDir } from './anchor.js';
import { failed, lastJsonLine, num, StepRunner, type BenchTool, type RemoteRepo, type StepOutcome } from './tool.js';

export function resticVersion(): string {
  return run('restic', ['version']).stdout.trim();
}

export class ResticTool implements BenchTool {
  readonly name = 'restic' as const;
  readonly repo: string | null;
  readonly stateDirs: readonly string[];
  readonly runner: StepRunner;
  readonly version = resticVersion();
  private readonly staging: string;
  private readonly excludeFile: string;
  /** What every command needs for a remote repository (`--cacert`, `-o …`), after its own arguments. */
  private readonly remoteArgs: readonly string[];

  /** `remote`: a repository behind a server instead of one in the work directory. */
  constructor(workDir: string, logDir: string, remote?: RemoteRepo) {
    const local = join(workDir, 'restic-repo');
    this.repo = remote === undefined ? local : remote.dir;
    this.remoteArgs = remote?.args ?? [];
    const cache = join(workDir, 'restic-cache');
    this.staging = stagingDir(workDir, 'restic');
    this.excludeFile = join(workDir, 'restic-excludes.txt');
    this.stateDirs = [...(this.repo === null ? [] : [this.repo]), cache, this.staging];
    this.runner = new StepRunner(logDir, 'restic', {
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
    // anchored to the tree, so the staged copies (also *.db) are kept
    writeFileSync(
      this.excludeFile,
      `${[...EXCLUDED_NAMES, ...EXCLUDED_DIRS].map((p) => `${root}/**/${p}`).join('\n')}\n`,
    );
    const cap = await captureDatabases(this.runner, root, this.staging);
    if (!cap.ok) return failed([cap], 'capture-sqlite.sh', cap.t);
    const p = await this.restic('backup', [
      'backup',
      '--json',
      '--quiet',
      '--exclude-file',
      this.excludeFile,
      root,
      this.staging,
    ]);
    if (!p.ok) return failed([cap, p], 'restic backup', p.t);
    const s = lastJsonLine(p.t.stdout, (o) => o.message_type === 'summary') ?? {};
    return {
      status: 'ok',
      parts: [cap, p],
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
    return { status: 'ok', parts: [p], info: {} };
  }

  async verify(): Promise<StepOutcome> {
    const p = await this.restic('check', ['check', '--read-data']);
    if (!p.ok) return failed([p], 'restic check --read-data', p.t);
    return { status: 'ok', parts: [p], info: {} };
  }
}
