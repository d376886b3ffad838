/**
 * Carrying out a RestorePlan (docs/RESTORE.md):
 *
 *   create the journal (state staging) — exclusively: one restore per target
 *   shared repository lock
 *   stage: every tree entry into <staging>, in tree order (a directory before its
 *     contents; an entry whose parent directory is not in the backup is refused);
 *     files written in windows, pack by pack, on worker threads
 *     (src/restore/write-files.ts): every chunk's AEAD tag checked, a one-chunk
 *     file's chunk against its id (its SHA-256), every longer file's size and
 *     SHA-256 read back whole (CHECKSUM_MISMATCH), then its mode and mtime;
 *     what is written is synced in the background meanwhile
 *   clear caches: any tmp/ or cache/ directory in the staged tree is removed
 *     (backups leave them out; FOLE rebuilds them), so none ever appears live
 *   every database: no -wal/-shm/-journal beside it (a backup never carries one:
 *     CHECKSUM_MISMATCH), then PRAGMA integrity_check (DB_INTEGRITY_ERROR), then
 *     its mode and mtime (src/restore/check-database.ts) — run on a worker as soon
 *     as the database is written and none of its side files can follow in the
 *     tree, but a failure is reported here, after staging, in database order
 *   directories deepest first: mode, mtime (after their contents); the root its
 *     recorded mode (plan.rootMode); then one syncfs of the staging filesystem
 *     makes all of it durable
 *   owners: run as root, every entry and the root get their recorded owner
 *     just before their mode; run as anyone else, one warning says the owners
 *     were not restored (src/restore/ownership.ts)
 *   -- nothing live has been touched up to here; any failure removes staging
 *      and the journal and leaves the target as it was --
 *   look at the target again: it must still be what was planned (else STOP)
 *   Global Storage Lock on the live tree (when it has core/core.db); look again
 *     (the restored tree gets no lock row: it moves in exactly as verified,
 *     its core.db byte for byte the backup's; src/restore/lock-row.ts)
 *   journal: staged
 *   rename live -> previous tree; journal: live-moved-aside   (replace only)
 *   rename staging -> target;     journal: staging-moved-in
 *   our lock row out of the previous tree, release the lock, journal removed
 *
 * A failure during the swap runs recovery at once (src/restore/recover.ts); a
 * crash leaves the journal for the next `restore` or `recover`.
 */
import { mkdirSync } from 'node:fs';
import { chmod, chown, lstat, mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { FoleBackupError, StopError, fsError, throwIfAborted } from '../errors.js';
import { fsyncDir, renameDurable } from '../fs/durable.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import { RepositoryLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { comparePaths, type Snapshot, type TreeEntry } from '../snapshot/snapshot.js';
import { readTree } from '../snapshot/tree.js';
import { SQLITE_SIDE_SUFFIXES } from '../sqlite/side-files.js';
import { EPHEMERAL_DIR_NAMES } from '../storage/exclusions.js';
import { acquireStorageLock, readStorageLock, type HeldStorageLock } from '../storage/global-lock.js';
import {
  createJournal,
  newJournal,
  removeJournal,
  updateJournal,
  type KeptMetadata,
  type RestoreJournal,
} from './journal.js';
import { journalPathOf } from './names.js';
import type { RestorePlan, TargetState } from './plan.js';
import {
  applyKept,
  finishRestore,
  markRestoreActive,
  markRestoreDone,
  recover,
  type RecoverResult,
} from './recover.js';
import { fsPath } from '../fs/byte-names.js';
import { applyMeta } from './apply-meta.js';
import { Ownership } from './ownership.js';
import { removeTree } from './remove-tree.js';
import { currentUser } from '../host/current-user.js';
import { FileWriter } from './write-files.js';
import { selectEntries } from './selection.js';
import { BackgroundSync, syncFilesystem } from '../fs/sync-filesystem.js';
import type { BlobReader } from '../repository/slices.js';

export interface ExecuteOptions {
  reporter?: ProgressReporter;
  /** Aborts the restore up to the swap; the swap, once begun, completes. */
  signal?: AbortSignal;
  /** Called as the swap begins (the point after which an abort is no longer heeded). */
  onSwap?: () => void;
  /** How long to wait for another holder of the Global Storage Lock (default 0: fail at once). */
  storageLockWaitMs?: number;
  /** Summarise the target again (src/restore/target.ts inspectTarget), to catch one that changed since planning. */
  inspect: () => Promise<TargetState>;
  /** Called just before the Global Storage Lock is taken, and again once it is held, before anything is replaced:
   * an approved restore checks there that the target is still the one approved (approval-plan.ts). */
  beforeLock?: () => Promise<void>;
  underLock?: () => Promise<void>;
}

/** What a restore did: the backup restored, where, how much, and where the previous tree was kept. */
export interface RestoreResult {
  backupId: string;
  target: string;
  mode: 'replace' | 'fill';
  /** Where the tree that was live before is kept (until you remove it); null when the target was absent or empty. */
  previousTree: string | null;
  files: number;
  dirs: number;
  /** Content bytes written (and verified). */
  bytes: number;
  /** Databases integrity-checked. */
  databases: number;
  /** tmp/ and cache/ directories found in the backup and removed from the restored tree. */
  cachesCleared: string[];
  /** Only part of the backup was restored (--include), into a new place. */
  partial: boolean;
  /** Whether the Global Storage Lock was held on the live tree for the swap. */
  storageLock: boolean;
  durationMs: number;
  /** An interrupted earlier restore of this target that was finished or rolled back first. */
  recovered: RecoverResult | null;
  warnings: string[];
}

interface Staged {
  files: number;
  dirs: number;
  bytes: number;
  databases: number;
  cachesCleared: string[];
  keep: KeptMetadata[];
  /** Why the recorded owners were not all given, if they were not. */
  ownersWarning: string | undefined;
}

/**
 * Where a backup path goes: backup paths are relative, without '.', '..' or empty parts (src/snapshot/validate.ts).
 * A string form with escapes goes to the file system through fsPath (src/fs/byte-names.ts).
 */
const abs = (root: string, rel: string): string => `${root}/${rel}`;

function notInBackup(path: string): StopError {
  return new StopError('CHECKSUM_MISMATCH', `backup tree: ${path}: its parent directory is not in the backup`, {
    path,
    hint: 'the backup metadata is damaged or forged; nothing was restored from it — use another backup',
  });
}

function lockOwner(backupId: string): string {
  return `fole-backup restore ${backupId.slice(0, 8)}:${currentUser()}@${hostname()}:${process.pid}`;
}

/** A database under a tmp/ or cache/ directory: removed with it, never checked. */
function inEphemeralDir(path: string): boolean {
  return path
    .split('/')
    .slice(0, -1)
    .some((name) => EPHEMERAL_DIR_NAMES.has(name));
}

/** The side-file paths of a database, and the last of them in tree order. */
function sidePathsOf(path: string): { all: string[]; last: string } {
  const all = SQLITE_SIDE_SUFFIXES.map((s) => path + s);
  return { all, last: all.reduce((a, b) => (comparePaths(a, b) >= 0 ? a : b)) };
}

/** Write and verify the whole tree into plan.staging. */
async function stageTree(repo: BlobReader, snap: Snapshot, plan: RestorePlan, opts: ExecuteOptions): Promise<Staged> {
  const reporter = opts.reporter ?? silentReporter;
  const root = plan.staging;
  try {
    await mkdir(root, { mode: 0o700 });
  } catch (err) {
    throw fsError('write', root, err);
  }
  const dirs: TreeEntry[] = [];
  const dirSet = new Set<string>(['']);
  const dbs: TreeEntry[] = [];
  const keep: KeptMetadata[] = [];
  let files = 0;
  let bytes = 0;
  const totals = { totalFiles: plan.write.files, totalBytes: plan.write.bytes };
  const ownership = new Ownership();
  ownership.observe(snap.root);
  // what is staged goes back to disk once its last byte is written, while the checks read it: the final syncfs has
  // little left to do
  const flusher = new BackgroundSync(root);
  let syncAsked = false;
  const syncStagedOnce = (): void => {
    if (syncAsked) return;
    syncAsked = true;
    flusher.flush();
  };
  // files are written in windows, pack by pack, on worker threads (src/restore/write-files.ts)
  const writer = await FileWriter.start(repo, root, {
    // a database gets its mode after the integrity check (a read-only mode would get in its way)
    applyMetadata: (e) => e.kind === 'file',
    owner: (e) => ownership.give(e),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    onBytes: (n, path) => {
      bytes += n;
      reporter.progress({ files, bytes, ...totals, current: path });
      // every content byte is staged: what is left (read-backs, integrity checks) reads while the disk writes
      if (bytes >= totals.totalBytes) syncStagedOnce();
    },
    onFiles: (n) => {
      files += n;
    },
  }).catch(async (err: unknown) => {
    // staging never started (the index could not be read, an abort): the sync shell must not outlive it
    await flusher.stop();
    throw err;
  });
  try {
    // how the writer wants its windows cut: larger from a remote backend (src/restore/write-files.ts)
    const cut = writer.windows;
    let window: TreeEntry[] = [];
    let windowBytes = 0;
    let windowMulti = 0;
    // Database checks start while later files are still being written, as soon as
    // no side file of the database can come any more (in tree order they follow it,
    // up to its "-wal"). A database whose side file is in the backup is checked
    // after staging, where that file makes the check fail as it must. A failed
    // check is reported only after staging, in database order, as if all checks ran then.
    const checks = new Map<string, Promise<void>>();
    let unsettled: { e: TreeEntry; side: string[]; last: string; hasSide: boolean }[] = [];
    let settled: TreeEntry[] = [];
    const startCheck = (d: TreeEntry): void => {
      const p = writer.checkDatabase(d);
      p.catch(() => undefined);
      checks.set(d.path, p);
    };
    const flush = async (): Promise<void> => {
      if (window.length > 0) {
        const batch = window;
        window = [];
        windowBytes = 0;
        windowMulti = 0;
        await writer.addWindow(batch);
      }
      // only databases already handed to the writer
      for (const d of settled) startCheck(d);
      settled = [];
    };

    reporter.phase('stage files');
    const tree = readTree(repo, snap.tree);
    for await (const e of plan.selection === null ? tree : selectEntries(tree, plan.selection)) {
      throwIfAborted(opts.signal);
      const slash = e.path.lastIndexOf('/');
      if (!dirSet.has(slash === -1 ? '' : e.path.slice(0, slash))) throw notInBackup(e.path);
      if (unsettled.length > 0) {
        unsettled = unsettled.filter((u) => {
          if (u.side.includes(e.path)) u.hasSide = true;
          if (comparePaths(e.path, u.last) <= 0) return true;
          if (!u.hasSide) settled.push(u.e);
          return false;
        });
      }
      ownership.observe(e);
      const dest = abs(root, e.path);
      if (e.path === 'core' || e.path === 'core/core.db') keep.push({ path: e.path, mode: e.mode, mtimeMs: e.mtimeMs });
      if (e.kind === 'dir') {
        try {
          // synchronous: one system call, where a promise costs a thread-pool round trip (5k directories)
          mkdirSync(fsPath(dest), { mode: 0o700 });
        } catch (err) {
          throw fsError('write', dest, err);
        }
        dirs.push(e);
        dirSet.add(e.path);
        continue;
      }
      if (e.kind === 'db') {
        dbs.push(e);
        if (!inEphemeralDir(e.path)) {
          const side = sidePathsOf(e.path);
          unsettled.push({ e, side: side.all, last: side.last, hasSide: false });
        }
      }
      window.push(e);
      windowBytes += e.size ?? 0;
      if ((e.chunks?.length ?? 0) > 1) windowMulti++;
      if (window.length >= cut.files || windowBytes >= cut.bytes || windowMulti >= cut.multiFiles) await flush();
    }
    // the tree is over: no side file can come any more
    for (const u of unsettled) if (!u.hasSide) settled.push(u.e);
    await flush();
    await writer.drain();
    // the totals come from the snapshot's stats: should they not add up, the files are staged all the same
    syncStagedOnce();

    // caches: a backup never holds tmp/ or cache/; if this one does, they do not survive
    const cleared: string[] = [];
    for (const d of dirs) {
      if (!EPHEMERAL_DIR_NAMES.has(basename(d.path)) || cleared.some((c) => d.path.startsWith(`${c}/`))) continue;
      await removeTree(abs(root, d.path));
      cleared.push(d.path);
    }
    const live = (p: string): boolean => !cleared.some((c) => p === c || p.startsWith(`${c}/`));
    const keptDirs = cleared.length === 0 ? dirs : dirs.filter((d) => live(d.path));
    const keptDbs = cleared.length === 0 ? dbs : dbs.filter((d) => live(d.path));

    reporter.phase('check databases');
    // the databases not checked yet (their side files, if any, are in staging now), all at once
    for (const d of keptDbs) if (!checks.has(d.path)) startCheck(d);
    let checked = 0;
    for (const d of keptDbs) {
      throwIfAborted(opts.signal);
      await (checks.get(d.path) as Promise<void>).catch((err: unknown) => {
        throwIfAborted(opts.signal);
        throw err;
      });
      reporter.progress({ files: ++checked, bytes: 0, totalFiles: keptDbs.length, current: d.path });
    }

    // every file and database is final: the workers can go
    await writer.close();
    await flusher.stop();

    // directories last and deepest first (reverse tree order): their entries are final now
    for (let i = keptDirs.length - 1; i >= 0; i--) {
      const d = keptDirs[i] as TreeEntry;
      const owner = ownership.give(d);
      applyMeta(abs(root, d.path), { mode: d.mode, mtimeMs: d.mtimeMs, ...(owner === undefined ? {} : { owner }) });
    }
    const rootOwner = ownership.give(plan.rootOwner ?? undefined);
    try {
      if (rootOwner !== undefined) await chown(root, rootOwner.uid, rootOwner.gid);
      await chmod(root, plan.rootMode);
    } catch (err) {
      throw fsError('write', root, err);
    }
    // everything staged reaches the disk before the journal says "staged": one syncfs, not an fsync per file
    syncFilesystem(root);
    await fsyncDir(dirname(root));
    return {
      files,
      dirs: keptDirs.length,
      bytes,
      databases: keptDbs.length,
      cachesCleared: cleared,
      keep: keep.filter((k) => live(k.path)),
      ownersWarning: ownership.warning(),
    };
  } finally {
    // before staging may be removed: nothing writes into it after this
    await writer.close();
    await flusher.stop();
  }
}

async function existsPath(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** STOP when the target is no longer what the plan was made for. */
async function assertUnchanged(plan: RestorePlan, now: TargetState): Promise<void> {
  const was = plan.target;
  const same =
    now.path === was.path &&
    now.kind === was.kind &&
    !now.mountPoint &&
    now.hasCoreDb === plan.storageLock &&
    (now.kind !== 'storage-root' || JSON.stringify(now.modules) === JSON.stringify(was.modules));
  if (!same) {
    throw new StopError(
      'UNCLEAR_RESTORE_TARGET',
      `restore target ${was.path} changed while the backup was being staged: it held ${was.holds}` +
        `, now it is ${now.kind}`,
      {
        path: was.path,
        hint:
          'something else is working on the target; nothing was changed — find out what, then plan the ' +
          'restore again (--dry-run)',
      },
    );
  }
  if (plan.previousTree !== null && (await existsPath(plan.previousTree))) {
    throw new StopError('UNCLEAR_RESTORE_TARGET', `${plan.previousTree} appeared while the backup was being staged`, {
      path: plan.previousTree,
      hint: 'something else is working beside the target; nothing was changed — run the restore again',
    });
  }
}

/**
 * Carry out `plan` (made by planRestore for `snap`). Recovering an earlier
 * interrupted restore is the caller's job (src/restore/restore.ts).
 */
export async function executeRestore(
  repo: Repository,
  snap: Snapshot,
  plan: RestorePlan,
  opts: ExecuteOptions,
): Promise<Omit<RestoreResult, 'recovered' | 'durationMs'>> {
  const reporter = opts.reporter ?? silentReporter;
  const warnings: string[] = [...plan.warnings];
  const warn = (msg: string): void => {
    warnings.push(msg);
    reporter.warn(msg, plan.target.path);
  };
  const target = plan.target.path;
  let journal: RestoreJournal = newJournal({
    backupId: plan.backupId,
    target,
    staging: plan.staging,
    previousTree: plan.previousTree,
    mode: plan.mode,
    lockOwner: lockOwner(plan.backupId),
  });
  // the index is needed once staging starts: read it while the journal and the lock are written
  repo.loadIndex().catch(() => undefined);
  await createJournal(journal);
  markRestoreActive(target);
  let repoLock: RepositoryLock | undefined;
  let storageLock: HeldStorageLock | undefined;
  let swapping = false;
  try {
    repoLock = await RepositoryLock.acquireForReading(repo, {
      operation: 'restore',
      onUnlocked: warn,
      onStale: (l) =>
        warn(`ignoring stale repository lock ${l.name.slice(0, 12)} (${l.stale}); \`fole-backup unlock\` removes it`),
    });
    const staged = await stageTree(repo, snap, plan, opts);
    if (staged.ownersWarning !== undefined) warn(staged.ownersWarning);
    await repoLock?.release();
    repoLock = undefined;

    reporter.phase('lock');
    await assertUnchanged(plan, await opts.inspect());
    await opts.beforeLock?.();
    if (plan.storageLock) {
      storageLock = await acquireStorageLock({
        storageRoot: target,
        owner: journal.lockOwner,
        waitMs: opts.storageLockWaitMs ?? 0,
        onTakeover: (stale, reason) => warn(`took over stale storage lock held by ${stale.owner} (${reason})`),
      });
      await assertUnchanged(plan, await opts.inspect());
      const row = readStorageLock(target);
      if (row === undefined || row.owner !== storageLock.owner) {
        throw new FoleBackupError('STORAGE_LOCKED', `storage lock of ${target} was lost right after it was taken`, {
          hint:
            'another process took the Global Storage Lock; nothing was changed — stop FOLE and run the ' +
            'restore again',
        });
      }
    }
    await opts.underLock?.();
    await applyKept(plan.staging, staged.keep);
    await fsyncDir(join(plan.staging, 'core')).catch(() => undefined);
    // the last moment everything can still be undone (a signal during the final sync or the lock lands here)
    throwIfAborted(opts.signal);
    journal = await updateJournal(journal, 'staged', { keep: staged.keep });

    reporter.phase('swap');
    swapping = true;
    opts.onSwap?.();
    if (plan.previousTree !== null) {
      await renameDurable(target, plan.previousTree);
      journal = await updateJournal(journal, 'live-moved-aside');
    }
    await renameDurable(plan.staging, target);
    journal = await updateJournal(journal, 'staging-moved-in');

    reporter.phase('finish');
    await finishRestore(journal, warn, storageLock);
    storageLock = undefined;
    return {
      backupId: plan.backupId,
      target,
      mode: plan.mode,
      previousTree: plan.previousTree,
      files: staged.files,
      dirs: staged.dirs,
      bytes: staged.bytes,
      databases: staged.databases,
      cachesCleared: staged.cachesCleared,
      storageLock: plan.storageLock,
      partial: plan.selection !== null,
      warnings,
    };
  } catch (err) {
    if (!swapping) {
      // nothing live was touched: undo our own work and report the cause
      await storageLock?.release().catch(() => undefined);
      storageLock = undefined;
      await removeTree(plan.staging).catch((e: unknown) => warn(`could not remove ${plan.staging}: ${String(e)}`));
      await removeJournal(target).catch(() => undefined);
      throw err;
    }
    // the swap was under way: settle it now, by the same rule as a later recovery
    let settled: RecoverResult;
    try {
      settled = await recover(target, { ownJournal: true, reporter });
    } catch (again) {
      throw new FoleBackupError(
        err instanceof FoleBackupError ? err.code : 'WRITE_ERROR',
        `restore of ${target} failed during the swap (${err instanceof Error ? err.message : String(err)}` +
          `) and could not be settled (${again instanceof Error ? again.message : String(again)})`,
        {
          cause: err,
          path: target,
          hint:
            `run \`fole-backup recover --target ${target}\`; the journal ${journalPathOf(target)}` +
            ` says where each tree is`,
        },
      );
    }
    throw new FoleBackupError(
      err instanceof FoleBackupError ? err.code : 'WRITE_ERROR',
      `restore of ${target} failed during the swap: ${err instanceof Error ? err.message : String(err)}` +
        `; ${settled.detail}`,
      {
        cause: err,
        path: target,
        hint:
          settled.action === 'completed'
            ? 'the restore is complete nevertheless; check the warnings'
            : 'fix the cause and run the restore again',
      },
    );
  } finally {
    await repoLock?.release().catch(() => undefined);
    await storageLock?.release().catch(() => undefined);
    markRestoreDone(target);
  }
}
