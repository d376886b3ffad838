/**
 * The last stage: the snapshot, which makes a backup visible. It is written
 * after the data and the index are durable, and only once nothing it relies on
 * has changed under it (FOLE's databases all recorded, both locks still ours,
 * every re-used pack still there): a snapshot that exists is complete, and a
 * backup that fails before leaves only unreferenced packs for the next prune.
 */
import { FoleBackupError } from '../errors.js';
import type { BlobWriter, SealedObjects } from '../repository/slices.js';
import type { ManifestHead, RootMetadata, Snapshot, SnapshotDatabase, SnapshotStats } from '../snapshot/snapshot.js';
import { saveSnapshot } from '../snapshot/store.js';
import { CORE_DB } from '../storage/fole-layout.js';
import type { SavedTree } from './save-tree.js';

/** Everything a snapshot records besides what the tree stage saved. */
export interface SnapshotFields {
  backupId: string;
  /** The capture instant (ISO UTC). */
  createdAt: string;
  host: string;
  storageRoot: string;
  root: RootMetadata;
  actor: Snapshot['actor'];
  auditHead?: Snapshot['auditHead'];
  tags: string[];
  /** The parent backup of an incremental. */
  parent?: string;
  foleVersion: string;
  storageSpecVersion: string;
  /** Figures only the orchestration knows. */
  writersBlockedMs: number;
  bytesRead: number;
  addedBytes: number;
  durationMs: number;
  skipped: Snapshot['skipped'];
  skippedCount: number;
  warnings: string[];
}

/** The snapshot of a backup (pure: no I/O). */
export function buildSnapshot(saved: SavedTree, f: SnapshotFields): Snapshot & { stats: Required<SnapshotStats> } {
  const head: Omit<ManifestHead, 'modules' | 'projects' | 'core'> = {
    backupId: f.backupId,
    createdAt: f.createdAt,
    createdBy: f.actor.name,
    foleVersion: f.foleVersion,
    storageSpecVersion: f.storageSpecVersion,
  };
  // inParent is the backup's result only (filesDeleted): the snapshot's stats keep their stored form
  const { files, dirs, bytes, inParent: _, ...counts } = saved.counts;
  return {
    formatVersion: 1,
    backupId: f.backupId,
    type: f.parent === undefined ? 'full' : 'incremental',
    ...(f.parent === undefined ? {} : { parent: f.parent }),
    tags: f.tags,
    createdAt: f.createdAt,
    host: f.host,
    storageRoot: f.storageRoot,
    root: f.root,
    actor: f.actor,
    ...(f.auditHead === undefined ? {} : { auditHead: f.auditHead }),
    manifest: saved.manifest.head(head),
    tree: saved.tree,
    stats: {
      files,
      dirs,
      databases: saved.databases.length,
      bytes,
      addedBytes: f.addedBytes,
      durationMs: f.durationMs,
      writersBlockedMs: f.writersBlockedMs,
      bytesRead: f.bytesRead,
      ...counts,
    },
    databases: saved.databases,
    skipped: f.skipped,
    skippedCount: f.skippedCount,
    warnings: f.warnings,
  };
}

/** What must still hold when the snapshot is written. */
export interface Foundations {
  /** The repository lock the backup ran under (RepositoryLock.verify). */
  repoLock: { verify(): Promise<void> };
  /** The Global Storage Lock (HeldStorageLock.confirm). */
  storageLock?: { confirm(): void };
  /** The FOLE databases the scan found. */
  foleDatabases: readonly string[];
}

/** Write `snap` once the foundations it relies on are confirmed (or throw, writing nothing). */
export async function writeSnapshot(
  repo: SealedObjects & Pick<BlobWriter, 'reusedPacks'>,
  snap: Snapshot,
  foundations: Foundations,
): Promise<void> {
  confirmFoleDatabases(snap.storageRoot, foundations.foleDatabases, snap.databases);
  await foundations.repoLock.verify();
  foundations.storageLock?.confirm();
  await confirmReusedPacks(repo);
  await saveSnapshot(repo, snap);
}

/**
 * Before the snapshot makes a backup visible: every database of FOLE's the scan
 * found, and core.db in any case (checkStorageRoot found it), is recorded as a
 * database. A FOLE database missing from the snapshot means the tree changed
 * under the backup where it matters (a directory swapped while it ran), and a
 * backup without it is not a backup.
 */
export function confirmFoleDatabases(
  root: string,
  found: readonly string[],
  recorded: readonly SnapshotDatabase[],
): void {
  const have = new Set(recorded.map((d) => d.path));
  const missing = [...new Set([CORE_DB, ...found])].filter((p) => !have.has(p));
  if (missing.length > 0) {
    throw new FoleBackupError(
      'READ_ERROR',
      `backup of ${root}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not recorded as a database; ` +
        'no snapshot was written',
      {
        path: missing[0] as string,
        hint:
          "FOLE's databases changed (vanished, moved or replaced) while the backup ran; " +
          'find out what changes the STORAGE_ROOT, then run the backup again',
      },
    );
  }
}

/**
 * Every pack the backup re-uses (instead of storing its blobs again) still
 * exists. A backup suspended past its lease (SIGSTOP, a VM pause) may have been
 * judged stale meanwhile, and a prune may have deleted what it re-uses: its
 * snapshot would point at nothing. LOCK_LOST then, and no snapshot; what it
 * stored is garbage for the next prune. (The lock checks before this one catch
 * the same case when the lock itself is gone.)
 */
async function confirmReusedPacks(repo: Pick<BlobWriter, 'backend' | 'reusedPacks'>): Promise<void> {
  const reused = repo.reusedPacks();
  if (reused.size === 0) return;
  const stored = new Set<string>();
  for await (const o of repo.backend.list('data')) stored.add(o.name);
  const gone = [...reused].filter((p) => !stored.has(p));
  if (gone.length > 0) {
    throw new FoleBackupError(
      'LOCK_LOST',
      `backup: ${gone.length} pack${gone.length === 1 ? '' : 's'} it re-uses ${gone.length === 1 ? 'was' : 'were'} ` +
        `deleted while it ran (e.g. data/${gone[0]}); no snapshot was written`,
      {
        hint:
          "another process (a prune that judged this backup's lock stale) changed the repository meanwhile; " +
          'run the backup again',
      },
    );
  }
}
