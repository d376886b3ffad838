/**
 * What verify checks, as pure functions of what was read (verify-reads.ts):
 * each returns the problems it finds, and the caller records them
 * (findings.ts). No I/O, no state kept between calls.
 */
import { StopError } from '../errors.js';
import type { Snapshot, SnapshotDatabase, TreeEntry } from '../snapshot/snapshot.js';
import type { AssemblyOutcome } from './assembly.js';
import type { PackChecks } from './check-packs.js';
import { type Problem, problemFromError } from './findings.js';
import { MIN_PACK_TAIL, short } from './pack-bytes.js';
import type { Location, ReadPlan } from './read-plan.js';
import type { VerifyCounts } from './verify-report.js';

/** Where a pack's needed blobs end, and who needs it (for messages). */
export interface PackUse {
  end: number;
  refs: number;
  /** The first file that needs it (none when only the file list does). */
  firstPath: string | undefined;
}

/** A database entry of the tree must agree with the snapshot's database list and manifest head. */
export function databaseRecordProblems(
  e: TreeEntry,
  d: SnapshotDatabase | undefined,
  snap: Snapshot,
  backupId: string,
): Problem[] {
  const problems: Problem[] = [];
  const problem = (why: string): void => {
    problems.push({
      code: 'MISSING_MANIFEST',
      kind: 'manifest',
      path: e.path,
      backupId,
      object: `snapshots/${backupId}`,
      message: `${e.path}: ${why}`,
    });
  };
  if (d === undefined) problem("a database in the file list that the backup's database list does not have");
  else if (d.sha256 !== e.sha256 || d.size !== e.size)
    problem('the database list and the file list disagree about its size or SHA-256');
  if (e.path === 'core/core.db' && snap.manifest.core.coreDb !== `sha256:${e.sha256 ?? ''}`) {
    problem("the manifest's core.coreDb is not the SHA-256 of the stored core database");
  }
  return problems;
}

/**
 * A file or database whose chunks are not all in the index: `missing` of them, the first `firstMissing`, which is
 * `why` (not in the index; lost; recorded as damaged: Repository.whyMissing).
 */
export function missingChunksProblem(
  e: TreeEntry,
  missing: number,
  firstMissing: string,
  backupId: string,
  why = 'not in the repository index',
): Problem {
  return {
    code: 'CHECKSUM_MISMATCH',
    kind: e.kind === 'db' ? 'database' : 'file',
    path: e.path,
    backupId,
    message:
      `${e.path}: ${missing} of ${e.chunks?.length ?? 0} chunks are missing; the first, ` +
      `${short(firstMissing)}, is ${why}`,
  };
}

/** Every database of the snapshot's list must be in its file list (`seen`: those that are). */
export function absentDatabaseProblems(
  listed: Iterable<string>,
  seen: ReadonlySet<string>,
  backupId: string,
): Problem[] {
  const problems: Problem[] = [];
  for (const d of listed) {
    if (seen.has(d)) continue;
    problems.push({
      code: 'MISSING_MANIFEST',
      kind: 'manifest',
      path: d,
      backupId,
      object: `snapshots/${backupId}`,
      message: `${d}: listed among the backup's databases but absent from its file list`,
    });
  }
  return problems;
}

/** What looking at a pack found: its size, that it is not there, or why it could not be looked at. */
export type PackStat = { size: number } | { missing: true } | { error: unknown };

/**
 * A pack the backup needs must exist and be long enough for the blobs the
 * index places in it. `bad`: the pack cannot be read (missing or too short),
 * so files that need it are not read again.
 */
export function judgePackStat(
  name: string,
  use: PackUse,
  stat: PackStat,
  backupId: string,
): { bad: boolean; problem?: Problem } {
  const where = {
    object: `data/${name}`,
    backupId,
    ...(use.firstPath === undefined ? {} : { path: use.firstPath }),
  };
  const users = `${use.refs} blob references of this backup are in it (first: ${use.firstPath ?? 'its file list'})`;
  if ('error' in stat)
    return {
      bad: false,
      problem: problemFromError('pack', stat.error, { ...where, prefix: `stat pack ${short(name)}` }),
    };
  if ('missing' in stat) {
    return {
      bad: true,
      problem: {
        code: 'CHECKSUM_MISMATCH',
        kind: 'pack',
        ...where,
        message: `pack ${short(name)} is missing from the repository; ${users}`,
      },
    };
  }
  if (stat.size >= use.end + MIN_PACK_TAIL) return { bad: false };
  return {
    bad: true,
    problem: {
      code: 'CHECKSUM_MISMATCH',
      kind: 'pack',
      ...where,
      message:
        `pack ${short(name)} is ${stat.size} bytes, too short for the ` +
        `blobs the index places in it (at least ${use.end + MIN_PACK_TAIL}); ${users}`,
    },
  };
}

/** What is wrong with a one-chunk file: why, and the content bytes that were hashed. */
export interface OneChunkProblem {
  error: unknown;
  verified: number;
}

/**
 * What is wrong with a one-chunk file the read-data pass vouched for by its
 * chunk, given what the pack checks found; undefined when nothing (or when it
 * is not such a file, or was not read).
 */
export function oneChunkProblem(
  e: TreeEntry,
  checks: Pick<PackChecks, 'failed' | 'lengths'>,
  context: {
    locate: (id: string) => Location | undefined;
    /** Packs found missing or too short before reading: their files were not read. */
    badPacks: ReadonlySet<string>;
    selected: (path: string) => boolean;
  },
): OneChunkProblem | undefined {
  const id = e.chunks?.[0];
  if (e.kind !== 'file' || e.chunks?.length !== 1 || id === undefined || !context.selected(e.path)) return undefined;
  const at = context.locate(id);
  if (at === undefined || context.badPacks.has(at.pack)) return undefined;
  const failed = checks.failed.get(id);
  if (failed !== undefined) return { error: failed, verified: 0 };
  const length = checks.lengths.get(id) ?? at.rawLength;
  if (length !== e.size)
    return {
      error: new StopError('CHECKSUM_MISMATCH', `content is ${length} bytes, the backup recorded ${e.size ?? 0}`),
      verified: length,
    };
  // the tree requires a one-chunk file's SHA-256 to be its chunk's id, which opening the chunk checked
  if (id !== e.sha256)
    return {
      error: new StopError('CHECKSUM_MISMATCH', 'SHA-256 of the content does not match the manifest'),
      verified: length,
    };
  return undefined;
}

/** What the read-data pass read and found, to be judged by readDataFindings(). */
export interface ReadDataResult {
  plan: Pick<ReadPlan, 'tasks' | 'emptyFiles'>;
  checks: PackChecks;
  /** The files checked as a whole (assembly.ts). */
  outcomes: readonly AssemblyOutcome[];
  /** One-chunk files found wrong by a second walk (position in the tree, path, size), when one was needed. */
  oneChunk: readonly { seq: number; path: string; size: number; problem: OneChunkProblem }[];
  /** Why that second walk stopped before the end (the file list is damaged), if it did. */
  secondWalkFailure?: { error: unknown };
  /** The first walk read the whole tree. */
  treeComplete: boolean;
  /** Who needs each pack (names a file in a pack problem). */
  packs: ReadonlyMap<string, PackUse>;
  /** The file list's own blobs, when they were read. */
  treeBlobs: readonly string[];
}

type ReadDataCounts = Pick<VerifyCounts, 'filesRead' | 'databasesChecked' | 'bytesVerified' | 'bytesRead'>;

/** What the read-data pass amounts to. */
export interface ReadDataFindings {
  /** In the order they are reported. */
  problems: Problem[];
  counts: ReadDataCounts;
  /** It covered the whole backup (or the whole subset). */
  complete: boolean;
}

/**
 * The problems of the read-data pass, in a fixed order whatever order the
 * packs were checked in: damaged packs (in plan order), then file-list blobs,
 * then files in tree order; its counts; and whether it covered the whole
 * backup. A one-chunk file is as good as its chunk, so it counts as read
 * unless the second walk found it wrong.
 */
export function readDataFindings(r: ReadDataResult, backupId: string): ReadDataFindings {
  const counts: ReadDataCounts = {
    filesRead: r.plan.emptyFiles,
    databasesChecked: 0,
    bytesVerified: 0,
    bytesRead: r.checks.bytesRead,
  };
  for (const t of r.plan.tasks) {
    counts.filesRead += t.files;
    counts.bytesVerified += t.bytes;
  }
  const problems: Problem[] = [];
  for (const p of r.checks.packProblems) {
    const firstPath = r.packs.get(p.pack)?.firstPath;
    problems.push(
      problemFromError('pack', p.error, {
        object: `data/${p.pack}`,
        backupId,
        ...(firstPath === undefined ? {} : { path: firstPath }),
        ...(p.prefix === undefined ? {} : { prefix: p.prefix }),
      }),
    );
  }
  for (const id of new Set(r.treeBlobs)) {
    const err = r.checks.failed.get(id);
    if (err !== undefined)
      problems.push(problemFromError('tree', err, { prefix: `file list blob ${short(id)}`, backupId }));
  }
  const files: { seq: number; problem: Problem }[] = [];
  for (const o of r.outcomes) {
    const { path, kind, seq } = o.plan;
    counts.bytesVerified += o.bytesVerified;
    if (o.contentOk) counts.filesRead++;
    if (o.checked) counts.databasesChecked++;
    if (o.error !== undefined) {
      const thing = kind === 'db' ? 'database' : 'file';
      files.push({ seq, problem: problemFromError(thing, o.error, { prefix: path, path, backupId }) });
    } else if (o.integrity !== undefined) {
      files.push({
        seq,
        problem: {
          code: 'DB_INTEGRITY_ERROR',
          kind: 'database',
          path,
          backupId,
          message: `${path}: integrity_check of the restored copy is not ok: ${o.integrity.slice(0, 3).join('; ')}`,
        },
      });
    }
  }
  for (const f of r.oneChunk) {
    counts.filesRead--;
    counts.bytesVerified += f.problem.verified - f.size;
    files.push({
      seq: f.seq,
      problem: problemFromError('file', f.problem.error, { prefix: f.path, path: f.path, backupId }),
    });
  }
  if (r.secondWalkFailure !== undefined) {
    const problem = problemFromError('tree', r.secondWalkFailure.error, {
      prefix: `backup ${backupId}: file list`,
      backupId,
    });
    files.push({ seq: Infinity, problem });
  }
  files.sort((a, b) => a.seq - b.seq);
  for (const f of files) problems.push(f.problem);
  return { problems, counts, complete: r.treeComplete && r.secondWalkFailure === undefined };
}
