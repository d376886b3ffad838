/**
 * What a verification reports: the progress shown while it runs, the report
 * it ends with (built from what its stages returned and the findings), and the
 * error that report amounts to. Nothing here reads the repository or checks
 * anything.
 */
import type { FoleBackupError } from '../errors.js';
import type { ProgressReporter } from '../progress/reporter.js';
import { type Findings, type ReportBase, verdictFor } from './findings.js';
import { short } from './pack-bytes.js';
import type { DataSelection } from './subset.js';

/** The levels a verify reached, in order; `read-data` when every byte was read, `read-data-subset` for a share. */
export type VerifyLevel = 'manifest' | 'index' | 'tree' | 'packs' | 'render' | 'read-data' | 'read-data-subset';

/** What a verify looked at: snapshots, blobs, packs, files, databases and bytes. */
export interface VerifyCounts {
  dirs: number;
  /** Files, databases included (as backup, list and restore count them). */
  files: number;
  /** The databases among `files`. */
  databases: number;
  /** Content bytes the backup records (files + database snapshots). */
  bytes: number;
  /** Blob references checked against the index (tree blobs and chunks; a deduplicated chunk counts each time). */
  blobs: number;
  /** Distinct packs the backup needs. */
  packs: number;
  /** Files and databases whose content was read and hashed. */
  filesRead: number;
  /** Databases restored to a scratch file and integrity-checked. */
  databasesChecked: number;
  /** Content bytes decrypted and hashed. */
  bytesVerified: number;
  /** Bytes read from the repository (whole packs, or blob ranges for a subset). */
  bytesRead: number;
}

/** A verify's findings: the levels reached, the counts, and every problem (the first ones in full). */
export interface VerifyReport extends ReportBase {
  kind: 'verify';
  backupId: string;
  repository: string;
  readData: 'none' | 'all' | 'subset';
  /** How the subset was chosen (--read-data-subset). */
  subset?: { percent: number; seed: string; selectedFiles: number; selectedBytes: number };
  /** SHA-256 of the rendered manifest.json, when it rendered. */
  manifestSha256?: string;
  counts: VerifyCounts;
  /** The damage record this verify added (damage/NAME), when it found damage not recorded before. */
  recorded?: string;
}

/** What the stages of a verification returned, as far as it got. */
export interface VerifyOutcome {
  levels: VerifyLevel[];
  counts: VerifyCounts;
  /** Files and bytes the subset drew (--read-data-subset, once the tree was walked). */
  drawn?: { files: number; bytes: number };
  manifestSha256?: string;
  recorded?: string;
}

export function noCounts(): VerifyCounts {
  return {
    dirs: 0,
    files: 0,
    databases: 0,
    bytes: 0,
    blobs: 0,
    packs: 0,
    filesRead: 0,
    databasesChecked: 0,
    bytesVerified: 0,
    bytesRead: 0,
  };
}

/** The report of a verification of `backupId` that started at `started` (ms since the epoch) and ends now. */
export function verifyReport(
  run: { backupId: string; repository: string; selection: DataSelection; started: number },
  outcome: VerifyOutcome,
  findings: Pick<Findings, 'summary'>,
): VerifyReport {
  const { ok, ...found } = findings.summary();
  const { selection } = run;
  const r: VerifyReport = {
    kind: 'verify',
    ok,
    backupId: run.backupId,
    repository: run.repository,
    readData: selection.mode,
    levels: [...outcome.levels],
    counts: { ...outcome.counts },
    startedAt: new Date(run.started).toISOString(),
    durationMs: Date.now() - run.started,
    ...found,
  };
  if (selection.mode === 'subset')
    r.subset = {
      percent: selection.percent,
      seed: selection.seed,
      selectedFiles: outcome.drawn?.files ?? 0,
      selectedBytes: outcome.drawn?.bytes ?? 0,
    };
  if (outcome.manifestSha256 !== undefined) r.manifestSha256 = outcome.manifestSha256;
  if (outcome.recorded !== undefined) r.recorded = outcome.recorded;
  return r;
}

/** The error a verify report amounts to (undefined when ok); see findings.ts. */
export function verifyVerdict(r: VerifyReport): FoleBackupError | undefined {
  return verdictFor(r, {
    subject: `backup ${r.backupId}`,
    ...(r.recorded === undefined ? {} : { changed: `the damage found, recorded in damage/${r.recorded.slice(0, 12)}` }),
    damageHint:
      'do not restore from this backup; choose another one (`fole-backup list`) and run ' +
      '`fole-backup check --read-data` to see what else is affected — never edit a backup by hand',
    noSpaceHint:
      'the scratch copies of the databases (checked with integrity_check, then removed) need room for up to ' +
      "all of the backup's databases at once: free space there, or give --scratch-dir a directory on a disk " +
      'with room, and run it again',
  });
}

/** The stages of a verification, as its progress names them. */
export type VerifyPhase = 'manifest' | 'index' | 'tree' | 'packs' | 'render' | 'read-data';

/** A verification's progress, as the reporter is told it. */
export class VerifyProgress {
  constructor(
    private readonly reporter: ProgressReporter,
    private readonly selection: DataSelection,
  ) {}

  phase(p: VerifyPhase): void {
    this.reporter.phase(this.phaseName(p));
  }

  /** The first walk reached a file or database; `files` and `bytes` so far. */
  walked(files: number, bytes: number, path: string): void {
    this.reporter.progress({ files, bytes, current: path });
  }

  /** `done` of `total` packs looked at. */
  statted(done: number, total: number): void {
    this.reporter.progress({ files: done, bytes: 0, totalFiles: total });
  }

  /** `done` of `total` packs read and checked (`bytes` read, of `totalBytes` when whole packs are read). */
  read(p: { done: number; total: number; bytes: number; totalBytes: number; pack: string }): void {
    this.reporter.progress({
      files: p.done,
      bytes: p.bytes,
      totalFiles: p.total,
      ...(this.selection.mode === 'all' ? { totalBytes: p.totalBytes } : {}),
      current: short(p.pack),
    });
  }

  private phaseName(p: VerifyPhase): string {
    switch (p) {
      case 'manifest':
        return 'verify manifest';
      case 'index':
        return 'load index';
      case 'tree':
        return 'verify tree';
      case 'packs':
        return 'verify packs';
      case 'render':
        return 'render manifest';
      case 'read-data':
        return this.selection.mode === 'all' ? 'read data' : `read data (${this.selection.percent}% subset)`;
    }
  }
}
