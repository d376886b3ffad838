/**
 * Making a backup (spec §5, DESIGN.md §3):
 *
 *   open repo, shared repository lock, load index
 *   acquire the Global Storage Lock (storage:global in core/core.db)
 *   scan STORAGE_ROOT once into a spool (tree order; in memory, on disk past
 *     100k unread entries) with each path's entry in the parent backup (incremental);
 *     note every file whose header says SQLite
 *   capture every database at one instant into private staging (quiesce,
 *     Online Backup API, integrity_check; our lock row removed from the core.db copy)
 *   stream the spool: store each file (or the DB's captured copy) as chunks,
 *     write tree entries, collect the manifest head
 *   flush packs, then index; confirm both locks are still ours and every pack
 *     the backup re-uses (instead of storing its blobs again) still exists;
 *     then the snapshot — written last, so a snapshot that exists is complete;
 *     a crash before leaves only unreferenced packs
 *   release the storage lock and the repository lock, remove staging
 */
import { randomUUID } from 'node:crypto';
import { readlink, realpath, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { FoleBackupError, errnoCode, throwIfAborted } from '../errors.js';
import { localRealPath } from '../backend/open.js';
import { ManifestBuilder } from '../manifest/manifest.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import { RepositoryLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { checkBackupLabels } from '../snapshot/fields.js';
import {
  comparePaths,
  SKIPPED_LIMIT,
  type RootMetadata,
  type Snapshot,
  type SnapshotDatabase,
  type SnapshotStats,
  type TreeEntry,
} from '../snapshot/snapshot.js';
import { describeDamaged, loadSnapshot, resolveBackupId, saveSnapshot, scanSnapshots } from '../snapshot/store.js';
import { readTree, TreeWriter } from '../snapshot/tree.js';
import { printable, SET_ID_BITS } from '../snapshot/validate.js';
import type { CapturedDatabase } from '../sqlite/capture.js';
import { captureOnThread } from '../sqlite/capture-thread.js';
import { checkFoleDatabaseFile, isSqliteFile, mayBeSqlite } from '../sqlite/detect.js';
import { acquireStorageLock, GLOBAL_LOCK_ID, type HeldStorageLock } from '../storage/global-lock.js';
import { CORE_DB, isFoleDatabasePath, leadsToFoleDatabase } from '../storage/fole-layout.js';
import { isInside, pathInsideRoot } from '../fs/inside-root.js';
import { readlinkSync } from 'node:fs';
import { scanTree, type ForbiddenDir, type ScanRecord } from '../storage/scan.js';
import { makeStaging } from './staging.js';
import { fsPath, isPlainName } from '../fs/byte-names.js';
import { orderedMap } from '../concurrency/ordered-map.js';
import { Spool } from './spool.js';
import { FilePool, type StoreOutcome } from './file-pool.js';

/** The storage spec version this tool understands and records by default. */
export const STORAGE_SPEC_VERSION = '1.1.0';

export interface BackupOptions {
  storageRoot: string;
  /** Version of the FOLE server that owns the STORAGE_ROOT (recorded; restore compares it). */
  foleVersion: string;
  /** Who asked for the backup (spec §4 createdBy). Default: user@host. */
  actor?: string;
  actorKind?: 'human' | 'agent';
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
  backupId: string;
  type: 'full' | 'incremental';
  createdAt: string;
  /** The parent backup an incremental compared against. */
  parent?: string;
  skipped: { path: string; reason: string }[];
  skippedCount: number;
  warnings: string[];
};

interface SpoolRecord extends ScanRecord {
  sqlite?: true;
}

/** Tree entries in flight or waiting for their turn (see orderedMap below). */
const WINDOW = 8192;
const WINDOW_WHILE_SCANNING = 65536;

/** A database the capture is done with: its checked copy, the fingerprint that proves it unchanged, or why it is damaged or was locked. */
interface DbSettled {
  captured?: CapturedDatabase;
  unchanged?: string;
  damaged?: string;
  locked?: string;
  sameFileAs?: string;
  vanished?: boolean;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // awaited where used; a capture failure is reported there
  return { promise, resolve, reject };
}

/** A spool record with the parent backup's entry for the same path, if any. */
interface WorkItem {
  r: SpoolRecord;
  prev?: TreeEntry;
}

/** Whether a file can keep its parent's content without being read (restic's rule, plus the inode). */
function unchangedFile(r: ScanRecord, prev: TreeEntry | undefined): prev is TreeEntry {
  return (
    prev !== undefined &&
    prev.kind === 'file' &&
    prev.size === r.size &&
    prev.mtimeMs === r.mtimeMs &&
    prev.ctimeMs === r.ctimeMs &&
    prev.ino === r.ino
  );
}

/**
 * Pick the parent of an incremental: the newest readable backup of the same
 * root on this host. A damaged snapshot cannot be a parent (its tree is not
 * trusted); it is reported, and the next newest is used.
 */
async function findParent(
  repo: Repository,
  root: string,
  explicit: string | undefined,
  warn: (msg: string) => void,
): Promise<Snapshot | undefined> {
  if (explicit !== undefined) return loadSnapshot(repo, await resolveBackupId(repo, explicit));
  const host = hostname();
  const { snapshots, damaged } = await scanSnapshots(repo);
  if (damaged.length > 0) warn(describeDamaged(damaged, 'the parent is the newest readable backup instead'));
  const candidates = snapshots.filter((s) => s.storageRoot === root && s.host === host);
  return candidates[candidates.length - 1];
}

/**
 * Walks a parent tree alongside the scan (both are in tree order): a merge join,
 * so an incremental never holds the parent's file list in memory.
 */
class ParentCursor {
  private current: TreeEntry | undefined;
  private done = false;
  constructor(private readonly entries: AsyncIterator<TreeEntry> | undefined) {
    if (entries === undefined) this.done = true;
  }

  async find(path: string): Promise<TreeEntry | undefined> {
    while (!this.done) {
      if (this.current === undefined) {
        const next = await (this.entries as AsyncIterator<TreeEntry>).next();
        if (next.done) {
          this.done = true;
          return undefined;
        }
        this.current = next.value;
      }
      const c = comparePaths(this.current.path, path);
      if (c === 0) return this.current;
      if (c > 0) return undefined;
      this.current = undefined;
    }
    return undefined;
  }
}

function defaultActor(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `unknown@${hostname()}`;
  }
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
    `backup of ${root}: ${rel} is a symlink (to ${target}), where FOLE keeps its databases; symlinks are never followed, so they would be missing from the backup`,
    {
      path: rel,
      hint: `put what ${rel} points to in its place inside the STORAGE_ROOT, then run the backup again`,
    },
  );
}

/** Check that `root` looks like a FOLE STORAGE_ROOT and return its real path. */
export async function checkStorageRoot(root: string): Promise<string> {
  const abs = resolve(root);
  let st;
  try {
    st = await stat(abs);
  } catch (err) {
    throw new FoleBackupError(
      'NOT_A_STORAGE_ROOT',
      `storage root ${abs}: ${errnoCode(err) === 'ENOENT' ? 'does not exist' : 'cannot be read'}`,
      {
        path: abs,
        cause: err,
        hint: 'pass the FOLE STORAGE_ROOT with --storage-root or STORAGE_ROOT',
      },
    );
  }
  if (!st.isDirectory()) {
    throw new FoleBackupError('NOT_A_STORAGE_ROOT', `storage root ${abs} is not a directory`, { path: abs });
  }
  let core;
  try {
    // never through a symlink: a backup must hold core.db itself (UNSAFE_PATH otherwise)
    core = pathInsideRoot(abs, CORE_DB);
  } catch (err) {
    if (!(err instanceof FoleBackupError) || err.code !== 'NOT_FOUND') throw err;
  }
  if (core === undefined || !core.st.isFile()) {
    throw new FoleBackupError('NOT_A_STORAGE_ROOT', `${abs} is not a FOLE STORAGE_ROOT: core/core.db is missing`, {
      path: abs,
      hint: 'point --storage-root at the directory that holds core/, projects/, modules/',
    });
  }
  return realpath(abs);
}

/**
 * The repository and the staging area must lie outside the STORAGE_ROOT (real
 * paths compared, so a symlink does not hide it): inside, a backup would store
 * them too — the repository grows by its own size with every backup, staged
 * database copies are captured while being written. A STORAGE_ROOT inside the
 * repository is refused as well. Usage errors: the operator chose the paths.
 * Returns both by device and inode, so the scan also refuses them when a bind
 * mount brings them inside where no path comparison can tell.
 */
async function checkApart(root: string, repo: Repository, stagingParent: string | undefined): Promise<ForbiddenDir[]> {
  const repoPath = await localRealPath(repo.backend);
  if (repoPath !== undefined && isInside(repoPath, root)) {
    throw new FoleBackupError(
      'USAGE',
      `the repository ${repoPath} lies inside the STORAGE_ROOT ${root}: it would be backed up into itself, growing with every backup`,
      {
        hint: 'put the repository elsewhere, outside the STORAGE_ROOT (another directory or disk), and run again',
      },
    );
  }
  if (repoPath !== undefined && isInside(root, repoPath)) {
    throw new FoleBackupError('USAGE', `the STORAGE_ROOT ${root} lies inside the repository ${repoPath}`, {
      hint: 'keep them apart: put the repository elsewhere, outside the STORAGE_ROOT, and run again',
    });
  }
  const given = resolve(stagingParent ?? tmpdir());
  const staging = await realpath(given).catch(() => given);
  if (isInside(staging, root)) {
    throw new FoleBackupError(
      'USAGE',
      `the staging directory ${staging} lies inside the STORAGE_ROOT ${root}: the database copies staged there would be backed up too`,
      {
        hint: 'pass a --staging-dir (or FOLE_BACKUP_STAGING) outside the STORAGE_ROOT, with room for every database',
      },
    );
  }
  const forbidden: ForbiddenDir[] = [];
  for (const [path, what] of [
    [repoPath, `the repository ${repoPath}`],
    [staging, `the staging directory ${staging}`],
  ] as const) {
    if (path === undefined) continue;
    const st = await stat(path).catch(() => undefined);
    if (st?.isDirectory()) forbidden.push({ dev: st.dev, ino: st.ino, what });
  }
  return forbidden;
}

/**
 * Before the snapshot makes a backup visible: the repository lock and the
 * storage lock it ran under are still its own, and every pack it re-uses still
 * exists. A backup suspended past its lease (SIGSTOP, a VM pause) may have been
 * judged stale meanwhile, and a prune may have deleted what it re-uses: its
 * snapshot would point at nothing. LOCK_LOST (or STORAGE_LOCKED) then, and no
 * snapshot; what it stored is garbage for the next prune.
 */
async function confirmFoundations(
  repo: Repository,
  repoLock: RepositoryLock,
  storageLock: HeldStorageLock | undefined,
): Promise<void> {
  await repoLock.verify();
  storageLock?.confirm();
  const reused = repo.reusedPacks();
  if (reused.size === 0) return;
  const stored = new Set<string>();
  for await (const o of repo.backend.list('data')) stored.add(o.name);
  const gone = [...reused].filter((p) => !stored.has(p));
  if (gone.length > 0) {
    throw new FoleBackupError(
      'LOCK_LOST',
      `backup: ${gone.length} pack${gone.length === 1 ? '' : 's'} it re-uses ${gone.length === 1 ? 'was' : 'were'} deleted while it ran (e.g. data/${gone[0]}); no snapshot was written`,
      {
        hint: "another process (a prune that judged this backup's lock stale) changed the repository meanwhile; run the backup again",
      },
    );
  }
}

/**
 * Before the snapshot makes a backup visible: every database of FOLE's the scan
 * found, and core.db in any case (checkStorageRoot found it), is recorded as a
 * database. A FOLE database missing from the snapshot means the tree changed
 * under the backup where it matters (a directory swapped while it ran), and a
 * backup without it is not a backup (spec §15).
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
      `backup of ${root}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not recorded as a database; no snapshot was written`,
      {
        path: missing[0] as string,
        hint: "FOLE's databases changed (vanished, moved or replaced) while the backup ran; find out what changes the STORAGE_ROOT, then run the backup again",
      },
    );
  }
}

/** Take a full backup of a STORAGE_ROOT into `repo`. The repository must be open (index is loaded here). */
export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const signal = opts.signal;
  // the default (user@host) is checked too: a host name can hold anything its administrator set
  const actor = opts.actor ?? defaultActor();
  checkBackupLabels(
    { foleVersion: opts.foleVersion, actor, tags: opts.tags },
    opts.actor === undefined ? { actor: 'the default actor (user@host; give --actor instead)' } : {},
  );
  const root = await checkStorageRoot(opts.storageRoot);
  const forbidden = await checkApart(root, repo, opts.stagingParent);
  // the root has no tree entry: its owner and mode travel in the snapshot
  const rootStat = await stat(root);
  const rootMeta: RootMetadata = { mode: rootStat.mode & 0o7777, uid: rootStat.uid, gid: rootStat.gid };
  const warnings: string[] = [];
  const warn = (msg: string, path?: string): void => {
    warnings.push(msg);
    reporter.warn(msg, path);
  };

  const repoLock = await RepositoryLock.acquire(repo, {
    exclusive: false,
    operation: 'backup',
    onStale: (l) =>
      warn(`ignoring stale repository lock ${l.name.slice(0, 12)} (${l.stale}); \`fole-backup unlock\` removes it`),
  });
  let staging: string | undefined;
  let pool: FilePool | undefined;
  let pendingCapture: Promise<unknown> | undefined;
  let stopCapture: AbortController | undefined;
  let storageLock: HeldStorageLock | undefined;
  try {
    reporter.phase('load index');
    await repo.loadIndex(signal);
    repo.trackReusedPacks();
    const addedBefore = repo.addedBytes;
    const parent =
      opts.incremental || opts.parent !== undefined ? await findParent(repo, root, opts.parent, warn) : undefined;
    const parentDbs = new Map((parent?.databases ?? []).map((d) => [d.path, d]));

    storageLock = await acquireStorageLock({
      storageRoot: root,
      waitMs: opts.storageLockWaitMs ?? 0,
      onTakeover: (stale, reason) => warn(`took over stale storage lock held by ${stale.owner} (${reason})`),
    });
    staging = await makeStaging(opts.stagingParent);

    // 1. scan into the spool, noting SQLite databases by their header, while
    //    (3. below) the files already scanned are being stored
    reporter.phase('scan and store files');
    const skipped: { path: string; reason: string }[] = [];
    let skippedCount = 0;
    const skip = (path: string, reason: string): void => {
      skippedCount++;
      if (skipped.length < SKIPPED_LIMIT) skipped.push({ path, reason });
    };
    const spool = new Spool<WorkItem>(join(staging, 'scan'));
    const dbPaths: string[] = [];
    /** Each database's capture outcome, waited for by its tree entry. */
    const settled = new Map<string, Deferred<DbSettled>>();
    let totalFiles = 0;
    let totalBytes = 0;
    let doneFiles = 0;
    let doneBytes = 0;
    let bytesRead = 0;
    const progress = (path: string): void =>
      reporter.progress({ files: doneFiles, bytes: doneBytes, totalFiles, totalBytes, current: path });
    /** What a store reports as it reads `path`'s bytes. */
    const onBytesOf =
      (path: string) =>
      (n: number): void => {
        doneBytes += n;
        bytesRead += n;
        progress(path);
      };
    const filePool = new FilePool(repo, opts.threads);
    pool = filePool;
    /**
     * Each captured database copy is stored as soon as it is made, not when the tree
     * order reaches it: a large database then hashes and seals beside the small files
     * instead of holding the ordered window while one worker goes through it alone.
     */
    const storedDbs = new Map<string, Promise<StoreOutcome>>();
    const storeDb = (path: string, db: CapturedDatabase): void => {
      const stored = filePool.store({
        path: db.file,
        chunkSize: repo.config.dbChunkSize,
        size: db.size,
        first: true,
        onBytes: onBytesOf(path),
      });
      stored.catch(() => {}); // awaited by the database's tree entry; a failure surfaces there
      storedDbs.set(path, stored);
    };
    const stop = new AbortController();
    stopCapture = stop;
    const workSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    const scanning = (async (): Promise<void> => {
      // the parent's entry for each path is looked up here, in tree order (a merge
      // join: the parent's file list is never held in memory), and travels in the spool
      const cursor = new ParentCursor(parent ? readTree(repo, parent.tree)[Symbol.asyncIterator]() : undefined);
      for await (const batch of scanTree(root, (s) => skip(s.path, s.reason), { forbidden })) {
        throwIfAborted(workSignal);
        const items: WorkItem[] = [];
        for (const r of batch) {
          if (r.kind === 'symlink' && leadsToFoleDatabase(r.path)) throw symlinkedFolePlace(root, r.path);
          const prev = r.kind === 'dir' ? undefined : await cursor.find(r.path);
          const rec: SpoolRecord = r;
          if (r.kind === 'file') {
            totalFiles++;
            totalBytes += r.size;
            if (isFoleDatabasePath(r.path) && isPlainName(r.path)) {
              // where FOLE keeps a database there must be a sound one, whatever its size
              // or its parent's entry say: never a plain file, never left out (STOP or error)
              checkFoleDatabaseFile(root, r.path);
              rec.sqlite = true;
              dbPaths.push(r.path);
              settled.set(r.path, deferred<DbSettled>());
              // a file with its parent's size, mtime, ctime and inode is the parent's regular
              // file, unchanged: not a database then, not one now — its header is not read
            } else if (mayBeSqlite(r.size) && !unchangedFile(r, prev) && isSqliteFile(join(root, r.path))) {
              if (isPlainName(r.path)) {
                rec.sqlite = true;
                dbPaths.push(r.path);
                settled.set(r.path, deferred<DbSettled>());
              } else {
                // SQLite opens a database by a UTF-8 name; this one has none
                warn(
                  `${printable(r.path)} looks like a SQLite database, but its name is not UTF-8, so SQLite cannot open it: ` +
                    'stored byte for byte (if a program writes to it, the copy may be inconsistent)',
                  r.path,
                );
              }
            }
          }
          items.push(prev === undefined ? { r: rec } : { r: rec, prev });
        }
        await spool.push(items);
      }
      await spool.end();
    })();

    // 2. every database at one instant, once the scan has found them all
    // The instant is taken first (quiesce happens at the start of captureDatabases);
    // copying the databases then runs while other files are being stored: a
    // database's entry waits for its own copy, nothing else does.
    let captureStarted = false;
    const capturing = scanning.then(() => {
      captureStarted = true;
      reporter.phase('capture databases and store files');
      // on a thread of its own: its SQLite work is synchronous and would hold up this one
      return captureOnThread({
        storageRoot: root,
        databases: dbPaths,
        stagingDir: staging as string,
        ...(opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs }),
        signal: workSignal,
        dropLockRow: { path: CORE_DB, lockId: GLOBAL_LOCK_ID },
        // FOLE's own databases must be sound (a damaged one is a STOP, spec §15) and are
        // waited for (DB_LOCKED); any other file that merely looks like SQLite and is
        // damaged, or locked by a writer past the busy timeout, is stored as it is
        optional: dbPaths.filter((p) => !isFoleDatabasePath(p)),
        // core.db always changes (it holds our lock row during the capture); others are kept when untouched
        unchangedIfFingerprint: Object.fromEntries(
          [...parentDbs]
            .filter(([path, d]) => path !== 'core/core.db' && d.fingerprint !== undefined)
            .map(([path, d]) => [path, d.fingerprint as string]),
        ),
        onDatabase: (d) => {
          if (d.captured !== undefined) storeDb(d.path, d.captured);
          settled.get(d.path)?.resolve(d);
        },
      });
    });
    pendingCapture = capturing;
    // a failed scan or capture stops the file work at once (it is rethrown where awaited)
    capturing.then(
      // every database was settled on the way (a no-op then); never leave an entry waiting
      () => {
        for (const [p, d] of settled)
          d.reject(new FoleBackupError('INTERNAL', `capture did not settle ${p}`, { path: p }));
      },
      (err: unknown) => {
        stop.abort();
        spool.fail(err);
        for (const d of settled.values()) d.reject(err);
      },
    );

    // 3. store every file and database snapshot, writing the tree in order
    const tree = new TreeWriter(repo);
    const manifest = new ManifestBuilder();
    const databases: SnapshotDatabase[] = [];
    let files = 0;
    let dirs = 0;
    let bytes = 0;
    const counts = { filesNew: 0, filesChanged: 0, filesUnchanged: 0, dbsCaptured: 0, dbsUnchanged: 0 };

    const hasChunks = (e: TreeEntry): boolean => (e.chunks ?? []).every((id) => repo.hasBlob(id));

    const work = async ({ r, prev }: WorkItem): Promise<TreeEntry | undefined> => {
      if (workSignal.aborted) {
        await capturing; // a failed scan or capture: its error, not a generic abort
        throwIfAborted(workSignal);
      }
      // set-ID bits are stored but never restored (SET_ID_BITS): say so instead of dropping them silently
      const setId = r.mode & (r.kind === 'dir' ? SET_ID_BITS.all : SET_ID_BITS.all | SET_ID_BITS.nonDir);
      if (setId !== 0 && (r.kind === 'dir' || r.kind === 'file')) {
        warn(
          `${printable(r.path)} has the ${setId & SET_ID_BITS.all ? 'set-user-ID' : 'set-group-ID'} bit: a restore never sets it (a STORAGE_ROOT holds data, not programs)`,
          r.path,
        );
      }
      if (r.kind === 'dir')
        return { path: r.path, kind: 'dir', mode: r.mode, mtimeMs: r.mtimeMs, uid: r.uid, gid: r.gid };
      if (r.kind === 'symlink') {
        const target = await readlink(fsPath(join(root, r.path)), 'utf8').catch(() => '?');
        const resolved = resolve(dirname(join(root, r.path)), target);
        const outside = !isInside(resolved, root);
        // names and targets are quoted and escaped: a line feed or an escape sequence in
        // one must not forge or hide a line of the report
        const [name, to] = [printable(r.path, 4096), printable(target, 4096)];
        skip(r.path, `symlink to ${to} (never followed nor stored)${outside ? ': points outside STORAGE_ROOT' : ''}`);
        warn(
          outside
            ? `SECURITY: symlink ${name} points outside STORAGE_ROOT (to ${to}); not followed, not stored — find out who created it`
            : `skipped symlink ${name} -> ${to} (symlinks are never followed nor stored)`,
          r.path,
        );
        return undefined;
      }
      if (r.kind === 'other') {
        skip(r.path, 'not a regular file (socket, FIFO or device)');
        return undefined;
      }
      const caught = r.sqlite ? await settled.get(r.path)?.promise : undefined;
      if (caught?.vanished === true) {
        skip(r.path, 'vanished during backup');
        return undefined;
      }
      if (caught?.damaged !== undefined) {
        // not one of FOLE's databases: its bytes are kept exactly, and the operator is told
        warn(
          `${printable(r.path)} looks like a SQLite database but is damaged, so it was stored byte for byte as an ordinary file (${caught.damaged})`,
          r.path,
        );
      }
      if (caught?.sameFileAs !== undefined) {
        // an upload under two names: one is captured as a database, this one is kept as bytes
        warn(
          `${printable(r.path)} is the same file as ${printable(caught.sameFileAs)} (a hard link): only ${printable(caught.sameFileAs)} is read as a database, ` +
            `${printable(r.path)} was stored byte for byte as an ordinary file; if a program writes to it, the copy may be inconsistent`,
          r.path,
        );
      }
      if (caught?.locked !== undefined) {
        // not one of FOLE's databases either: one stuck program must not stop every backup
        warn(
          `${printable(r.path)} is a SQLite database locked by a writer for longer than the busy timeout, so it was stored byte for byte ` +
            `as an ordinary file; the copy may be inconsistent (${caught.locked})`,
          r.path,
        );
      }
      // an incremental keeps what provably did not change, without reading it
      const keptFp = caught?.unchanged;
      if (keptFp !== undefined && prev?.kind === 'db' && prev.fingerprint === keptFp && hasChunks(prev)) {
        counts.dbsUnchanged++;
        doneFiles++;
        doneBytes += prev.size ?? 0;
        progress(r.path);
        const d = prev.db as NonNullable<TreeEntry['db']>;
        databases.push({
          path: r.path,
          sha256: prev.sha256 ?? '',
          size: prev.size ?? 0,
          ...d,
          fingerprint: keptFp,
          captured: false,
        });
        return { ...prev, mode: r.mode, mtimeMs: r.mtimeMs, uid: r.uid, gid: r.gid };
      }
      if (keptFp !== undefined) {
        // the parent's record disagrees with what capture was told: never guess, fail loudly
        throw new FoleBackupError('INTERNAL', `incremental: parent backup has no usable snapshot of ${r.path}`, {
          path: r.path,
          hint: 'run a full backup (without --incremental)',
        });
      }
      if (!r.sqlite && unchangedFile(r, prev) && hasChunks(prev)) {
        counts.filesUnchanged++;
        doneFiles++;
        doneBytes += r.size;
        progress(r.path);
        // the owner as scanned: a parent made before owners were recorded has none
        return { ...prev, mode: r.mode, uid: r.uid, gid: r.gid };
      }
      const db = caught?.captured;
      const dbStored = db === undefined ? undefined : storedDbs.get(r.path);
      if (db !== undefined && dbStored === undefined)
        throw new FoleBackupError('INTERNAL', `capture did not store ${r.path}`, { path: r.path });
      const out = await (dbStored ??
        filePool.store({
          path: join(root, r.path),
          chunkSize: repo.config.fileChunkSize,
          size: r.size,
          onBytes: onBytesOf(r.path),
        }));
      doneFiles++;
      if (out.status === 'vanished') {
        skip(r.path, 'vanished during backup');
        return undefined;
      }
      if (out.status === 'not-a-file') {
        skip(r.path, 'replaced by a non-file during backup');
        return undefined;
      }
      if (out.changedWhileReading && !db)
        warn(`${printable(r.path)} kept changing while it was read; stored the last read`, r.path);
      const c = out.content;
      if (db) {
        counts.dbsCaptured++;
        const info = {
          pageSize: db.pageSize,
          pageCount: db.pageCount,
          userVersion: db.userVersion,
          journalMode: db.journalMode,
          integrity: db.integrity,
        };
        databases.push({
          path: r.path,
          sha256: c.sha256,
          size: c.size,
          ...info,
          fingerprint: db.fingerprint,
          captured: true,
        });
        return {
          path: r.path,
          kind: 'db',
          mode: r.mode,
          mtimeMs: r.mtimeMs,
          uid: r.uid,
          gid: r.gid,
          size: c.size,
          sha256: c.sha256,
          chunks: c.chunks,
          db: info,
          fingerprint: db.fingerprint,
        };
      }
      if (prev === undefined) counts.filesNew++;
      else counts.filesChanged++;
      return {
        path: r.path,
        kind: 'file',
        mode: out.stat.mode & 0o7777,
        mtimeMs: out.stat.mtimeMs,
        uid: out.stat.uid,
        gid: out.stat.gid,
        size: c.size,
        sha256: c.sha256,
        chunks: c.chunks,
        ino: out.stat.ino,
        ctimeMs: out.stat.ctimeMs,
      };
    };
    // A wide window: entries behind a database whose copy is still being made keep being
    // stored. Wider still while the scan runs: the first database (core/core.db) waits for
    // the capture, which waits for the end of the scan, and the cores would idle meanwhile;
    // once the capture has started the window drains back (a wide window all along costs
    // as much in garbage collection as it saves).
    const window = opts.concurrency ?? (() => (captureStarted ? WINDOW : WINDOW_WHILE_SCANNING));
    await orderedMap(spool.read(), window, work, async (entry) => {
      if (entry === undefined) return;
      if (entry.kind === 'dir') dirs++;
      else {
        files++;
        bytes += entry.size ?? 0;
      }
      manifest.observe(entry);
      await tree.add(entry);
    });
    await filePool.drain();
    const capture = await capturing;
    const treeIds = await tree.finish();

    // 4. data and index durable, then the snapshot, last
    reporter.phase('write index');
    await repo.flush();
    const backupId = randomUUID();
    const createdAt = capture.capturedAt;
    const type = parent ? 'incremental' : 'full';
    const stats: Required<SnapshotStats> = {
      files,
      dirs,
      databases: databases.length,
      bytes,
      addedBytes: 0,
      durationMs: 0,
      writersBlockedMs: capture.writersBlockedMs,
      bytesRead,
      ...counts,
    };
    const snap: Snapshot = {
      formatVersion: 1,
      backupId,
      type,
      ...(parent ? { parent: parent.backupId } : {}),
      tags: opts.tags ?? [],
      createdAt,
      host: hostname(),
      storageRoot: root,
      root: rootMeta,
      actor: { name: actor, kind: opts.actorKind ?? 'human' },
      manifest: manifest.head({
        backupId,
        createdAt,
        createdBy: actor,
        foleVersion: opts.foleVersion,
        storageSpecVersion: opts.storageSpecVersion ?? STORAGE_SPEC_VERSION,
      }),
      tree: treeIds,
      stats,
      databases,
      skipped,
      skippedCount,
      warnings,
    };
    stats.durationMs = Date.now() - started;
    stats.addedBytes = repo.addedBytes - addedBefore;
    reporter.phase('write snapshot');
    confirmFoleDatabases(root, dbPaths.filter(isFoleDatabasePath), databases);
    await confirmFoundations(repo, repoLock, storageLock);
    await saveSnapshot(repo, snap);
    // the snapshot's own figures, finished with what writing it cost
    return {
      ...stats,
      addedBytes: repo.addedBytes - addedBefore,
      durationMs: Date.now() - started,
      backupId,
      type,
      createdAt,
      ...(parent ? { parent: parent.backupId } : {}),
      skipped,
      skippedCount,
      warnings,
    };
  } catch (err) {
    stopCapture?.abort();
    repo.discardPending();
    throw err;
  } finally {
    // the capture writes into staging: it must have stopped before staging goes
    await pendingCapture?.catch(() => undefined);
    await pool?.close();
    if (staging !== undefined) await rm(staging, { recursive: true, force: true }).catch(() => {});
    if (storageLock !== undefined)
      await storageLock.release().catch((err: unknown) => warn(`release storage lock: ${String(err)}`));
    await repoLock.release().catch(() => {});
  }
}
