/**
 * Making a backup: the orchestration of its stages, each a module of its own
 * with plain data between them.
 *
 *   check the STORAGE_ROOT and keep the repository and staging apart from it
 *                                                     (check-storage-root.ts)
 *   shared repository lock, load the index, find the parent (an incremental),
 *   the Global Storage Lock (storage:global in core/core.db), private staging
 *   plan:  scan the STORAGE_ROOT once, in tree order, into a spool (in memory up
 *          to a byte budget, then on disk), each path with its entry in the
 *          parent backup; note every database                      (plan.ts)
 *   capture: once the scan is done, every database at one instant into staging
 *          (quiesce, Online Backup API, integrity_check; our lock row removed
 *          from the core.db copy); each copy is stored as soon as it is made
 *                                                    (capture-databases.ts)
 *   save files: from the spool while the scan still walks, beside the capture;
 *          keep what is unchanged, store the rest as chunks; saved entries wait
 *          for the databases ahead of them in a second spool  (save-files.ts)
 *   save tree: the saved entries in tree order as tree blobs, and the
 *          manifest                                            (save-tree.ts)
 *   flush packs, then the index; write the snapshot last, once both locks are
 *          still ours and every re-used pack still exists, so a snapshot that
 *          exists is complete and a crash before leaves only unreferenced
 *          packs                                          (write-snapshot.ts)
 *   release the storage lock and the repository lock, remove staging
 */
import { randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { localRealPath } from '../backend/open.js';
import { type ProgressReporter, silentReporter } from '../progress/reporter.js';
import { RepositoryLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { checkBackupLabels } from '../snapshot/fields.js';
import type { SnapshotStats } from '../snapshot/snapshot.js';
import { readTreeBatches } from '../snapshot/tree.js';
import { isFoleDatabasePath } from '../storage/fole-layout.js';
import { acquireStorageLock, type HeldStorageLock } from '../storage/global-lock.js';
import { captureStorageDatabases, DatabaseOutcomes } from './capture-databases.js';
import { checkApart, checkStorageRoot } from './check-storage-root.js';
import { FilePool, type StoreRequest } from './file-pool.js';
import { BackupNotes } from './notes.js';
import { findParent, PLANNED_BUDGET, type PlannedEntry, planBackup, plannedSize } from './plan.js';
import { FileProgress } from './progress.js';
import { saveFiles, storeDatabaseCopy } from './save-files.js';
import { TreeSaver } from './save-tree.js';
import { Spool } from './spool.js';
import { makeStaging } from './staging.js';
import { makeMemoryStaging } from './memory-staging.js';
import { buildSnapshot, writeSnapshot } from './write-snapshot.js';
import { currentUser } from '../host/current-user.js';
import { throwIfAborted } from '../errors.js';

export { checkStorageRoot } from './check-storage-root.js';

/** The storage spec version this tool understands and records by default. */
export const STORAGE_SPEC_VERSION = '1.1.0';

/** What to back up and how: the STORAGE_ROOT, the FOLE version it runs, who asks, full or incremental, and the
 * limits on waiting, staging and threads. */
export interface BackupOptions {
  storageRoot: string;
  /** Version of the FOLE server that owns the STORAGE_ROOT (recorded; restore compares it). */
  foleVersion: string;
  /** Who asked for the backup (the manifest's createdBy). Default: user@host. */
  actor?: string;
  actorKind?: 'human' | 'agent';
  /** The newest audit entry as the backup begins, recorded in its snapshot (docs/TRUST.md). */
  auditHead?: { seq: number; digest: string };
  tags?: string[];
  storageSpecVersion?: string;
  /** Parent directory for the private staging area (default: OS temp dir). Needs room for every DB snapshot. */
  stagingParent?: string;
  /** How long to wait for SQLite writers to release their locks. */
  busyTimeoutMs?: number;
  /** How long to wait for another holder of the Global Storage Lock. */
  storageLockWaitMs?: number;
  /**
   * Incremental: take the latest backup of the same STORAGE_ROOT (same host) as
   * parent and re-read only what changed since. The result is still a complete,
   * self-sufficient backup. Without a parent it falls back to a full backup.
   */
  incremental?: boolean;
  /** Use this backup as the parent (implies incremental). */
  parent?: string;
  /** Files in flight at once (results are written in tree order). */
  concurrency?: number;
  /** Worker threads that read, hash, compress and encrypt (default: one per core, at most 4). */
  threads?: number;
  reporter?: ProgressReporter;
  signal?: AbortSignal;
}

/** What a backup did: its id and kind, every figure of its snapshot's stats, and what it left out. */
export type BackupResult = Required<SnapshotStats> & {
  /** Files and databases of the parent backup that this one no longer holds (0 for a full backup). */
  filesDeleted: number;
  backupId: string;
  type: 'full' | 'incremental';
  createdAt: string;
  /** The parent backup an incremental compared against. */
  parent?: string;
  skipped: { path: string; reason: string }[];
  skippedCount: number;
  warnings: string[];
};

function defaultActor(): string {
  return `${currentUser()}@${hostname()}`;
}

/** Take a full backup of a STORAGE_ROOT into `repo`. The repository must be open (index is loaded here). */
export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const signal = opts.signal;
  const host = hostname();
  // the default (user@host) is checked too: a host name can hold anything its administrator set
  const actor = opts.actor ?? defaultActor();
  checkBackupLabels(
    { foleVersion: opts.foleVersion, actor, tags: opts.tags },
    opts.actor === undefined ? { actor: 'the default actor (user@host; give --actor instead)' } : {},
  );
  const root = await checkStorageRoot(opts.storageRoot);
  const forbidden = await checkApart(root, await localRealPath(repo.backend), opts.stagingParent);
  // the root has no tree entry: its owner and mode travel in the snapshot
  const rootStat = await stat(root);
  const notes = new BackupNotes(reporter);

  const repoLock = await RepositoryLock.acquire(repo, {
    exclusive: false,
    operation: 'backup',
    onStale: (l) =>
      notes.warn(
        `ignoring stale repository lock ${l.name.slice(0, 12)} (${l.stale}); \`fole-backup unlock\` removes it`,
      ),
  });
  let staging: string | undefined;
  let inMemory: string | undefined;
  let pool: FilePool | undefined;
  let pendingCapture: Promise<unknown> | undefined;
  let stopWork: AbortController | undefined;
  let storageLock: HeldStorageLock | undefined;
  try {
    reporter.phase('load index');
    // the index loads while the parent is found and the file workers start (each on a
    // thread of its own): neither needs it
    const indexLoaded = repo.loadIndex(signal);
    indexLoaded.catch(() => undefined);
    const parent =
      opts.incremental || opts.parent !== undefined
        ? await findParent(repo, root, host, opts.parent, notes.warn)
        : undefined;
    const filePool = new FilePool(repo, opts.threads);
    pool = filePool;
    await indexLoaded;
    repo.trackReusedPacks();
    const addedBefore = repo.addedBytes;
    storageLock = await acquireStorageLock({
      storageRoot: root,
      waitMs: opts.storageLockWaitMs ?? 0,
      onTakeover: (stale, reason) => notes.warn(`took over stale storage lock held by ${stale.owner} (${reason})`),
    });
    const stagingDir = await makeStaging(opts.stagingParent);
    staging = stagingDir;
    const memoryStaging = await makeMemoryStaging({ stagingParent: opts.stagingParent, root });
    inMemory = memoryStaging?.dir;

    reporter.phase('scan and store files');
    const stop = new AbortController();
    stopWork = stop;
    const workSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    const progress = new FileProgress(reporter);
    const spool = new Spool<PlannedEntry>(join(stagingDir, 'scan'), { budget: PLANNED_BUDGET, sizeOf: plannedSize });
    const store = (req: StoreRequest) => filePool.store(req);
    const outcomes = new DatabaseOutcomes();

    // plan: the scan fills the spool while the file stage below already stores from it
    const scanning = planBackup(
      { root, forbidden, ...(parent ? { parentTree: readTreeBatches(repo, parent.tree) } : {}), signal: workSignal },
      spool,
      { warn: notes.warn, skip: notes.skip, found: (size) => progress.found(size) },
    );
    // capture: once the scan has found every database; it overlaps the file stage
    scanning.then(
      () => progress.scanDone(),
      () => undefined,
    );
    const capturing = scanning.then((plan) => {
      reporter.phase('capture databases and store files');
      const input = {
        root,
        databases: plan.databases,
        stagingDir,
        ...(memoryStaging === undefined ? {} : { memoryStaging }),
        ...(opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs }),
        parentDatabases: parent?.databases ?? [],
        signal: workSignal,
      };
      return captureStorageDatabases(input, outcomes, storeDatabaseCopy(store, repo.config.dbChunkSize, progress));
    });
    pendingCapture = capturing;
    // a failed scan or capture stops the file work at once (it is rethrown where awaited)
    capturing.then(
      () => outcomes.finish(),
      (err: unknown) => {
        stop.abort();
        spool.fail(err);
        outcomes.fail(err);
      },
    );

    // save files, and the tree in order
    const tree = new TreeSaver(repo);
    const files = {
      root,
      entries: spool.read(),
      store,
      chunkSize: repo.config.fileChunkSize,
      hasBlob: (id: string) => repo.hasBlob(id),
      databases: outcomes,
      ...(opts.concurrency === undefined ? {} : { concurrency: opts.concurrency }),
      spoolPrefix: join(stagingDir, 'saved'),
      signal: workSignal,
      failure: capturing,
      notes,
      progress,
    };
    await saveFiles(files, (saved) => tree.add(saved));
    await filePool.drain();
    const capture = await capturing;
    const plan = await scanning;
    const saved = await tree.finish();

    // data and index durable, then the snapshot, last
    reporter.phase('write index');
    throwIfAborted(signal);
    await repo.flush();
    const snap = buildSnapshot(saved, {
      backupId: randomUUID(),
      createdAt: capture.capturedAt,
      host,
      storageRoot: root,
      root: { mode: rootStat.mode & 0o7777, uid: rootStat.uid, gid: rootStat.gid },
      actor: { name: actor, kind: opts.actorKind ?? 'human' },
      ...(opts.auditHead === undefined ? {} : { auditHead: opts.auditHead }),
      tags: opts.tags ?? [],
      ...(parent ? { parent: parent.backupId } : {}),
      foleVersion: opts.foleVersion,
      storageSpecVersion: opts.storageSpecVersion ?? STORAGE_SPEC_VERSION,
      writersBlockedMs: capture.writersBlockedMs,
      bytesRead: progress.bytesRead,
      addedBytes: repo.addedBytes - addedBefore,
      durationMs: Date.now() - started,
      skipped: notes.skipped,
      skippedCount: notes.skippedCount,
      warnings: notes.warnings,
    });
    reporter.phase('write snapshot');
    // the last moment a stop can be honoured: once the snapshot is written, the backup exists
    throwIfAborted(signal);
    const foleDatabases = plan.databases.filter(isFoleDatabasePath);
    await writeSnapshot(repo, snap, { repoLock, storageLock, foleDatabases });
    // the snapshot's own figures, finished with what writing it cost
    return {
      ...snap.stats,
      filesDeleted: parent === undefined ? 0 : parent.stats.files - saved.counts.inParent,
      addedBytes: repo.addedBytes - addedBefore,
      durationMs: Date.now() - started,
      backupId: snap.backupId,
      type: snap.type,
      createdAt: snap.createdAt,
      ...(parent ? { parent: parent.backupId } : {}),
      skipped: notes.skipped,
      skippedCount: notes.skippedCount,
      warnings: notes.warnings,
    };
  } catch (err) {
    stopWork?.abort();
    repo.discardPending();
    throw err;
  } finally {
    // the capture writes into staging: it must have stopped before staging goes
    await pendingCapture?.catch(() => undefined);
    await pool?.close();
    for (const dir of [staging, inMemory])
      if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => {});
    if (storageLock !== undefined)
      await storageLock.release().catch((err: unknown) => notes.warn(`release storage lock: ${String(err)}`));
    await repoLock.release().catch(() => {});
  }
}
