/**
 * Borg as its users run it: `borg init --encryption=repokey` (AES-CTR +
 * HMAC-SHA256; on this SHA-NI machine HMAC-SHA256 is faster than the BLAKE2b
 * of repokey-blake2, so this is Borg's fastest encrypted mode here), its
 * default compression (lz4), BORG_PASSPHRASE, its cache and keys in the work
 * directory (BORG_BASE_DIR), `borg create` (the files cache makes a later
 * create incremental), `borg extract`, `borg check --verify-data`.
 * Databases come from the capture hook's staging directory; an extract is
 * followed by the check hook's integrity_check of each of them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../measure.js';
import { captureDatabases, checkDatabases, EXCLUDED_DIRS, EXCLUDED_NAMES, stagingDir } from './anchor.js';
import { failed, num, StepRunner, type BenchTool, type StepOutcome } from './tool.js';

export function borgVersion(): string {
  return run('borg', ['--version']).stdout.trim();
}

export class BorgTool implements BenchTool {
  readonly name = 'borg' as const;
  readonly repo: string;
  readonly stateDirs: readonly string[];
  readonly runner: StepRunner;
  readonly version = borgVersion();
  private readonly staging: string;
  private readonly excludeFile: string;
  private archives = 0;

  constructor(workDir: string, logDir: string) {
    this.repo = join(workDir, 'borg-repo');
    const home = join(workDir, 'borg-home');
    this.staging = stagingDir(workDir, 'borg');
    this.excludeFile = join(workDir, 'borg-excludes.txt');
    this.stateDirs = [this.repo, home, this.staging];
    this.runner = new StepRunner(logDir, 'borg', {
      ...process.env,
      BORG_REPO: this.repo,
      BORG_PASSPHRASE: 'bench-password-borg',
      BORG_BASE_DIR: home,
    });
  }

  async init(): Promise<void> {
    const p = await this.runner.measure('init', 'borg', ['init', '--encryption=repokey', this.repo]);
    if (!p.ok) throw new Error(failed([], 'borg init', p.t).error);
  }

  async backup(root: string): Promise<StepOutcome> {
    // fm: patterns, where * also matches '/': anchored to the tree so the staged copies are kept
    writeFileSync(
      this.excludeFile,
      `${[
        ...EXCLUDED_NAMES.map((p) => `fm:${root}/${p}`),
        ...EXCLUDED_DIRS.flatMap((d) => [`fm:${root}/${d}`, `fm:${root}/*/${d}`]),
      ].join('\n')}\n`,
    );
    const cap = await captureDatabases(this.runner, root, this.staging);
    if (!cap.ok) return failed([cap], 'capture-sqlite.sh', cap.t);
    const name = `bench-${++this.archives}`;
    // exit 1 is Borg's "finished with warnings" (e.g. a file changed while read): the archive exists
    const p = await this.runner.measure(
      'create',
      'borg',
      ['create', '--json', '--exclude-from', this.excludeFile, `::${name}`, root, this.staging],
      { okCodes: [0, 1] },
    );
    if (!p.ok) return failed([cap, p], 'borg create', p.t);
    let stats: Record<string, unknown> = {};
    try {
      const j = JSON.parse(p.t.stdout) as { archive?: { stats?: Record<string, unknown> } };
      stats = j.archive?.stats ?? {};
    } catch {
      // figures are optional; the timing stands
    }
    return {
      status: 'ok',
      parts: [cap, p],
      info: {
        archive: name,
        exitCode: p.t.exitCode,
        files: num(stats.nfiles),
        originalSize: num(stats.original_size),
        compressedSize: num(stats.compressed_size),
        deduplicatedSize: num(stats.deduplicated_size),
      },
    };
  }

  async restore(target: string): Promise<StepOutcome> {
    if (this.archives === 0) return { status: 'unavailable', parts: [], error: 'no archive', info: {} };
    mkdirSync(target, { recursive: true });
    const p = await this.runner.measure('extract', 'borg', ['extract', `::bench-${this.archives}`], { cwd: target });
    if (!p.ok) return failed([p], 'borg extract', p.t);
    const check = await checkDatabases(this.runner, target);
    if (!check.ok) return failed([p, check], 'check-sqlite.sh', check.t);
    return { status: 'ok', parts: [p, check], info: { archive: `bench-${this.archives}` } };
  }

  async verify(): Promise<StepOutcome> {
    const p = await this.runner.measure('check', 'borg', ['check', '--verify-data']);
    if (!p.ok) return failed([p], 'borg check --verify-data', p.t);
    return { status: 'ok', parts: [p], info: {} };
  }
}
