/**
 * What `verify` and `check` find, and what it amounts to.
 *
 * Both keep going after a problem: every finding is recorded (the first
 * `max` in full, all of them counted by code) and the run continues, so one
 * report tells the operator everything that is wrong. Findings are either
 * problems (the backup or repository is not what was written: the run is not
 * ok) or info (worth knowing, harmless: orphaned packs after a crash,
 * duplicate blobs, stale locks).
 *
 * verdictFor() turns a report into the one error it amounts to, which the CLI
 * maps to an exit code like any other error: damage is a STOP (MISSING_MANIFEST,
 * CHECKSUM_MISMATCH or DB_INTEGRITY_ERROR, exit 3: docs/VERIFY.md); a run
 * that could not read something for an ordinary reason (I/O error, no space
 * for a scratch copy) and found no damage is an ordinary error (exit 1).
 */
import { FoleBackupError, StopError, type ErrorCode, type StopCode } from '../errors.js';
import type { ProgressReporter } from '../progress/reporter.js';

/** What a problem is about. */
export type CheckedThing =
  | 'config'
  | 'key'
  | 'index'
  | 'pack'
  | 'blob'
  | 'snapshot'
  | 'manifest'
  | 'tree'
  | 'file'
  | 'database';

/** Something that is not as it was written: the run is not OK. Names what, where, and what to do. */
export interface Problem {
  /**
   * Why it is a problem: a stable error code (CHECKSUM_MISMATCH,
   * MISSING_MANIFEST, DB_INTEGRITY_ERROR, READ_ERROR, …).
   */
  code: StopCode | ErrorCode;
  /** What was being checked. */
  kind: CheckedThing;
  message: string;
  /** Path in the backup (STORAGE_ROOT-relative) the problem affects. */
  path?: string;
  /** Repository object, e.g. "data/3f2a…", "index/…", "snapshots/<backupId>". */
  object?: string;
  /** The backup affected (check reports on every backup). */
  backupId?: string;
}

/** Kinds of information a check reports without failing (orphaned packs, stale locks, leftover files, …). */
export type InfoKind =
  | 'orphan-pack'
  | 'duplicate-blobs'
  | 'pack-indexed-twice'
  | 'stale-lock'
  | 'lock'
  | 'unknown-object'
  | 'temp-files'
  | 'not-checked'
  | 'known-damage';

/** Something worth knowing that is not damage: reported, never a failure. */
export interface Info {
  kind: InfoKind;
  message: string;
  object?: string;
}

/** Fields every report has. */
export interface ReportBase {
  /** No problem found (info does not count). */
  ok: boolean;
  /** The levels that were checked, in order. */
  levels: string[];
  startedAt: string;
  durationMs: number;
  /** The first problems found (at most the run's limit, 20 by default). */
  problems: Problem[];
  /** Every problem found, including those not listed. */
  problemCount: number;
  /** Every problem found, by code. */
  problemCodes: Record<string, number>;
  info: Info[];
  infoCount: number;
}

export const DEFAULT_MAX_PROBLEMS = 20;

/** An abort is never a finding: it ends the run. */
export function isAbort(err: unknown): boolean {
  return (
    (err instanceof FoleBackupError && err.code === 'ABORTED') || (err instanceof Error && err.name === 'AbortError')
  );
}

/** Where a problem found by a caught error is, and the prefix of its message. */
export interface ErrorWhere {
  prefix?: string;
  path?: string;
  object?: string;
  backupId?: string;
}

/** Where a stage puts the problems it finds, as it finds them (the run's Findings). */
export type ProblemSink = (p: Problem) => void;

/**
 * A caught error as a problem: its code (INTERNAL for what is not a
 * FoleBackupError) and `prefix: message`. Aborts are rethrown: they end the
 * run, they are never a finding.
 */
export function problemFromError(kind: CheckedThing, err: unknown, where: ErrorWhere = {}): Problem {
  if (isAbort(err)) throw err;
  const code = err instanceof FoleBackupError ? err.code : 'INTERNAL';
  const text = err instanceof Error ? err.message : String(err);
  const { prefix, ...rest } = where;
  const p: Problem = { code, kind, message: prefix === undefined ? text : `${prefix}: ${text}` };
  // a tree validation error names the offending entry's path in the backup
  const entryPath = kind === 'tree' && err instanceof FoleBackupError ? err.path : undefined;
  const path = rest.path ?? entryPath;
  if (path !== undefined) p.path = path;
  if (rest.object !== undefined) p.object = rest.object;
  if (rest.backupId !== undefined) p.backupId = rest.backupId;
  return p;
}

/** Collects findings; tells the reporter about each listed problem as it is found. */
export class Findings {
  readonly problems: Problem[] = [];
  problemCount = 0;
  readonly problemCodes: Record<string, number> = {};
  readonly info: Info[] = [];
  infoCount = 0;

  constructor(
    readonly max: number,
    private readonly reporter?: ProgressReporter,
  ) {}

  problem(p: Problem): void {
    this.problemCount++;
    this.problemCodes[p.code] = (this.problemCodes[p.code] ?? 0) + 1;
    if (this.problems.length < this.max) {
      this.problems.push(p);
      this.reporter?.warn(`${p.code}: ${p.message}`, p.path);
    }
  }

  /** Record a caught error as a problem (problemFromError). Aborts are rethrown. */
  fromError(kind: CheckedThing, err: unknown, where: ErrorWhere = {}): void {
    this.problem(problemFromError(kind, err, where));
  }

  note(i: Info): void {
    this.infoCount++;
    if (this.info.length < this.max) this.info.push(i);
  }

  get ok(): boolean {
    return this.problemCount === 0;
  }

  /** The findings part of a report. */
  summary(): Pick<ReportBase, 'ok' | 'problems' | 'problemCount' | 'problemCodes' | 'info' | 'infoCount'> {
    return {
      ok: this.ok,
      problems: [...this.problems],
      problemCount: this.problemCount,
      problemCodes: { ...this.problemCodes },
      info: [...this.info],
      infoCount: this.infoCount,
    };
  }
}

/** STOP codes in the order one is chosen to name a report that has several. */
const STOP_PRIORITY: readonly StopCode[] = ['MISSING_MANIFEST', 'CHECKSUM_MISMATCH', 'DB_INTEGRITY_ERROR'];
/**
 * Ordinary codes that still mean damage: an object that decrypts but does not
 * decode (REPO_CORRUPT), or one that is listed but gone (NOT_FOUND). The data
 * is not what was written, so they STOP as CHECKSUM_MISMATCH.
 */
const DAMAGE_CODES: ReadonlySet<string> = new Set(['REPO_CORRUPT', 'NOT_FOUND']);
const ALL_STOP_CODES: ReadonlySet<string> = new Set<StopCode>([
  'MISSING_MANIFEST',
  'CHECKSUM_MISMATCH',
  'DB_INTEGRITY_ERROR',
  'PERMISSION_DENIED',
  'VERSION_MISMATCH',
  'MODULE_SET_MISMATCH',
  'AMBIGUOUS_INTENT',
  'UNCLEAR_RESTORE_TARGET',
]);

export interface VerdictWording {
  /** "backup <id>" or "repository <location>". */
  subject: string;
  /** What to do about damage. */
  damageHint: string;
  /** What to do when the first problem is NO_SPACE (where the command's scratch space goes). */
  noSpaceHint?: string;
  /** What the run changed, when not nothing (the damage record a check wrote). */
  changed?: string;
}

/**
 * The error a report amounts to, or undefined when it is ok. Damage of any
 * kind is a StopError; the code is the most telling one found
 * (MISSING_MANIFEST before CHECKSUM_MISMATCH before DB_INTEGRITY_ERROR).
 * Problems that are not damage (READ_ERROR, NO_SPACE, INTERNAL, …) give an
 * ordinary FoleBackupError with the first such code.
 */
export function verdictFor(
  r: Pick<ReportBase, 'ok' | 'problems' | 'problemCount' | 'problemCodes'>,
  w: VerdictWording,
): FoleBackupError | undefined {
  if (r.ok) return undefined;
  const codes = Object.keys(r.problemCodes);
  const byCount = codes.map((c) => `${r.problemCodes[c]} ${c}`).join(', ');
  const first = r.problems[0];
  const firstText = first === undefined ? '' : `; first: ${first.message}`;
  const problems = `${r.problemCount} problem${r.problemCount === 1 ? '' : 's'}`;
  const message = `${w.subject}: ${problems} found (${byCount})${firstText}`;
  const stop =
    STOP_PRIORITY.find((c) => codes.includes(c)) ??
    (codes.find((c) => ALL_STOP_CODES.has(c)) as StopCode | undefined) ??
    (codes.some((c) => DAMAGE_CODES.has(c)) ? 'CHECKSUM_MISMATCH' : undefined);
  if (stop !== undefined)
    return new StopError(stop, message, {
      hint: w.damageHint,
      ...(first?.path ? { path: first.path } : {}),
      ...(w.changed === undefined ? {} : { changed: w.changed }),
    });
  const code = (first?.code ?? 'INTERNAL') as ErrorCode;
  const hint =
    code === 'NO_SPACE' && w.noSpaceHint !== undefined
      ? `no damage was found in what could be read; ${w.noSpaceHint}`
      : 'no damage was found in what could be read; fix the cause (permissions, disk space, network) and run it again';
  return new FoleBackupError(code, message, { hint });
}
