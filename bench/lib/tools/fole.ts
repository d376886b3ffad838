/**
 * fole-backup, run as a user runs it: the built CLI (`node dist/cli/main.js`,
 * not through tsx, so start-up is what a user pays), --json for the figures.
 * Its database capture (quiesce, Online Backup API, integrity_check) is part
 * of `backup` itself.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run, type Timed } from '../measure.js';
import {
  failed,
  fileSafe,
  num,
  StepRunner,
  type BackupKind,
  type BenchTool,
  type FoleName,
  type RemoteRepo,
  type StepOutcome,
} from './tool.js';

const FOLE_VERSION_RECORDED = '1.0.0';
const PASSWORD = 'bench-password-fole';

/** A built fole-backup CLI that the harness measures: this build, or a baseline (bench/lib/baseline.ts). */
export interface FoleBuild {
  name: FoleName;
  /** Path of the built `dist/cli/main.js`. */
  cli: string;
  /** What the report names it: "fole-backup 0.1.0 (abc1234)". */
  version: string;
  /** The commands its --help lists (see foleCommands). */
  commands: Set<string>;
}

/** The commands the built CLI offers (restore and verify may not exist yet). */
export function foleCommands(cli: string): Set<string> {
  const help = run(process.execPath, [cli, '--help']).stdout;
  const cmds = new Set<string>();
  let inCommands = false;
  for (const line of help.split('\n')) {
    if (/^Commands:/.test(line)) {
      inCommands = true;
      continue;
    }
    if (inCommands) {
      const m = /^ {2}([a-z][a-z-]*)\b/.exec(line);
      if (m?.[1] !== undefined) cmds.add(m[1]);
      else if (line.trim() !== '' && !line.startsWith(' ')) inCommands = false;
    }
  }
  return cmds;
}

/**
 * Where a command's time went, from the phase names it prints on stderr
 * ("scan…", "capture databases…") and when they arrived: "scan 1.2; capture
 * databases 4.0; …" in seconds, the first entry being start-up (node, key
 * derivation, repository open) before the first phase.
 */
function phaseTimes(t: Timed): string {
  const marks = t.stderrLines
    .filter((l) => l.line.endsWith('…'))
    .map((l) => ({ name: l.line.slice(0, -1).trim(), atS: l.atS }));
  if (marks.length === 0) return '';
  const out = [`start-up ${(marks[0]?.atS ?? 0).toFixed(1)}`];
  for (const [i, m] of marks.entries()) out.push(`${m.name} ${((marks[i + 1]?.atS ?? t.wallS) - m.atS).toFixed(1)}`);
  return out.join('; ');
}

/** Seconds from the phase line `name…` on stderr to the next phase line (or the end); null without that line. */
function phaseSeconds(t: Timed, name: string): number | null {
  const marks = t.stderrLines.filter((l) => l.line.endsWith('…'));
  const i = marks.findIndex((l) => l.line.slice(0, -1).trim() === name);
  if (i < 0) return null;
  return (marks[i + 1]?.atS ?? t.wallS) - (marks[i]?.atS ?? 0);
}

export class FoleTool implements BenchTool {
  readonly name: FoleName;
  readonly version: string;
  readonly repo: string | null;
  readonly stateDirs: readonly string[];
  readonly runner: StepRunner;
  private readonly cli: string;
  private readonly commands: Set<string>;
  /** What --repo names: the local directory, or the remote location. */
  private readonly location: string;
  /** What every command needs for a remote repository (CA file, SSH key), after its own arguments. */
  private readonly remoteArgs: readonly string[];
  private lastBackupId: string | undefined;

  constructor(
    build: FoleBuild,
    workDir: string,
    logDir: string,
    /** Extra node flags (e.g. --cpu-prof) for every measured command. */
    private readonly nodeFlags: readonly string[] = [],
    /** A repository behind a server instead of one in the work directory. */
    remote?: RemoteRepo,
  ) {
    this.name = build.name;
    this.version = build.version;
    this.cli = build.cli;
    this.commands = build.commands;
    // each build its own repository: a baseline must not read what this build wrote, nor the reverse
    const local = join(workDir, `${fileSafe(build.name)}-repo`);
    this.location = remote?.location ?? local;
    this.repo = remote === undefined ? local : remote.dir;
    this.remoteArgs = remote?.args ?? [];
    this.stateDirs = this.repo === null ? [] : [this.repo];
    this.runner = new StepRunner(logDir, build.name, {
      ...process.env,
      FOLE_BACKUP_PASSWORD: PASSWORD,
      // `copy` reads a source repository of this harness, made with the same password
      FOLE_BACKUP_FROM_PASSWORD: PASSWORD,
      ...remote?.env,
    });
  }

  private args(...rest: string[]): string[] {
    return [
      ...this.nodeFlags,
      this.cli,
      '--repo',
      this.location,
      '--json',
      '--no-progress',
      ...rest,
      ...this.remoteArgs,
    ];
  }

  async init(): Promise<void> {
    await this.initFrom();
  }

  /** `init`, with `--from-repo` a twin of that local repository (the target of `copy`). Never profiled: set-up. */
  async initFrom(sourceRepo?: string): Promise<void> {
    const from = sourceRepo === undefined ? [] : ['--from-repo', sourceRepo];
    const p = await this.runner.measure('init', process.execPath, [
      this.cli,
      '--repo',
      this.location,
      '--json',
      'init',
      ...from,
      ...this.remoteArgs,
    ]);
    if (!p.ok) throw new Error(failed([], 'fole-backup init', p.t).error);
  }

  /**
   * `copy` of every backup of the local repository `sourceRepo` into this one. Info: the bytes it wrote
   * (packs and index files) and `transferS`, the seconds of its "copy data" phase (reading, re-encrypting
   * and uploading every blob, and the index), timed by the phase lines on stderr.
   */
  async copyFrom(sourceRepo: string): Promise<StepOutcome> {
    // the target is --repo (copy's --to-repo defaults to it)
    const p = await this.runner.measure('copy', process.execPath, this.args('copy', '--from-repo', sourceRepo));
    if (!p.ok) return failed([p], 'fole-backup copy', p.t);
    const r = JSON.parse(p.t.stdout) as Record<string, unknown>;
    return {
      status: 'ok',
      parts: [p],
      info: {
        bytesWritten: num(r.bytesWritten),
        blobsCopied: num(r.blobsCopied),
        packsWritten: num(r.packsWritten),
        transferS: phaseSeconds(p.t, 'copy data'),
        phases: phaseTimes(p.t),
      },
    };
  }

  async backup(root: string, kind: BackupKind): Promise<StepOutcome> {
    const extra = kind === 'incremental' ? ['--incremental'] : [];
    const p = await this.runner.measure(
      'backup',
      process.execPath,
      this.args('backup', '--storage-root', root, '--fole-version', FOLE_VERSION_RECORDED, ...extra),
    );
    if (!p.ok) return failed([p], 'fole-backup backup', p.t);
    const r = JSON.parse(p.t.stdout) as Record<string, unknown>;
    this.lastBackupId = r.backupId as string;
    return {
      status: 'ok',
      parts: [p],
      info: {
        backupId: this.lastBackupId,
        type: String(r.type),
        files: num(r.files),
        bytes: num(r.bytes),
        bytesRead: num(r.bytesRead),
        addedBytes: num(r.addedBytes),
        filesNew: num(r.filesNew),
        filesChanged: num(r.filesChanged),
        filesUnchanged: num(r.filesUnchanged),
        dbsCaptured: num(r.dbsCaptured),
        dbsUnchanged: num(r.dbsUnchanged),
        writersBlockedMs: num(r.writersBlockedMs),
        phases: phaseTimes(p.t),
      },
    };
  }

  async restore(target: string): Promise<StepOutcome> {
    if (!this.commands.has('restore'))
      return { status: 'unavailable', parts: [], error: 'the built CLI has no `restore` command yet', info: {} };
    // --confirm wants the full id of what "latest" resolves to; a user reads it from `list` too (not timed)
    const id = this.lastBackupId ?? this.latestBackupId();
    if (id === undefined) return { status: 'unavailable', parts: [], error: 'no backup to restore', info: {} };
    mkdirSync(target, { recursive: true });
    const p = await this.runner.measure(
      'restore',
      process.execPath,
      this.args('restore', 'latest', '--target', target, '--confirm', id, '--fole-version', FOLE_VERSION_RECORDED),
    );
    if (!p.ok) return failed([p], 'fole-backup restore', p.t);
    const r = JSON.parse(p.t.stdout) as Record<string, unknown>;
    return {
      status: 'ok',
      parts: [p],
      info: {
        files: num(r.files),
        bytes: num(r.bytes),
        previousTree: typeof r.previousTree === 'string' ? r.previousTree : null,
        phases: phaseTimes(p.t),
      },
    };
  }

  private latestBackupId(): string | undefined {
    const r = run(process.execPath, [this.cli, '--repo', this.location, '--json', 'list', ...this.remoteArgs], {
      env: this.runner.env,
    });
    const rows = JSON.parse(r.stdout) as { backupId: string }[];
    return rows[rows.length - 1]?.backupId;
  }

  async verify(): Promise<StepOutcome> {
    if (!this.commands.has('verify'))
      return { status: 'unavailable', parts: [], error: 'the built CLI has no `verify` command yet', info: {} };
    const p = await this.runner.measure('verify', process.execPath, this.args('verify', 'latest', '--read-data'));
    if (!p.ok) return failed([p], 'fole-backup verify', p.t);
    const r = JSON.parse(p.t.stdout) as Record<string, unknown>;
    const counts = (r.counts ?? {}) as Record<string, unknown>;
    const info: Record<string, number | string | null> = { ok: String(r.ok ?? ''), phases: phaseTimes(p.t) };
    for (const [k, v] of Object.entries(counts)) info[k] = num(v);
    return { status: 'ok', parts: [p], info };
  }
}
