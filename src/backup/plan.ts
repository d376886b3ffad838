/**
 * The plan stage: walk the STORAGE_ROOT once, in tree order, and hand each
 * record on with what the rest of the backup needs to know about it —
 *
 *   the parent backup's entry for the same path (an incremental), found by a
 *     merge join with the parent's tree, so its file list is never held in memory
 *   whether it is read as a SQLite database: every file where FOLE keeps one,
 *     and any other file whose header says SQLite (unless the parent's entry
 *     proves it the same unchanged regular file)
 *
 * Records go out as they are planned (the file stage stores them while the walk
 * goes on); the list of databases comes back at the end, for the capture.
 */
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { FoleBackupError, throwIfAborted } from '../errors.js';
import { isPlainName } from '../fs/byte-names.js';
import type { SealedObjects } from '../repository/slices.js';
import { comparePaths, type Snapshot, type TreeEntry } from '../snapshot/snapshot.js';
import { describeDamaged, loadSnapshot, resolveBackupId, scanSnapshots } from '../snapshot/store.js';
import { printable } from '../snapshot/validate.js';
import { checkFoleDatabaseFile, isSqliteFile, mayBeSqlite } from '../sqlite/detect.js';
import { isFoleDatabasePath, leadsToFoleDatabase } from '../storage/fole-layout.js';
import { type ForbiddenDir, type ScanRecord, scanTree } from '../storage/scan.js';
import type { NoteSink } from './notes.js';
import { estimatedSize } from './spool.js';

/** A scanned record, marked when it is to be read as a SQLite database. */
export interface PlannedRecord extends ScanRecord {
  sqlite?: true;
}

/** A record with the parent backup's entry for the same path, if any (never for a directory). */
export interface PlannedEntry {
  record: PlannedRecord;
  prev?: TreeEntry;
}

/**
 * Estimated bytes of planned entries held in memory while the file stage is behind the
 * scan (it always is on a large tree: the scan only reads metadata); the rest waits on
 * disk. The scan must not wait for the file stage: the capture starts only once it is done.
 */
export const PLANNED_BUDGET = 16 * 1024 * 1024;

/** A planned entry's estimated size in memory (Spool). */
export function plannedSize({ record, prev }: PlannedEntry): number {
  return estimatedSize(record.path, prev?.chunks?.length ?? 0);
}

export interface PlanInput {
  /** The STORAGE_ROOT's real path. */
  root: string;
  /** Directories the walk must refuse to enter (the repository, the staging area). */
  forbidden: readonly ForbiddenDir[];
  /** The parent backup's tree, in tree order, a tree blob's entries at a time (readTreeBatches); absent in a full
   * backup. */
  parentTree?: AsyncIterable<readonly TreeEntry[]>;
  signal: AbortSignal;
}

/** Where planned entries go, in tree order (a Spool). */
export interface PlanOutput {
  push(entries: readonly PlannedEntry[]): Promise<void>;
  end(): Promise<void>;
}

export interface PlanEvents extends NoteSink {
  /** The walk found a regular file of `size` bytes (progress totals). */
  found(size: number): void;
}

export interface BackupPlan {
  /** Every file to be captured as a SQLite database, in tree order. */
  databases: string[];
}

/** Walk the STORAGE_ROOT into `out`, planned entry by planned entry; resolves once every entry is out. */
export async function planBackup(input: PlanInput, out: PlanOutput, events: PlanEvents): Promise<BackupPlan> {
  const { root, signal } = input;
  const databases: string[] = [];
  const cursor = new ParentCursor(input.parentTree?.[Symbol.asyncIterator]());
  for await (const batch of scanTree(root, (s) => events.skip(s.path, s.reason), { forbidden: input.forbidden })) {
    throwIfAborted(signal);
    const planned: PlannedEntry[] = [];
    for (const r of batch) {
      if (r.kind === 'symlink' && leadsToFoleDatabase(r.path)) throw symlinkedFolePlace(root, r.path);
      let prev: TreeEntry | undefined;
      if (r.kind !== 'dir') {
        const read = cursor.findRead(r.path);
        prev = read === MORE ? await cursor.find(r.path) : read;
      }
      const record: PlannedRecord = r;
      if (r.kind === 'file') {
        events.found(r.size);
        if (readAsDatabase(root, r, prev, events)) {
          record.sqlite = true;
          databases.push(r.path);
        }
      }
      planned.push(prev === undefined ? { record } : { record, prev });
    }
    await out.push(planned);
  }
  await out.end();
  return { databases };
}

/** Whether the file `r` is to be captured as a SQLite database. */
function readAsDatabase(root: string, r: ScanRecord, prev: TreeEntry | undefined, events: NoteSink): boolean {
  if (isFoleDatabasePath(r.path) && isPlainName(r.path)) {
    // where FOLE keeps a database there must be a sound one, whatever its size
    // or its parent's entry say: never a plain file, never left out (STOP or error)
    checkFoleDatabaseFile(root, r.path);
    return true;
  }
  // a file with its parent's size, mtime, ctime and inode is the parent's regular
  // file, unchanged: not a database then, not one now — its header is not read
  if (!mayBeSqlite(r.size) || unchangedFile(r, prev) || !isSqliteFile(join(root, r.path))) return false;
  if (isPlainName(r.path)) return true;
  // SQLite opens a database by a UTF-8 name; this one has none
  events.warn(
    `${printable(r.path)} looks like a SQLite database, but its name is not UTF-8, so SQLite cannot open it: ` +
      'stored byte for byte (if a program writes to it, the copy may be inconsistent)',
    r.path,
  );
  return false;
}

/** Whether a file can keep its parent's content without being read (restic's rule, plus the inode). */
export function unchangedFile(r: ScanRecord, prev: TreeEntry | undefined): prev is TreeEntry {
  return (
    prev !== undefined &&
    prev.kind === 'file' &&
    prev.size === r.size &&
    prev.mtimeMs === r.mtimeMs &&
    prev.ctimeMs === r.ctimeMs &&
    prev.ino === r.ino
  );
}

/** ParentCursor.findRead: the entries read so far end before the path asked. */
export const MORE: unique symbol = Symbol('more');

/**
 * Walks a parent tree alongside the scan (both are in tree order): a merge join,
 * so an incremental never holds the parent's file list in memory. `find` must be
 * asked in tree order.
 */
export class ParentCursor {
  /** The parent's entries from one of its tree blobs; those before `at` are behind every path still asked. */
  private batch: readonly TreeEntry[] = [];
  private at = 0;
  private done: boolean;
  constructor(private readonly batches: AsyncIterator<readonly TreeEntry[]> | undefined) {
    this.done = batches === undefined;
  }

  /**
   * The parent's entry for `path`, or undefined when the parent has none, from the entries already read; MORE when
   * they end before `path` is decided (then `find`). Most answers come from here, without a step of an async
   * iterator each.
   */
  findRead(path: string): TreeEntry | undefined | typeof MORE {
    for (; this.at < this.batch.length; this.at++) {
      const e = this.batch[this.at] as TreeEntry;
      const c = comparePaths(e.path, path);
      if (c === 0) return e;
      if (c > 0) return undefined;
    }
    return this.done ? undefined : MORE;
  }

  /** The parent's entry for `path`, or undefined when the parent has none. */
  async find(path: string): Promise<TreeEntry | undefined> {
    for (;;) {
      const found = this.findRead(path);
      if (found !== MORE) return found;
      const next = await (this.batches as AsyncIterator<readonly TreeEntry[]>).next();
      this.done = next.done === true;
      this.batch = next.done === true ? [] : next.value;
      this.at = 0;
    }
  }
}

/**
 * Pick the parent of an incremental: the backup given (`explicit`), else the
 * newest readable backup of the same root on this host. A damaged snapshot
 * cannot be a parent (its tree is not trusted); it is reported, and the next
 * newest is used.
 */
export async function findParent(
  repo: SealedObjects,
  root: string,
  host: string,
  explicit: string | undefined,
  warn: (msg: string) => void,
): Promise<Snapshot | undefined> {
  if (explicit !== undefined) return loadSnapshot(repo, await resolveBackupId(repo, explicit));
  const { snapshots, damaged } = await scanSnapshots(repo);
  if (damaged.length > 0) warn(describeDamaged(damaged, 'the parent is the newest readable backup instead'));
  return newestOf(snapshots, root, host);
}

/** The newest of `snapshots` (oldest first) of the same root and host. */
export function newestOf<S extends Pick<Snapshot, 'storageRoot' | 'host'>>(
  snapshots: readonly S[],
  root: string,
  host: string,
): S | undefined {
  const candidates = snapshots.filter((s) => s.storageRoot === root && s.host === host);
  return candidates[candidates.length - 1];
}

/**
 * A symlink where FOLE keeps a database (or a directory on the way to one):
 * never followed, so what it points to would be missing from the backup — and
 * a backup without FOLE's databases is not a backup.
 */
function symlinkedFolePlace(root: string, rel: string): FoleBackupError {
  let target = '?';
  try {
    target = readlinkSync(join(root, rel));
  } catch {
    // only named in the message
  }
  return new FoleBackupError(
    'UNSAFE_PATH',
    `backup of ${root}: ${rel} is a symlink (to ${target}), where FOLE keeps its databases; ` +
      'symlinks are never followed, so they would be missing from the backup',
    {
      path: rel,
      hint: `put what ${rel} points to in its place inside the STORAGE_ROOT, then run the backup again`,
    },
  );
}
