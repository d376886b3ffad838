/**
 * Prune: remove data no backup references, under the exclusive repository lock.
 *
 * The order is what makes a SIGKILL at any instant harmless (every remaining
 * backup stays restorable, `check --read-data` passes):
 *
 *   1. find used blobs (every snapshot's tree) and what every pack holds (index files)
 *   2. plan (src/prune/plan.ts, pure)
 *   3. copy the used blobs of packs to repack into NEW packs  (killed: orphan packs)
 *   4. write NEW index files for kept + new packs             (killed: old and new
 *                                                              indexes overlap: fine)
 *   5. confirm the lock is still ours, then delete every OLD   (killed: the new ones
 *      index file (those read in 1, never one written since)   cover everything kept)
 *   6. delete obsolete packs: no index refers to them any more (killed: orphan packs,
 *                                                              removed by the next prune)
 *
 * Packs younger than minPackAgeMs are left alone (see plan.ts).
 * Snapshots are never touched here; `forget` removes them first.
 */
import type { ObjectHandle } from '../backend/backend.js';
import { FoleBackupError, StopError } from '../errors.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import { RepositoryLock } from '../repository/lock.js';
import type { PackedBlob } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import { describeDamaged, scanSnapshots } from '../snapshot/store.js';
import { readTree } from '../snapshot/tree.js';
import { missingBlobs, planPrune, type PrunePlan, type PrunePlanOptions } from './plan.js';
import { removeTemporaryFiles } from './temporary-files.js';

/** How `prune` runs: dry run, minimum pack age, how much unused space to tolerate, cancellation. */
export interface PruneOptions extends PrunePlanOptions {
  dryRun?: boolean;
  /**
   * With dryRun: plan as if these backups were already forgotten (what `forget --dry-run` shows prune would then
   * free). Ignored by a real run, which only ever frees what no backup in the repository uses.
   */
  without?: ReadonlySet<string>;
  /** Leftover temp files untouched this long are removed (default an hour: see temporary-files.ts). */
  tempFileMinAgeMs?: number;
  reporter?: ProgressReporter;
  signal?: AbortSignal;
  /**
   * Called under the exclusive lock with the plan and what it rests on, before anything is removed: an
   * approved prune (approval-plan.ts) throws here when the plan is no longer the one a human approved.
   */
  onPlan?: (planned: PlannedPrune) => void | Promise<void>;
}

/** A prune plan and what it rests on: the backups whose data it keeps, and every blob they use. */
export interface PlannedPrune {
  plan: PrunePlan;
  backups: readonly string[];
  used: ReadonlySet<string>;
}

/** What `prune` removed, repacked and kept, and the space freed. */
export interface PruneResult {
  dryRun: boolean;
  plan: PrunePlan['stats'] & { keepPacks: number; repackPacks: number; removePacks: number };
  newPacks: number;
  indexFilesWritten: number;
  indexFilesRemoved: number;
  /** Leftover temporary files removed (with dryRun: that would be). */
  tempFilesRemoved: number;
  /** Objects prune would have removed but kept because they are under retention (S3 Object Lock). */
  retainedObjects?: number;
  durationMs: number;
}

const BLOBS_PER_INDEX_FILE = 50_000;

/**
 * Every blob id any backup in the repository uses (tree blobs and content
 * chunks). A damaged snapshot's blobs cannot be known, and deleting them could
 * destroy the only copy of a backup that a copy of its snapshot file would
 * bring back: StopError MISSING_MANIFEST naming the damaged backups.
 */
async function usedBlobs(
  repo: Repository,
  signal?: AbortSignal,
  without?: ReadonlySet<string>,
): Promise<{ used: Set<string>; backups: string[] }> {
  const used = new Set<string>();
  const scan = await scanSnapshots(repo);
  const snapshots = without === undefined ? scan.snapshots : scan.snapshots.filter((s) => !without.has(s.backupId));
  const damaged = without === undefined ? scan.damaged : scan.damaged.filter((d) => !without.has(d.backupId));
  if (damaged.length > 0) {
    throw new StopError(
      'MISSING_MANIFEST',
      `prune refused: ${describeDamaged(damaged, 'the data they use cannot be told apart from garbage')}`,
      {
        hint:
          `restore the damaged files in snapshots/ from a copy of the repository, or remove those backups ` +
          `with \`fole-backup forget ${damaged.map((d) => d.backupId).join(' ')}\`; then run prune again. ` +
          `Nothing was changed`,
      },
    );
  }
  for (const snap of snapshots) {
    for (const id of snap.tree) used.add(id);
    for await (const e of readTree(repo, snap.tree)) {
      signal?.throwIfAborted();
      for (const c of e.chunks ?? []) used.add(c);
    }
  }
  return { used, backups: snapshots.map((s) => s.backupId) };
}

/** Free the space of backups that were forgotten: repack what is still used, delete packs nothing uses (never
 * younger than `minPackAge`), under the exclusive lock and safe to kill at any instant. */
export async function prune(repo: Repository, opts: PruneOptions = {}): Promise<PruneResult> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  // a dry run only reads: a shared lock, so it can run beside a backup
  const lock = await RepositoryLock.acquire(repo, {
    exclusive: opts.dryRun !== true,
    operation: 'prune',
    onStale: (l) => reporter.warn(`ignoring stale repository lock ${l.name.slice(0, 12)} (${l.stale})`),
  });
  try {
    reporter.phase('find used data');
    await repo.loadIndex(opts.signal);
    const { used, backups } = await usedBlobs(repo, opts.signal, opts.dryRun === true ? opts.without : undefined);

    reporter.phase('read index');
    const oldIndexFiles = await repo.listIndexFiles();
    const packs = new Map<string, Map<string, PackedBlob>>();
    /** The packs each old index file names: one under retention keeps them (it still refers to them). */
    const packsOf = new Map<string, string[]>();
    for (const name of oldIndexFiles) {
      const listed = await repo.readIndexFile(name);
      packsOf.set(
        name,
        listed.map((p) => p.name),
      );
      for (const p of listed) {
        const blobs = packs.get(p.name) ?? new Map<string, PackedBlob>();
        for (const b of p.blobs) blobs.set(b.id, b);
        packs.set(p.name, blobs);
      }
    }
    const stored: { name: string; size: number }[] = [];
    for await (const o of repo.backend.list('data')) stored.push(o);
    const storedSize = new Map(stored.map((s) => [s.name, s.size]));
    // a recorded pack still here or still indexed: its good and bad blobs are repair's to sort, not prune's
    const unrepaired = [...repo.damage.recordedPacks()].filter((p) => storedSize.has(p) || packs.has(p));
    if (unrepaired.length > 0) {
      throw new FoleBackupError(
        'REPO_CORRUPT',
        `prune refused: ${unrepaired.length} packs recorded as damaged or missing are still in the repository or ` +
          `its index (e.g. ${unrepaired[0]})`,
        { hint: 'run `fole-backup repair` first (`--dry-run` shows what it would do); nothing was changed' },
      );
    }
    const absent = [...packs.keys()].filter((p) => !storedSize.has(p));
    if (absent.length > 0) {
      throw new FoleBackupError(
        'REPO_CORRUPT',
        `prune: ${absent.length} packs listed in the index are missing (e.g. ${absent[0]})`,
        {
          hint: 'run `fole-backup check` first; prune refuses to work on a damaged repository',
        },
      );
    }
    const indexed = [...packs.entries()].map(([name, blobs]) => ({
      name,
      size: storedSize.get(name) ?? 0,
      blobs: [...blobs.values()],
    }));
    // blobs repair recorded as lost are known to be missing: they neither stop prune nor keep anything
    const missing = missingBlobs(indexed, used).filter((id) => repo.damage.lost(id) === undefined);
    if (missing.length > 0) {
      throw new FoleBackupError(
        'REPO_CORRUPT',
        `prune: ${missing.length} blobs used by backups are in no pack (e.g. ${missing[0]})`,
        {
          hint: 'run `fole-backup check`; prune refuses to work on a damaged repository',
        },
      );
    }
    const plan = planPrune(indexed, stored, used, opts);
    await opts.onPlan?.({ plan, backups, used });

    reporter.phase('remove leftover temporary files');
    const tempFilesRemoved = await removeTemporaryFiles(repo.backend, {
      minAgeMs: opts.tempFileMinAgeMs,
      dryRun: opts.dryRun,
    });
    const summary = {
      ...plan.stats,
      keepPacks: plan.keep.length,
      repackPacks: plan.repack.length,
      removePacks: plan.remove.length,
    };
    if (opts.dryRun || (plan.remove.length === 0 && plan.repack.length === 0)) {
      return {
        dryRun: opts.dryRun === true,
        plan: summary,
        newPacks: 0,
        indexFilesWritten: 0,
        indexFilesRemoved: 0,
        tempFilesRemoved,
        durationMs: Date.now() - started,
      };
    }

    // 3. repack
    reporter.phase('repack');
    let done = 0;
    const total = plan.repack.reduce((n, r) => n + r.blobs.length, 0);
    repo.trackWrittenPacks();
    for (const r of plan.repack) {
      for (const id of r.blobs) {
        opts.signal?.throwIfAborted();
        const entry = packs.get(r.pack)?.get(id) as PackedBlob;
        await repo.saveBlob(entry.type, id, await repo.loadBlob(id), { evenIfIndexed: true });
        reporter.progress({ files: ++done, bytes: 0, totalFiles: total });
      }
    }
    await repo.flush();
    const newPacks = repo.takeWrittenPacks();

    // 4. new index files: kept packs as they are, plus the new packs
    reporter.phase('write index');
    const keep = new Set(plan.keep);
    const batches: { name: string; blobs: PackedBlob[] }[][] = [[]];
    let inBatch = 0;
    const add = (name: string, blobs: PackedBlob[]): void => {
      if (inBatch > 0 && inBatch + blobs.length > BLOBS_PER_INDEX_FILE) {
        batches.push([]);
        inBatch = 0;
      }
      (batches[batches.length - 1] as { name: string; blobs: PackedBlob[] }[]).push({ name, blobs });
      inBatch += blobs.length;
    };
    for (const [name, blobs] of packs) if (keep.has(name)) add(name, [...blobs.values()]);
    for (const p of newPacks) add(p.name, p.blobs);
    const written = new Set<string>();
    for (const batch of batches) if (batch.length > 0) written.add(await repo.writeIndexFile(batch));

    // 5. old index files go; 6. then the packs nothing refers to any more
    reporter.phase('delete');
    // suspended past its lease, this prune may have been judged stale and a backup may
    // have indexed new data since: delete nothing then
    await lock.verify();
    let indexFilesRemoved = 0;
    // Object Lock: what is under retention stays, and so do the packs a retained index file names
    const retained = async (h: ObjectHandle): Promise<boolean> => (await repo.backend.retainedUntil?.(h)) !== undefined;
    const keptRetained = new Set<string>();
    let retainedObjects = 0;
    for (const name of oldIndexFiles) {
      if (written.has(name)) continue;
      if (await retained({ type: 'index', name })) {
        for (const p of packsOf.get(name) ?? []) keptRetained.add(p);
        retainedObjects++;
        continue;
      }
      await repo.backend.remove({ type: 'index', name });
      indexFilesRemoved++;
    }
    for (const name of plan.remove) {
      opts.signal?.throwIfAborted();
      if (keptRetained.has(name) || (await retained({ type: 'data', name }))) {
        retainedObjects++;
        continue;
      }
      await repo.backend.remove({ type: 'data', name });
    }
    if (retainedObjects > 0) {
      reporter.warn(
        `${retainedObjects} objects under retention (Object Lock) were kept; a prune after their retention ends ` +
          'removes them',
      );
    }
    return {
      dryRun: false,
      plan: summary,
      newPacks: newPacks.length,
      indexFilesWritten: written.size,
      indexFilesRemoved,
      tempFilesRemoved,
      ...(retainedObjects > 0 ? { retainedObjects } : {}),
      durationMs: Date.now() - started,
    };
  } finally {
    await lock.release().catch(() => {});
  }
}
