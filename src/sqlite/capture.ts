/**
 * Point-in-time capture of many live SQLite databases at ONE instant.
 *
 * FOLE keeps its state in many databases (core.db, module.db, project.db, map.db…)
 * and commits to several of them for one logical change. A backup that copies them
 * one after the other can fall between two of those commits and restore a state that
 * never existed. And a WAL database's committed rows may live only in its `-wal`, so
 * copying the `.db` file loses data; copying `.db` + `-wal` of a live database came
 * out SQLITE_CORRUPT every time we measured. So we never copy the file:
 *
 *   for each db, sorted by path:   open a writable connection W and a read-only one R
 *                                  (an incremental opens R only where the database
 *                                  looks changed since the parent: see below)
 *   repeat until busyTimeoutMs is spent:
 *     for each db in order:        W.BEGIN IMMEDIATE           (wait a bounded slice)
 *     if one is busy:              ROLLBACK all, back off with jitter, try again
 *                                  (we may hold B while a multi-db writer holds A and
 *                                  waits for B: giving everything back breaks that)
 *   -- every write lock is ours: no commit is in flight anywhere = THE instant --
 *   for each db:                   its fingerprint; unchanged since the parent: no copy
 *   for each db to copy:           (open R if it has none yet)
 *                                  R.BEGIN; R.SELECT … sqlite_master   (pin a snapshot)
 *   for each db:                   W.ROLLBACK                  (writers go on; the time
 *                                  between the first lock and here is writersBlockedMs)
 *   for each db:                   R.backup(copy)  (Online Backup API, page for page)
 *                                  R.ROLLBACK, close           (release the pin at once)
 *   for each copy:                 transform, integrity_check, measure, close; assert
 *                                  no -wal/-shm/-journal is left beside it (check-copy.ts;
 *                                  on another thread while the next is copied, if given one)
 *
 * Why the pinned read snapshot: sqlite3_backup_step() restarts from page 1 whenever
 * another connection commits between two steps, so a stepped backup of a busy database
 * never finishes (measured: 6,000–18,000 restarts, no end). A backup from a connection
 * that already has an open read transaction reads that snapshot for every step and is
 * never restarted, and the snapshot is the instant above. Each step copies up to
 * `backupStepPages` pages (default: 32 MiB worth): the copy runs while the backup
 * already stores other files, so it yields to the event loop (worker messages, lock
 * heartbeats, abort) between steps. Should a restart ever be observed anyway (remaining pages going up),
 * the rest is copied in one step.
 *
 * WAL: while a read snapshot is pinned, checkpoints cannot pass it, so the -wal of a
 * busy database grows until the copy is done; copies are made in path order and each
 * pin is released right after its copy. Rollback-journal databases are copied first:
 * there a pinned reader (a SHARED lock) blocks every writer's commit until it is gone.
 *
 * Sources are never modified: W only takes and rolls back an empty write transaction.
 * A source's `-wal`/`-shm` are never touched by us; SQLite itself removes them when the
 * last connection closes, so the order of closing decides: if the source had a `-wal`
 * when we came (a running or crashed FOLE), W is closed while R still holds the file
 * open and R, being read-only, cannot checkpoint, so the `-wal` stays exactly as found;
 * if it had none (a cleanly closed database), W is closed last and SQLite removes the
 * empty side files our connections created.
 *
 * An incremental opens R before the instant only for a database whose fingerprint,
 * taken then, differs from the parent's: the others are most likely unchanged and need
 * no snapshot. Which databases are copied is still decided by the fingerprints taken at
 * the instant; one that changed in between gets its R opened and pinned inside the
 * window. On 906 databases the readers not opened were ~150 MB of peak memory (two
 * connections per database, ~165 KB each, are held at the instant). One that had a
 * `-wal` gets an R just to be closed after W, as above.
 */
import { withSideFiles } from './side-files.js';
import { openDatabaseInside } from './open-inside.js';
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { isAbsolute, join, posix } from 'node:path';
import { abortError, errnoCode, FoleBackupError, fsError, StopError, throwIfAborted } from '../errors.js';
import { sleep } from '../concurrency/sleep.js';
import { optionalNativeModule } from '../native/module.js';
import { isBusy, relabel, sqliteError } from './capture-errors.js';
import { type CapturedDatabase, checkCopy, type CopyToCheck, type CopyTransform } from './check-copy.js';

export type { CapturedDatabase } from './check-copy.js';

interface CaptureProgressEvent {
  phase: 'quiesce' | 'copy' | 'check';
  done: number;
  total: number;
  path?: string;
}

/** One database as soon as the capture has settled it: copied, unchanged, damaged, locked, a hard link, or gone. */
export interface SettledDatabase {
  path: string;
  /** Its checked copy in staging. */
  captured?: CapturedDatabase;
  /** The fingerprint that proves it unchanged since the parent backup: not copied. */
  unchanged?: string;
  /** Why it is damaged (an `optional` database only). */
  damaged?: string;
  /** Why it could not be locked (an `optional` database only). */
  locked?: string;
  /** The database it is the same file as (a hard link; an `optional` database only). */
  sameFileAs?: string;
  /** Gone when the capture came to open it. */
  vanished?: boolean;
}

export interface CaptureOptions {
  /** Absolute path of the STORAGE_ROOT. */
  storageRoot: string;
  /** Relative POSIX paths of the databases under storageRoot (no duplicates). */
  databases: readonly string[];
  /** An existing private directory; the snapshot copies are created here with unique names. */
  stagingDir: string;
  /**
   * A private directory in memory (tmpfs) for copies that fit, and how many bytes of copies it may hold at once:
   * a copy goes there when its size and the copies still in it fit the budget, else into `stagingDir`. A copy
   * on disk is written back to it by the commit that ends the Online Backup (its destination syncs, and nothing
   * reaches that connection to say otherwise); in memory that costs nothing. Whoever stores a copy removes it
   * when done, which frees its room for the next.
   */
  memoryStaging?: MemoryStaging;
  /** Max wait for writers to release their locks (default 30_000). */
  busyTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (event: CaptureProgressEvent) => void;
  /**
   * Called on each copy after it is made, before it is integrity-checked & measured (e.g. delete our lock row from
   * core.db).
   */
  transform?: CopyTransform;
  /**
   * Checks a copy elsewhere (checkCopy on another thread: src/sqlite/check-thread.ts, with
   * the transform there), while the next one is made. Without it each copy is checked
   * here before the next is made, with `transform`.
   */
  check?: (copy: CopyToCheck) => Promise<CapturedDatabase>;
  /**
   * Pages copied per backup step (default: 32 MiB worth of pages). The read snapshot
   * is pinned, so steps are never restarted by writers; smaller steps only yield to the
   * event loop more often.
   */
  backupStepPages?: number;
  /**
   * Incremental backups: called per database with its source fingerprint taken AT
   * the instant (while every write lock is held). Returning true means the caller
   * already holds this exact content (same fingerprint as a parent backup), so no
   * copy is made; the database is listed in `unchanged`. Also asked before the
   * instant, with a fingerprint taken then, whether a read connection is worth
   * opening ahead: a pure comparison, with no effect of its own.
   */
  unchanged?: (relPath: string, fingerprint: string) => boolean;
  /**
   * Asks for a file to be read into the kernel's page cache in the background (default: the
   * native module's readFileAhead, or nothing where the module is missing). Apart for a test
   * to see what is read ahead.
   */
  readFileAheadWith?: (path: string) => void;
  /**
   * Told about each database as soon as it is settled — copied and checked, or
   * kept as unchanged — before the others are done. The capture as a whole can
   * still fail afterwards (a later database); only its result is final.
   */
  onDatabase?: (d: SettledDatabase) => void;
  /**
   * Told about each copy as soon as it is made, before it is checked: a caller may read
   * it meanwhile (a check does not write a copy it does not transform). Its database is
   * settled later (onDatabase), possibly as damaged, and until then the copy may still be
   * removed.
   */
  onCopied?: (copy: MadeCopy) => void;
  /**
   * Databases that may be set aside: one that SQLite refuses as corrupt or as
   * no database, or whose copy fails integrity_check, is left out (listed in
   * `damaged`, told through onDatabase with `damaged`); one a writer keeps
   * locked for longer than busyTimeoutMs is left out as well (listed in
   * `locked`, told with `locked`), instead of failing the capture. Any other
   * damaged database is a STOP DB_INTEGRITY_ERROR, any other locked one
   * DB_LOCKED. Of optional databases that are one file under several names
   * (hard links) the first by path is captured and the others are left out
   * (listed in `sameFile`, told with `sameFileAs`); when one of the names is
   * not optional the capture fails with UNSAFE_PATH naming both.
   */
  optional?: readonly string[];
}

/** A copy just made, not yet checked. */
export interface MadeCopy {
  path: string;
  /** Absolute path of the copy in staging, closed. */
  file: string;
  size: number;
}

export interface CaptureResult {
  /** In the order given in `databases`, without those in `unchanged`. */
  databases: CapturedDatabase[];
  /** Databases whose fingerprint the `unchanged` callback accepted: not copied. */
  unchanged: { path: string; fingerprint: string }[];
  /** Databases of `optional` found damaged, with why: neither copied nor in `databases`. */
  damaged: { path: string; reason: string }[];
  /**
   * Databases of `optional` a writer kept locked past busyTimeoutMs, with the error: neither copied nor in `databases`.
   */
  locked: { path: string; reason: string }[];
  /** Databases of `optional` gone when the capture came to open them (deleted since the scan): left out. */
  vanished: { path: string }[];
  /** Databases of `optional` that are the same file as an earlier one (`as`): neither copied nor in `databases`. */
  sameFile: { path: string; as: string }[];
  /** ISO UTC time of the instant every database was captured at. */
  capturedAt: string;
  /** How long the capture held write locks (all attempts), i.e. kept writers waiting. */
  writersBlockedMs: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 30_000;
const STEP_BYTES = 32 * 1024 * 1024;
/** SQLite's maximum for a step: copy everything that remains. */
const ALL_PAGES = 0x7fffffff;
/**
 * Page cache of the read-only connection a copy is made from, in KiB. The Online
 * Backup API reads every page once, so a cache only costs memory and bookkeeping:
 * against SQLite's 16 MB, the copy takes ~20% less CPU (docs/BENCHMARKS.md).
 */
const SOURCE_CACHE_KIB = 256;
/** How long a reader opened only to be closed after W (releaseSource) may wait for a lock. */
const RELEASE_READER_WAIT_MS = 1000;

interface Source {
  rel: string;
  abs: string;
  /** The storage root the connections are opened under (openDatabaseInside). */
  root: string;
  /** Whether `<abs>-wal` existed before we opened the database. */
  hadWal: boolean;
  writer?: Database.Database;
  reader?: Database.Database;
  pinned: boolean;
  journalMode: string;
  copy?: string;
  fingerprint: string;
  skip?: boolean;
  /** Why it was set aside as damaged (an `optional` database only). */
  damaged?: string;
  /** Why it was set aside as locked by a writer (an `optional` database only). */
  locked?: string;
  /** The earlier database it is the same file as (an `optional` database only). */
  sameFileAs?: string;
  /** It was gone when the capture came to open it (an `optional` database only). */
  vanished?: boolean;
}

export interface MemoryStaging {
  dir: string;
  budgetBytes: number;
}

/**
 * Bytes of the files in `dir` (the copies still there); a file that went meanwhile counts nothing, and a directory
 * that cannot be read counts as full (the copy then goes to disk).
 */
function bytesIn(dir: string): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return Number.POSITIVE_INFINITY;
  }
  let total = 0;
  for (const name of names) total += lstatSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0;
  return total;
}

/**
 * Where the copy of pinned source `s` goes: the memory staging when the copy (its page count at the instant, times
 * its page size) fits beside what is still there, else the staging directory on disk.
 */
function copyDirFor(s: Source, opts: CaptureOptions): string {
  const m = opts.memoryStaging;
  if (m === undefined) return opts.stagingDir;
  const r = need(s.reader, s);
  const bytes = Number(r.pragma('page_count', { simple: true })) * Number(r.pragma('page_size', { simple: true }));
  return bytes + bytesIn(m.dir) <= m.budgetBytes ? m.dir : opts.stagingDir;
}

/** Create `dest` for a copy ourselves, so that a name clash fails instead of overwriting. */
function createCopyFile(dest: string, rel: string): void {
  try {
    closeSync(openSync(dest, 'wx', 0o600));
  } catch (err) {
    throw relabel(fsError('write', dest, err), rel);
  }
}

/**
 * Capture every database in `opts.databases` as of one instant into `opts.stagingDir` (and `opts.memoryStaging`).
 * Throws FoleBackupError DB_LOCKED when a writer keeps one locked for longer than
 * busyTimeoutMs, StopError DB_INTEGRITY_ERROR when a source is damaged or not a
 * database (unless it is `optional`: then it is set aside), READ_ERROR /
 * NOT_FOUND when one cannot be opened, UNSAFE_PATH when one lies behind a
 * symlink, ABORTED on abort.
 * On any failure every connection is closed and the copies made so far are removed.
 */
export async function captureDatabases(opts: CaptureOptions): Promise<CaptureResult> {
  const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!isAbsolute(opts.storageRoot)) {
    throw new FoleBackupError('USAGE', `capture: storage root must be an absolute path: ${opts.storageRoot}`);
  }
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new FoleBackupError('USAGE', `capture: busyTimeoutMs must be a non-negative integer: ${busyTimeoutMs}`);
  }
  const sources = makeSources(opts.storageRoot, opts.databases);
  const byPath = [...sources].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const progress = opts.onProgress ?? (() => undefined);
  const prefix = `capture-${randomBytes(6).toString('hex')}`;
  const optional = new Set(opts.optional ?? []);
  const damaged: CaptureResult['damaged'] = [];
  const locked: CaptureResult['locked'] = [];
  const vanished: CaptureResult['vanished'] = [];
  /**
   * Whether `err` may set `s` aside instead of failing the capture: damage, or a
   * writer holding it past the budget. An upload that a program keeps locked
   * (exclusive locking mode, a transaction left open) must not stop every backup
   * of the server; FOLE's own databases are never optional.
   */
  const tolerable = (s: Source, err: unknown): err is FoleBackupError =>
    optional.has(s.rel) &&
    ((err instanceof StopError && err.code === 'DB_INTEGRITY_ERROR') ||
      (err instanceof FoleBackupError && (err.code === 'DB_LOCKED' || err.code === 'NOT_FOUND')));
  const setAside = (s: Source, err: FoleBackupError): void => {
    releaseSource(s);
    removeCopy(s);
    if (err.code === 'NOT_FOUND') {
      // an upload deleted since the scan saw it: left out, as any file that vanishes is
      s.vanished = true;
      vanished.push({ path: s.rel });
      opts.onDatabase?.({ path: s.rel, vanished: true });
    } else if (err.code === 'DB_LOCKED') {
      s.locked = err.message;
      locked.push({ path: s.rel, reason: err.message });
      opts.onDatabase?.({ path: s.rel, locked: err.message });
    } else {
      s.damaged = err.message;
      damaged.push({ path: s.rel, reason: err.message });
      opts.onDatabase?.({ path: s.rel, damaged: err.message });
    }
  };
  /** Whether fingerprint `fp` of `s` is its parent's (an incremental): nothing to copy, no snapshot to pin. */
  const asInParent = (s: Source, fp: string): boolean => fp !== '' && opts.unchanged?.(s.rel, fp) === true;
  let ok = false;
  // checks under way elsewhere (opts.check): each settles its database and never rejects
  const checking: Promise<void>[] = [];
  try {
    throwIfAborted(opts.signal);
    const sameFile = setAsideHardLinks(byPath, optional);
    for (const { path, as } of sameFile) opts.onDatabase?.({ path, sameFileAs: as });
    // one budget for every optional database: a few uploads held by stuck programs
    // must not each cost the whole wait (FOLE's own are waited for in full)
    const optionalDeadline = performance.now() + busyTimeoutMs;
    const readAhead = fileReadAhead(opts.readFileAheadWith ?? optionalNativeModule()?.readFileAhead);
    // A WAL database's -wal is read whole by the first connection to it when nobody else has it open (to rebuild
    // the index in -shm), and its frames by the copy; cold, each read waits for the disk, one database after the
    // other, while nothing else has work yet. All of them are asked for now, in the order they are opened (a
    // missing one is nothing to read).
    for (const s of byPath) if (s.sameFileAs === undefined) readAhead?.(`${s.abs}-wal`);
    for (const s of byPath) {
      if (s.sameFileAs !== undefined) continue;
      try {
        openSource(
          s,
          optional.has(s.rel) ? Math.max(0, Math.floor(optionalDeadline - performance.now())) : busyTimeoutMs,
          asInParent,
          readAhead,
        );
      } catch (err) {
        if (!tolerable(s, err)) throw err;
        setAside(s, err);
      }
    }

    let live = byPath.filter(
      (s) => s.damaged === undefined && s.locked === undefined && s.sameFileAs === undefined && s.vanished !== true,
    );
    let instant: QuiesceResult;
    for (;;) {
      try {
        const q = await quiesce(live, busyTimeoutMs, opts.signal, progress, {
          optional: (s) => optional.has(s.rel),
          unchanged: (s) => asInParent(s, s.fingerprint),
        });
        if ('stuck' in q) {
          // optional databases writers held past the budget, all found at once: set them aside, take the instant again
          for (const s of q.stuck) setAside(s, lockedTooLong(s.rel, busyTimeoutMs));
          live = live.filter((x) => !q.stuck.includes(x));
          continue;
        }
        instant = q;
        break;
      } catch (err) {
        // damage that shows only when the snapshot is pinned, or an optional database a
        // writer held past the budget: set that one aside and take the instant again
        const s = err instanceof FoleBackupError ? live.find((x) => x.rel === err.path) : undefined;
        if (s === undefined || !tolerable(s, err)) throw err;
        setAside(s, err);
        live = live.filter((x) => x !== s);
      }
    }
    const { capturedAt, writersBlockedMs } = instant;

    // Rollback-journal sources first: their pinned readers block writers' commits.
    const copyOrder = [...live.filter((s) => s.journalMode !== 'wal'), ...live.filter((s) => s.journalMode === 'wal')];
    // each copy is checked as soon as it is made (here, or elsewhere while the next one is
    // copied) and handed out at once (onDatabase), so a caller can store it meanwhile
    let done = 0;
    let checked = 0;
    const copies = new Map<Source, CapturedDatabase>();
    const settleCopy = (s: Source, captured: CapturedDatabase): void => {
      copies.set(s, captured);
      // a check that ends after an abort is not told: the capture fails
      if (opts.signal?.aborted === true) return;
      progress({ phase: 'check', done: ++checked, total: sources.length, path: s.rel });
      opts.onDatabase?.({ path: s.rel, captured });
    };
    /** The first failure of a check made elsewhere that does not set its database aside. */
    let checkFailure: { err: unknown } | undefined;
    for (const [i, s] of copyOrder.entries()) {
      throwIfAborted(opts.signal);
      if (checkFailure !== undefined) throw checkFailure.err;
      if (asInParent(s, s.fingerprint)) {
        s.skip = true;
        releaseSource(s);
        progress({ phase: 'copy', done: ++done, total: sources.length, path: s.rel });
        opts.onDatabase?.({ path: s.rel, unchanged: s.fingerprint });
        continue;
      }
      const name = `${prefix}-${String(i).padStart(5, '0')}-${safeName(s.rel)}`;
      const onDisk = join(opts.stagingDir, name);
      let dest = join(copyDirFor(s, opts), name);
      createCopyFile(dest, s.rel);
      s.copy = dest;
      let captured: CapturedDatabase;
      try {
        try {
          await copySource(s, dest, opts.backupStepPages, opts.signal);
        } catch (err) {
          // memory that filled up meanwhile (another program's files in the same tmpfs): the copy again, on disk
          if (dest === onDisk || !(err instanceof FoleBackupError) || err.code !== 'NO_SPACE') throw err;
          removeCopy(s);
          dest = onDisk;
          createCopyFile(dest, s.rel);
          s.copy = dest;
          await copySource(s, dest, opts.backupStepPages, opts.signal);
        }
        releaseSource(s);
        progress({ phase: 'copy', done: ++done, total: sources.length, path: s.rel });
        throwIfAborted(opts.signal);
        const copy: CopyToCheck = { rel: s.rel, file: dest, journalMode: s.journalMode, fingerprint: s.fingerprint };
        if (opts.onCopied !== undefined) {
          let size: number;
          try {
            size = statSync(dest).size;
          } catch (err) {
            throw relabel(fsError('read', dest, err), s.rel);
          }
          opts.onCopied({ path: s.rel, file: dest, size });
        }
        if (opts.check !== undefined) {
          checking.push(
            opts
              .check(copy)
              .then((c) => settleCopy(s, c))
              .catch((err: unknown) => {
                if (tolerable(s, err)) setAside(s, err);
                else checkFailure ??= { err };
              }),
          );
          continue;
        }
        captured = checkCopy(copy, opts.transform);
      } catch (err) {
        if (!tolerable(s, err)) throw err;
        setAside(s, err);
        continue;
      }
      settleCopy(s, captured);
    }
    await Promise.all(checking);
    throwIfAborted(opts.signal);
    if (checkFailure !== undefined) throw checkFailure.err;

    const databases: CapturedDatabase[] = [];
    const unchanged: CaptureResult['unchanged'] = [];
    for (const s of sources) {
      if (s.damaged !== undefined || s.locked !== undefined || s.sameFileAs !== undefined || s.vanished === true)
        continue;
      if (s.skip) {
        unchanged.push({ path: s.rel, fingerprint: s.fingerprint });
        continue;
      }
      const captured = copies.get(s);
      if (captured === undefined)
        throw new FoleBackupError('INTERNAL', `capture ${s.rel}: no copy was made`, { path: s.rel });
      databases.push(captured);
    }
    ok = true;
    return { databases, unchanged, damaged, locked, sameFile, vanished, capturedAt, writersBlockedMs };
  } finally {
    // a copy is removed only once nothing checks it any more
    await Promise.all(checking);
    for (const s of byPath) releaseSource(s);
    if (!ok) for (const s of sources) removeCopy(s);
  }
}

/**
 * Find databases that are one file under several names (hard links), before
 * any is opened: the capture would take the write lock of the first name and
 * then wait, the whole budget long, for itself to let go of the second. Of
 * optional ones the first by path is kept and the others are marked
 * `sameFileAs`; a FOLE database sharing its file with another name is refused.
 * One that cannot be stat'ed is left to openSource, which reports it.
 */
function setAsideHardLinks(byPath: readonly Source[], optional: ReadonlySet<string>): { path: string; as: string }[] {
  const first = new Map<string, Source>();
  const out: { path: string; as: string }[] = [];
  for (const s of byPath) {
    let key: string;
    try {
      const st = lstatSync(s.abs, { bigint: true });
      key = `${st.dev}:${st.ino}`;
    } catch {
      continue;
    }
    const earlier = first.get(key);
    if (earlier === undefined) {
      first.set(key, s);
      continue;
    }
    if (!optional.has(s.rel) || !optional.has(earlier.rel)) {
      throw new FoleBackupError(
        'UNSAFE_PATH',
        `capture: ${earlier.rel} and ${s.rel} are the same file (hard links); a database of FOLE's must be a ` +
          `file of its own`,
        {
          path: s.rel,
          hint:
            `find out how they came to be linked; give each its own file (a copy, not a link: cp, not ln) ` +
            `or remove the one that does not belong, then run again`,
        },
      );
    }
    s.sameFileAs = earlier.rel;
    out.push({ path: s.rel, as: earlier.rel });
  }
  return out;
}

/** Remove a source's copy in staging, with any side file SQLite left beside it. */
function removeCopy(s: Source): void {
  if (s.copy === undefined) return;
  for (const f of withSideFiles(s.copy)) rmSync(f, { force: true });
  s.copy = undefined;
}

function makeSources(storageRoot: string, databases: readonly string[]): Source[] {
  const seen = new Set<string>();
  return databases.map((rel) => {
    const norm = posix.normalize(rel);
    if (
      rel === '' ||
      posix.isAbsolute(rel) ||
      norm !== rel ||
      norm === '..' ||
      norm.startsWith('../') ||
      rel.includes('\\')
    ) {
      throw new FoleBackupError('USAGE', `capture: not a normalized relative path: ${JSON.stringify(rel)}`, {
        path: rel,
      });
    }
    if (seen.has(rel)) throw new FoleBackupError('USAGE', `capture: database listed twice: ${rel}`, { path: rel });
    seen.add(rel);
    return {
      rel,
      abs: join(storageRoot, ...rel.split('/')),
      root: storageRoot,
      hadWal: false,
      pinned: false,
      journalMode: '',
      fingerprint: '',
    };
  });
}

/**
 * Open W on a source and make sure it is a readable SQLite database; then R, unless
 * its fingerprint now is that of the parent (it is opened inside the
 * window if the fingerprint at the instant says otherwise). Neither is ever opened
 * through a symlink (src/sqlite/open-inside.ts). A database given R is read ahead: its copy
 * will read every page.
 */
function openSource(
  s: Source,
  busyTimeoutMs: number,
  asInParent: (s: Source, fp: string) => boolean,
  readAhead: ((path: string) => void) | undefined,
): void {
  s.hadWal = existsSync(`${s.abs}-wal`);
  // Opening may wait the whole budget for a writer's commit (rollback mode); inside
  // the quiesce window both connections wait only a short slice (set there).
  const timeout = Math.min(busyTimeoutMs, 0x7fffffff);
  opening(s, () => {
    s.writer = openDatabaseInside(s.root, s.rel, { timeout });
    // Reading the header and schema here surfaces "not a database" and damage early,
    // and tells a WAL database (known only once its header is read) from the others.
    s.writer.pragma('schema_version', { simple: true });
    s.journalMode = String(s.writer.pragma('journal_mode', { simple: true }));
  });
  if (asInParent(s, fingerprintOf(s.abs))) return;
  readAhead?.(s.abs);
  openReader(s, timeout);
}

/** Open R on a source: read-only, with a small cache (its pages are read once, by the copy). */
function openReader(s: Source, timeout: number): void {
  opening(s, () => {
    s.reader = openDatabaseInside(s.root, s.rel, { readonly: true, timeout });
    s.reader.pragma(`cache_size = -${SOURCE_CACHE_KIB}`);
    s.reader.pragma('schema_version', { simple: true });
  });
}

/**
 * Files of at most this size are read ahead. A larger one is read in order by the copy, which the kernel's own
 * read-ahead already serves (a 1 GB database's full backup was level with and without), and asked for whole it
 * would be held in the page cache all at once ahead of the copy, or, larger than memory, pushed out again before
 * the copy reaches it.
 */
const READ_AHEAD_MAX_BYTES = 64 * 1024 * 1024;

/** `ask`, for files up to READ_AHEAD_MAX_BYTES (a file that is missing or not regular: nothing to read). */
export function fileReadAhead(ask: ((path: string) => void) | undefined): ((path: string) => void) | undefined {
  if (ask === undefined) return undefined;
  return (path) => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isFile() === true && st.size <= READ_AHEAD_MAX_BYTES) ask(path);
  };
}

/** Run `open` on a source, its failure named after the source. */
function opening(s: Source, open: () => void): void {
  try {
    open();
  } catch (err) {
    if (err instanceof FoleBackupError) throw relabel(err, s.rel);
    throw sqliteError(s.rel, 'open', err, 'source');
  }
}

interface QuiesceResult {
  capturedAt: string;
  writersBlockedMs: number;
}

/**
 * Take every write lock at once, pin a read snapshot of each, let writers go.
 * When the budget is spent: if every database a writer still holds may be set
 * aside (`optional`), they are returned as `stuck`; otherwise DB_LOCKED.
 */
async function quiesce(
  byPath: Source[],
  busyTimeoutMs: number,
  signal: AbortSignal | undefined,
  progress: (e: CaptureProgressEvent) => void,
  is: {
    /** May be set aside when a writer holds it past the budget. */
    optional: (s: Source) => boolean;
    /** Its fingerprint at the instant is the parent's: no snapshot is pinned, no copy made. */
    unchanged: (s: Source) => boolean;
  },
): Promise<QuiesceResult | { stuck: Source[] }> {
  const deadline = performance.now() + busyTimeoutMs;
  const total = byPath.length;
  let blockedMs = 0;
  let slice = 50;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal);
    // Reported at the start of every attempt, so a retry is visible as another done: 0.
    progress({ phase: 'quiesce', done: 0, total });
    // Everything from the first BEGIN IMMEDIATE to the last ROLLBACK is synchronous:
    // no timer, callback or other work of ours can stretch the window writers wait in.
    const held: Source[] = [];
    let firstLockAt = 0;
    let busy: Source | undefined;
    let capturedAt: string | undefined;
    let pinnedAll = false;
    // Wait for a busy lock at most one slice of what is left of the budget.
    const wait = Math.max(0, Math.min(slice, Math.floor(deadline - performance.now())));
    for (const s of byPath) {
      need(s.writer, s).pragma(`busy_timeout = ${wait}`);
      if (s.reader !== undefined) need(s.reader, s).pragma(`busy_timeout = ${wait}`);
    }
    try {
      for (const s of byPath) {
        try {
          need(s.writer, s).exec('BEGIN IMMEDIATE');
        } catch (err) {
          if (isBusy(err)) {
            busy = s;
            break;
          }
          throw sqliteError(s.rel, 'lock', err, 'source');
        }
        if (held.length === 0) firstLockAt = performance.now();
        held.push(s);
      }
      if (busy === undefined) {
        // Every write lock is ours: nothing can commit anywhere. This is the instant.
        capturedAt = new Date().toISOString();
        for (const s of byPath) s.fingerprint = fingerprintOf(s.abs);
        for (const s of byPath) {
          if (is.unchanged(s)) continue;
          if (s.reader === undefined) {
            // changed since the fingerprint taken when it was opened: its reader now
            try {
              openReader(s, wait);
            } catch (err) {
              if (err instanceof FoleBackupError && err.code === 'DB_LOCKED') {
                busy = s;
                break;
              }
              throw err;
            }
          }
          const r = need(s.reader, s);
          try {
            r.exec('BEGIN');
            s.pinned = true;
            // A deferred transaction takes its snapshot at the first read.
            r.prepare('SELECT count(*) FROM sqlite_master').get();
          } catch (err) {
            if (isBusy(err)) {
              busy = s;
              break;
            }
            throw sqliteError(s.rel, 'pin snapshot of', err, 'source');
          }
        }
        pinnedAll = busy === undefined;
      }
    } finally {
      // Writers go on here, whatever happened above.
      for (const s of held) {
        // A failed ROLLBACK cannot keep the lock: the connection is closed on the way out.
        if (s.writer?.inTransaction) tryRun(() => s.writer?.exec('ROLLBACK'));
      }
      if (held.length > 0) blockedMs += performance.now() - firstLockAt;
      if (!pinnedAll) unpinAll(byPath);
    }
    if (pinnedAll && capturedAt !== undefined) {
      progress({ phase: 'quiesce', done: total, total });
      return { capturedAt, writersBlockedMs: Math.round(blockedMs * 1000) / 1000 };
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      const stuck = busy === undefined ? [] : [busy, ...byPath.filter((s) => s !== busy && heldByWriter(s))];
      const waitedFor = stuck.find((s) => !is.optional(s));
      if (stuck.length > 0 && waitedFor === undefined) return { stuck };
      throw lockedTooLong((waitedFor ?? busy)?.rel ?? '', busyTimeoutMs);
    }
    // Back off with jitter so a multi-database writer we collided with can finish.
    const pause = Math.min(left, Math.min(25 * attempt, 500) * (0.5 + Math.random()));
    await sleep(pause, signal);
    slice = Math.min(slice * 2, 2_000);
  }
}

/** Whether a writer holds `s` now: its write lock cannot be taken without waiting. Holds nothing afterwards. */
function heldByWriter(s: Source): boolean {
  const w = need(s.writer, s);
  w.pragma('busy_timeout = 0');
  try {
    w.exec('BEGIN IMMEDIATE');
  } catch (err) {
    if (isBusy(err)) return true;
    throw sqliteError(s.rel, 'lock', err, 'source');
  }
  w.exec('ROLLBACK');
  return false;
}

function lockedTooLong(rel: string, busyTimeoutMs: number): FoleBackupError {
  return new FoleBackupError(
    'DB_LOCKED',
    `capture ${rel}: database locked by a writer for longer than ${formatSeconds(busyTimeoutMs)}`,
    {
      path: rel,
      hint:
        'a long write transaction (or a stuck process) holds it; run the backup again when it has finished, ' +
        'or raise the busy timeout',
    },
  );
}

/** Copy a source from its pinned snapshot with the Online Backup API. */
async function copySource(
  s: Source,
  dest: string,
  stepPages: number | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const r = need(s.reader, s);
  let step = stepPages ?? 0;
  if (step <= 0) {
    const pageSize = Number(r.pragma('page_size', { simple: true }));
    step = Math.max(1, Math.floor(STEP_BYTES / (pageSize > 0 ? pageSize : 4096)));
  }
  let lastRemaining = Number.POSITIVE_INFINITY;
  try {
    await r.backup(dest, {
      progress: ({ remainingPages }) => {
        if (signal?.aborted) throw abortError();
        // A restart (remaining going up) means the snapshot was not held: finish in one step.
        if (remainingPages > lastRemaining) step = ALL_PAGES;
        lastRemaining = remainingPages;
        return step;
      },
    });
  } catch (err) {
    if (err instanceof FoleBackupError) throw err;
    throw sqliteError(s.rel, 'copy', err, 'source');
  }
}

const WAL_HEADER_BYTES = 32;
const WAL_FRAME_HEADER_BYTES = 24;
/**
 * How close to the moment it is taken a file time must be for a fingerprint not to be
 * trusted: a write right after our locks are released can get the very same time
 * (file times come from a coarse clock, one tick is 1–10 ms on Linux; whole-second
 * file systems get a window of their granularity).
 */
const RACY_NS = 20_000_000n;
const RACY_WHOLE_SECOND_NS = 2_000_000_000n;

/**
 * What a database's files look like, taken while every write lock is held: equal
 * fingerprints mean equal content.
 *
 * - main file: inode, size, mtime, ctime (ns). A write moves mtime and ctime, and
 *   nobody can set ctime back. It is stat'ed, never opened: closing any descriptor
 *   of a file drops every POSIX lock this process holds on it, our own connections'
 *   included (SQLite keeps no locks on the -wal, which is opened).
 * - -wal: inode, size, mtime and its 32-byte header (a restart gets new salts). Its
 *   ctime is left out: SQLite running as root chowns the -wal each time it opens it,
 *   which moves ctime without any change of content.
 * - the header of the last frame that carries the -wal header's salts, and its
 *   number: its cumulative checksum covers the content of every frame before it,
 *   so rewritten frame bytes show even with the mtime set back. Usually that is the
 *   last frame of the file; after a restart the file keeps stale frames of the
 *   generation before past the new ones (a commit there changes neither the size,
 *   the header nor the file's last frame), and it is found by bisection on the salts.
 * - none of its file times within a clock tick of now ('' instead): a commit right
 *   after our locks are released could get the same mtime (see RACY_NS).
 *
 * An absent and an empty -wal are the same (no frames). '' = unreadable or too
 * recent (= changed).
 */
export function fingerprintOf(abs: string): string {
  try {
    const now = BigInt(Date.now()) * 1_000_000n;
    const m = statSync(abs, { bigint: true });
    if (racy(m.mtimeNs, now) || racy(m.ctimeNs, now)) return '';
    const wal = walPart(`${abs}-wal`, now);
    return wal === undefined ? '' : `v2 ${m.ino}:${m.size}:${m.mtimeNs}:${m.ctimeNs} wal ${wal}`;
  } catch {
    return '';
  }
}

function racy(timeNs: bigint, nowNs: bigint): boolean {
  return timeNs > nowNs - (timeNs % 1_000_000_000n === 0n ? RACY_WHOLE_SECOND_NS : RACY_NS);
}

/** The -wal's part of a fingerprint ('-': no frames), undefined when it is too recent to be trusted. */
function walPart(path: string, now: bigint): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return '-';
    throw err;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (st.size === 0n) return '-';
    if (racy(st.mtimeNs, now)) return undefined;
    const file = fd;
    const read = (position: number, length: number): Buffer => {
      const b = Buffer.alloc(length);
      return b.subarray(0, readSync(file, b, 0, length, position));
    };
    const header = read(0, WAL_HEADER_BYTES);
    let last = '';
    if (header.length === WAL_HEADER_BYTES) {
      const frameBytes = header.readUInt32BE(8) + WAL_FRAME_HEADER_BYTES;
      const frames = Math.floor((Number(st.size) - WAL_HEADER_BYTES) / frameBytes);
      const salts = header.subarray(16, 24);
      const frameHeader = (i: number): Buffer => read(WAL_HEADER_BYTES + (i - 1) * frameBytes, WAL_FRAME_HEADER_BYTES);
      const current = (h: Buffer): boolean => h.length === WAL_FRAME_HEADER_BYTES && h.subarray(8, 16).equals(salts);
      // frames of the current generation are a prefix of the file: find its end
      let lo = 0;
      let hi = frames + 1;
      let found = frames > 0 ? frameHeader(frames) : Buffer.alloc(0);
      if (current(found)) lo = frames;
      else hi = frames;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        const h = frameHeader(mid);
        if (current(h)) {
          lo = mid;
          found = h;
        } else hi = mid;
      }
      last = lo > 0 ? `${lo}:${found.toString('hex')}` : '0';
    }
    return `${st.ino}:${st.size}:${st.mtimeNs}:${header.toString('hex')}:${last}`;
  } finally {
    closeSync(fd);
  }
}

function unpinAll(sources: Source[]): void {
  for (const s of sources) {
    if (s.pinned && s.reader?.open && s.reader.inTransaction) s.reader.exec('ROLLBACK');
    s.pinned = false;
  }
}

/**
 * Close a source's connections (idempotent). The order decides who is last: see the
 * header comment. Never throws: it runs on error paths.
 */
function releaseSource(s: Source): void {
  const closeWriter = (): void => {
    if (s.writer?.open) {
      if (s.writer.inTransaction) tryRun(() => s.writer?.exec('ROLLBACK'));
      tryRun(() => s.writer?.close());
    }
  };
  const closeReader = (): void => {
    if (s.reader?.open) {
      if (s.reader.inTransaction) tryRun(() => s.reader?.exec('ROLLBACK'));
      tryRun(() => s.reader?.close());
    }
    s.pinned = false;
  };
  if (s.hadWal) {
    // W must not be the last connection: it would checkpoint and remove the -wal (the reader waits for a lock
    // at most a second: only another program's checkpoint or recovery can hold one then)
    if (s.reader === undefined && s.writer?.open === true) tryRun(() => openReader(s, RELEASE_READER_WAIT_MS));
    closeWriter();
    closeReader();
  } else {
    closeReader();
    closeWriter();
  }
}

function tryRun(fn: () => void): void {
  try {
    fn();
  } catch {
    // Closing on an error path must not hide the error that got us here.
  }
}

function need(db: Database.Database | undefined, s: Source): Database.Database {
  if (db === undefined || !db.open)
    throw new FoleBackupError('INTERNAL', `capture ${s.rel}: connection is not open`, { path: s.rel });
  return db;
}

function safeName(rel: string): string {
  const name = rel.replace(/[^A-Za-z0-9._-]+/g, '_').slice(-80);
  return name === '' ? 'db' : name;
}

function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
}
