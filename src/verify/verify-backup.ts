/**
 * Verifying one backup (docs/VERIFY.md): can it be restored, byte for byte?
 *
 *   resolve the backup id; take a shared repository lock
 *   manifest   load the snapshot object (decrypts, validates)      → MISSING_MANIFEST
 *   index      load every index file
 *   tree       walk the tree with readTree, which validates every entry, its
 *              order and its chunk list; every chunk must be in the index;
 *              the snapshot's database list must match the tree. The same
 *              walk renders the first half of manifest.json and plans what
 *              read-data reads (read-plan.ts)
 *   packs      stat every pack the backup needs: present, and long enough for
 *              the blobs the index places in it — without reading data
 *   render     the second half of manifest.json, from a second, cheaper walk
 *              over the already validated tree (reread-tree.ts); its SHA-256
 *              fingerprints it. Runs while read-data reads the packs
 *   read-data  (--read-data) read every pack the backup needs once, in full,
 *              and check its SHA-256 against its name; decrypt and hash every
 *              chunk the backup needs (on worker threads: check-packs.ts);
 *              put every file of several chunks and every database together
 *              in order to check its size and SHA-256, writing each database
 *              to a scratch file in a private temporary directory for
 *              PRAGMA integrity_check (assembly.ts)  → CHECKSUM_MISMATCH,
 *                                                      DB_INTEGRITY_ERROR
 *              (--read-data-subset N%) the same for a deterministic random N% of
 *              the files (subset.ts), reading only their chunks
 *
 * Nothing stops at the first problem: each is recorded (findings.ts) and the
 * walk goes on, so the report names everything wrong, up to the limit. Only an
 * unknown backup id (there is nothing to verify), a lock held by an exclusive
 * operation, and an abort end the run with an error instead of a report. Files
 * whose chunks are already known to be missing are not read again in the
 * read-data pass: they are reported once. Read-data findings are reported in a
 * fixed order whatever order the packs were checked in: damaged packs (in the
 * order the backup needs them), then file-list blobs, then files in tree order.
 *
 * This module runs the stages in that order and passes plain data between
 * them: what they read is in verify-reads.ts, what they check (pure) in
 * verify-checks.ts, and the report and progress in verify-report.ts.
 */
import { FoleBackupError } from '../errors.js';
import { type ProgressReporter, silentReporter } from '../progress/reporter.js';
import { recordNewDamage } from '../repository/damage.js';
import { RepositoryLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import type { Snapshot, TreeEntry } from '../snapshot/snapshot.js';
import { resolveBackupId } from '../snapshot/store.js';
import type { PackChecks } from './check-packs.js';
import { DEFAULT_MAX_PROBLEMS, Findings, isAbort, type Problem } from './findings.js';
import { PackPool } from './pack-pool.js';
import type { ReadPlanner } from './read-plan.js';
import { ScratchDir } from './scratch-dir.js';
import { type DataSelection, dataSelection, isSelected } from './subset.js';
import { type OneChunkProblem, oneChunkProblem, type ReadDataFindings, readDataFindings } from './verify-checks.js';
import {
  type PackStats,
  readData,
  readIndex,
  readSnapshot,
  renderFileList,
  statPacks,
  type TreeWalk,
  walkAgain,
  walkTree,
} from './verify-reads.js';
import { noCounts, type VerifyOutcome, VerifyProgress, type VerifyReport, verifyReport } from './verify-report.js';

export type { VerifyCounts, VerifyLevel, VerifyReport } from './verify-report.js';
export { verifyVerdict } from './verify-report.js';

/** How far `verifyBackup` goes: structure only, every byte, or a random share of the files (docs/VERIFY.md). */
export interface VerifyOptions {
  /**
   * Read the data too: `true` for every file, `{ percent, seed }` for a
   * deterministic random share of the files (seed defaults to the backup id).
   * Default: structure only, no data read.
   */
  readData?: boolean | { percent: number; seed?: string };
  /** Problems listed in full (all are counted). Default 20. */
  maxProblems?: number;
  /**
   * Where the private scratch directory for database checks is made (default:
   * OS temp dir). Databases are checked as their packs are read, several at
   * once: it needs room for the databases whose packs are read in the same
   * stretch (at most all of the backup's databases).
   */
  scratchParent?: string;
  /**
   * Take a shared repository lock (default true). Pass false when the caller
   * holds one, or for a read-only repository.
   */
  lock?: boolean;
  /** Packs read and checked at once (default 4). */
  concurrency?: number;
  /** Worker threads that check packs and databases (default: one per core, at most 4). */
  threads?: number;
  reporter?: ProgressReporter;
  signal?: AbortSignal;
}

/**
 * Verify one backup. Returns a report (ok or not); throws only when there is
 * no such backup (StopError MISSING_MANIFEST / AMBIGUOUS_INTENT from
 * resolveBackupId), when the repository is locked exclusively, or on abort.
 */
export async function verifyBackup(repo: Repository, ref: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const backupId = await resolveBackupId(repo, ref);
  const started = Date.now();
  const selection = dataSelection(opts.readData, backupId);
  const reporter = opts.reporter ?? silentReporter;
  const findings = new Findings(opts.maxProblems ?? DEFAULT_MAX_PROBLEMS, reporter);
  const lock =
    opts.lock === false
      ? undefined
      : await RepositoryLock.acquireForReading(repo, {
          operation: 'verify',
          onUnlocked: (why) => reporter.warn(why),
          onStale: (l) =>
            findings.note({
              kind: 'stale-lock',
              object: `locks/${l.name}`,
              message: `ignored stale lock of ${l.operation} by ${l.username}@${l.host} pid ${l.pid}: ${l.stale}`,
            }),
        });
  const scratch = new ScratchDir(opts.scratchParent);
  let outcome: VerifyOutcome;
  try {
    outcome = await runStages(repo, backupId, selection, { opts, findings, reporter, scratch });
  } finally {
    await scratch.remove();
    await lock?.release();
  }
  return verifyReport({ backupId, repository: repo.backend.location, selection, started }, outcome, findings);
}

/**
 * The stages, in order, as far as they get: each level reached is added to
 * the outcome, and a stage that finds the backup unusable for the next ends
 * the run there. Problems go to `findings` as they are found; read-data's
 * once the render is done (its level comes first).
 */
async function runStages(
  repo: Repository,
  backupId: string,
  selection: DataSelection,
  ctx: { opts: VerifyOptions; findings: Findings; reporter: ProgressReporter; scratch: ScratchDir },
): Promise<VerifyOutcome> {
  const { opts, findings, scratch } = ctx;
  const out: VerifyOutcome = { levels: [], counts: noCounts() };
  const progress = new VerifyProgress(ctx.reporter, selection);
  const deps = { onProblem: (p: Problem) => findings.problem(p), signal: opts.signal };

  progress.phase('manifest');
  const snap = await readSnapshot(repo, backupId, deps);
  if (snap === undefined) return out;
  out.levels.push('manifest');

  progress.phase('index');
  if (!(await readIndex(repo, deps))) return out;
  out.levels.push('index');

  // the workers start while the tree is walked
  const pool = selection.mode === 'none' ? undefined : new PackPool(repo.blobCipher(), opts.threads);
  try {
    progress.phase('tree');
    const walk = await walkTree(repo, backupId, snap, selection, { ...deps, progress });
    Object.assign(out.counts, walk.counts);
    if (walk.drawn !== undefined) out.drawn = { files: walk.drawn.files, bytes: walk.drawn.bytes };
    if (walk.complete) out.levels.push('tree');

    progress.phase('packs');
    out.counts.packs = walk.packs.size;
    const stats = await statPacks(repo.backend, walk.packs, backupId, { ...deps, progress });
    out.levels.push('packs');

    const manifest = walk.manifest;
    if (manifest !== undefined) progress.phase('render');
    const rendering =
      manifest === undefined ? Promise.resolve(undefined) : renderFileList(repo, backupId, snap, manifest, deps);
    // awaited below, after the read; an abort may reject it before that, which must not count as unhandled
    rendering.catch(() => undefined);
    const rendered = async (): Promise<void> => {
      const sha256 = await rendering;
      if (sha256 === undefined) return;
      out.manifestSha256 = sha256;
      out.levels.push('render');
    };
    const planner = walk.planner;
    if (pool === undefined || planner === undefined) {
      await rendered();
      return out;
    }

    // the render's second walk runs while the packs are read
    let found: ReadDataFindings & { recorded?: string };
    try {
      found = await verifyData(repo, backupId, snap, selection, walk, stats, {
        opts,
        reporter: ctx.reporter,
        pool,
        planner,
        scratch,
        progress,
      });
    } finally {
      await rendered();
    }
    Object.assign(out.counts, found.counts);
    for (const p of found.problems) findings.problem(p);
    if (found.recorded !== undefined) out.recorded = found.recorded;
    if (found.complete) out.levels.push(selection.mode === 'all' ? 'read-data' : 'read-data-subset');
    return out;
  } finally {
    await pool?.close();
  }
}

/**
 * Record the damage read-data found (src/repository/damage.ts): missing packs, packs whose bytes or size are
 * wrong, and blobs that do not open, so that the next backup stores them again. Read errors prove nothing and are
 * not recorded. A verify that cannot write says so and still reports what it found.
 */
async function recordFound(
  repo: Repository,
  stats: PackStats,
  checks: PackChecks,
  reporter: ProgressReporter,
): Promise<string | undefined> {
  const damage = (err: unknown): boolean =>
    err instanceof FoleBackupError && (err.code === 'CHECKSUM_MISMATCH' || err.code === 'REPO_CORRUPT');
  const blobs: [string, string][] = [];
  for (const [id, err] of checks.failed) {
    const pack = repo.index.get(id)?.pack;
    if (pack !== undefined && damage(err)) blobs.push([pack, id]);
  }
  const damagedPacks = [
    ...[...stats.bad].filter((p) => !stats.missing.has(p)),
    ...checks.packProblems.filter((p) => damage(p.error)).map((p) => p.pack),
    ...blobs.map(([p]) => p),
  ];
  try {
    return await recordNewDamage(repo, repo.damage, { packs: stats.missing, damagedPacks, blobs }, 'verify');
  } catch (err) {
    if (isAbort(err)) throw err;
    reporter.warn(
      `the damage found could not be recorded in the repository (${err instanceof Error ? err.message : err}): ` +
        'a backup may still reuse the damaged data; run verify again with write access',
    );
    return undefined;
  }
}

/**
 * The read-data stage: read and check the planned packs and files, walk the
 * tree again for the one-chunk files a damaged chunk affects, and judge it all.
 */
async function verifyData(
  repo: Repository,
  backupId: string,
  snap: Snapshot,
  selection: DataSelection,
  walk: TreeWalk,
  stats: PackStats,
  ctx: {
    opts: VerifyOptions;
    reporter: ProgressReporter;
    pool: PackPool;
    planner: ReadPlanner;
    scratch: ScratchDir;
    progress: VerifyProgress;
  },
): Promise<ReadDataFindings & { recorded?: string }> {
  const { opts, progress } = ctx;
  const plan = ctx.planner.finish(stats.bad);
  progress.phase('read-data');
  const { checks, outcomes } = await readData(repo, plan, {
    pool: ctx.pool,
    whole: selection.mode === 'all',
    packSizes: stats.sizes,
    maxPacks: opts.concurrency,
    scratchFile: () => ctx.scratch.file(),
    signal: opts.signal,
    progress,
  });
  // a one-chunk file is as good as its chunk: only when a chunk failed (or opened to another
  // length than the index says) is the tree walked again to find the files it affects
  const fallbackPath = walk.drawn?.fallbackPath;
  const judge = (e: TreeEntry): OneChunkProblem | undefined =>
    oneChunkProblem(e, checks, {
      locate: (id) => repo.index.get(id),
      badPacks: stats.bad,
      selected: (path) => isSelected(selection, path, fallbackPath),
    });
  const again =
    checks.failed.size > 0 || checks.lengths.size > 0
      ? await walkAgain(repo, snap.tree, walk.entries, judge, opts.signal)
      : { found: [] };
  const recorded = await recordFound(repo, stats, checks, ctx.reporter);
  const found = readDataFindings(
    {
      plan,
      checks,
      outcomes,
      oneChunk: again.found.map((f) => ({
        seq: f.seq,
        path: f.entry.path,
        size: f.entry.size ?? 0,
        problem: f.result,
      })),
      ...(again.failure === undefined ? {} : { secondWalkFailure: again.failure }),
      treeComplete: walk.complete,
      packs: walk.packs,
      treeBlobs: selection.mode === 'all' ? snap.tree : [],
    },
    backupId,
  );
  return recorded === undefined ? found : { ...found, recorded };
}
