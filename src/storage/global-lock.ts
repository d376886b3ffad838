/**
 * The Global Storage Lock: a lease row in FOLE's own lock table,
 * `dal_locks` of `<STORAGE_ROOT>/core/core.db`, under lock id `storage:global`.
 * fole-backup holds it while it captures or swaps a tree; FOLE's processes can use
 * this same API to honour it (and to hold it themselves).
 *
 *   acquire:   BEGIN IMMEDIATE; read the row;
 *              none                      -> insert ours
 *              stale (lease expired)     -> replace it with ours; report the takeover
 *                                           (an audited action) through onTakeover
 *              live                      -> ROLLBACK; poll until waitMs, then STORAGE_LOCKED
 *   heartbeat: every heartbeatMs (unref'd timer) extend our lease in a BEGIN IMMEDIATE;
 *              if the row is no longer ours we have lost the lock: `lost`, onLost
 *   release:   delete the row only if it is still ours; stop the heartbeat
 *
 * Only the lease decides: a row holds a host and a pid, and a pid cannot prove
 * its holder gone (a process in another PID namespace — a container sharing
 * this hostname — has a pid that names nobody, or someone else, out here). A
 * holder that dies costs at most its lease (30 s by default); waiters poll.
 *
 * Every operation opens core.db, does its one transaction and closes it again, so
 * we never keep FOLE's central database open. Times are epoch milliseconds.
 */
import Database from 'better-sqlite3';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FoleBackupError, StopError } from '../errors.js';
import { checkFoleDatabaseFile } from '../sqlite/detect.js';
import { isSqliteDamage } from '../sqlite/integrity.js';
import { CORE_DB } from './fole-layout.js';
import { hasLockTable } from '../sqlite/lock-table.js';
import { sleep } from '../concurrency/sleep.js';
import { currentUser } from '../host/current-user.js';
import { openDatabaseInside } from '../sqlite/open-inside.js';

export const GLOBAL_LOCK_ID = 'storage:global';

/** The Global Storage Lock's row in core.db's `dal_locks` table. */
export interface LockRow {
  lockId: string;
  owner: string;
  host: string | null;
  pid: number | null;
  acquiredAt: number;
  heartbeatAt: number;
  leaseExpiresAt: number;
}

/** How to take FOLE's Global Storage Lock: on which STORAGE_ROOT, for whom, how long to wait. */
export interface AcquireOptions {
  storageRoot: string;
  /** Who holds it; default `fole-backup:<user>@<host>:<pid>`. */
  owner?: string;
  /** Default GLOBAL_LOCK_ID. */
  lockId?: string;
  /** How long a lease lasts without a heartbeat (default 30_000 ms, or FOLE_BACKUP_STORAGE_LEASE_MS). */
  leaseMs?: number;
  /** How often the lease is extended (default leaseMs / 3). */
  heartbeatMs?: number;
  /** How long to wait for a live holder (default 0: fail at once). */
  waitMs?: number;
  /** Clock for lease times (default Date.now); waiting always uses the real clock. */
  now?: () => number;
  /** Called after a stale row (expired lease) was replaced by ours. */
  onTakeover?: (stale: LockRow, reason: string) => void;
  /** Called once when the heartbeat finds the lock is no longer ours. Must not throw. */
  onLost?: (err: Error) => void;
  /** Stops waiting for a live holder (FoleBackupError ABORTED). */
  signal?: AbortSignal;
}

/** FOLE's Global Storage Lock while it is held: renewed in the background until released. */
export interface HeldStorageLock {
  readonly lockId: string;
  readonly owner: string;
  /** True once the heartbeat found our row gone or taken over. */
  readonly lost: boolean;
  /**
   * Renew the lease now and throw STORAGE_LOCKED unless the lock is still ours.
   * For the moment before committing what the lock protected: a process
   * suspended past its lease may have had it taken over meanwhile.
   */
  confirm(): void;
  /** Stop the heartbeat and delete the row if it is still ours. Idempotent. */
  release(): Promise<void>;
}

const DEFAULT_LEASE_MS = 30_000;
/** For tests and operators: another default lease for the storage locks this process takes. */
export const STORAGE_LEASE_ENV = 'FOLE_BACKUP_STORAGE_LEASE_MS';

function defaultLeaseMs(): number {
  const v = process.env[STORAGE_LEASE_ENV];
  if (v === undefined || v === '') return DEFAULT_LEASE_MS;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 300 || n > 86_400_000) {
    throw usage(
      `${STORAGE_LEASE_ENV} must be a whole number of milliseconds from 300 to 86400000, not ${JSON.stringify(v)}`,
    );
  }
  return n;
}
/** How long one operation on core.db waits for FOLE's own writers. */
const CORE_BUSY_TIMEOUT_MS = 5_000;
const POLL_MS = 250;

/** The dal_locks table (FOLE's concurrency spec), created when absent. */
export const DAL_LOCKS_SCHEMA = `CREATE TABLE IF NOT EXISTS dal_locks (
  lock_id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  host TEXT,
  pid INTEGER,
  acquired_at INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  lease_expires_at INTEGER NOT NULL
)`;

const SELECT_ROW =
  'SELECT lock_id, owner, host, pid, acquired_at, heartbeat_at, lease_expires_at FROM dal_locks WHERE lock_id = ?';

interface DbRow {
  lock_id: string;
  owner: string;
  host: string | null;
  pid: number | bigint | null;
  acquired_at: number | bigint;
  heartbeat_at: number | bigint;
  lease_expires_at: number | bigint;
}

/**
 * Acquire the lock `opts.lockId` (default `storage:global`). Throws
 * NOT_A_STORAGE_ROOT when `<storageRoot>/core/core.db` does not exist,
 * UNSAFE_PATH when it (or core/) is a symlink or lies outside the root, and
 * STORAGE_LOCKED when a live holder keeps it for longer than `waitMs`.
 */
export async function acquireStorageLock(opts: AcquireOptions): Promise<HeldStorageLock> {
  const lockId = opts.lockId ?? GLOBAL_LOCK_ID;
  const leaseMs = opts.leaseMs ?? defaultLeaseMs();
  const heartbeatMs = opts.heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 3));
  const waitMs = opts.waitMs ?? 0;
  const now = opts.now ?? Date.now;
  if (!(Number.isInteger(leaseMs) && leaseMs > 0)) throw usage(`leaseMs must be a positive integer: ${leaseMs}`);
  if (!(Number.isInteger(heartbeatMs) && heartbeatMs > 0 && heartbeatMs < leaseMs)) {
    throw usage(`heartbeatMs must be a positive integer below leaseMs: ${heartbeatMs}`);
  }
  if (!(waitMs >= 0)) throw usage(`waitMs must not be negative: ${waitMs}`);
  const self = { host: hostname(), pid: process.pid, owner: opts.owner ?? defaultOwner() };
  const deadline = performance.now() + waitMs;

  for (;;) {
    if (opts.signal?.aborted) throw aborted(lockId);
    const outcome = tryAcquire(opts.storageRoot, lockId, self, leaseMs, now);
    if (outcome.kind === 'acquired') {
      const lock = new StorageLock(opts.storageRoot, outcome.row, leaseMs, heartbeatMs, now, opts.onLost);
      if (outcome.takeover !== undefined && opts.onTakeover !== undefined) {
        try {
          opts.onTakeover(outcome.takeover.stale, outcome.takeover.reason);
        } catch (err) {
          // The takeover could not be recorded (audit): do not keep a lock nobody knows we took.
          await lock.release();
          throw err;
        }
      }
      return lock;
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      const until = new Date(outcome.row.leaseExpiresAt).toISOString();
      throw new FoleBackupError(
        'STORAGE_LOCKED',
        `storage lock ${lockId} is held by ${outcome.row.owner} (lease until ${until})`,
        {
          hint: `wait for the other operation to finish; if its process is gone the lease expires at ${until}`,
        },
      );
    }
    await sleep(Math.min(left, POLL_MS), opts.signal, () => aborted(lockId));
  }
}

/** The current row of lock `lockId` (default `storage:global`), or undefined when nobody holds it. */
export function readStorageLock(storageRoot: string, lockId: string = GLOBAL_LOCK_ID): LockRow | undefined {
  return withCore(storageRoot, (db) => (hasLockTable(db) ? selectRow(db, lockId) : undefined));
}

interface Self {
  host: string;
  pid: number;
  owner: string;
}

type Outcome =
  | { kind: 'acquired'; row: LockRow; takeover?: { stale: LockRow; reason: string } }
  | { kind: 'held'; row: LockRow };

function tryAcquire(storageRoot: string, lockId: string, self: Self, leaseMs: number, now: () => number): Outcome {
  // Taking the lock writes into core.db: SQLite would make an empty (or vanished-and-
  // recreated) file a fresh database holding only our table, and hide that FOLE's
  // central database is gone. What is not a SQLite database file is refused before
  // it is opened; damage behind a sound header shows when it is read (withCore).
  try {
    checkFoleDatabaseFile(storageRoot, CORE_DB);
  } catch (err) {
    if (err instanceof StopError) throw err;
    // missing, or behind a symlink: withCore says so in its own words
  }
  return withCore(storageRoot, (db) =>
    immediate(db, (): Outcome => {
      db.exec(DAL_LOCKS_SCHEMA);
      const current = selectRow(db, lockId);
      const t = now();
      let takeover: { stale: LockRow; reason: string } | undefined;
      if (current !== undefined) {
        const reason = staleReason(current, t);
        if (reason === undefined) return { kind: 'held', row: current };
        takeover = { stale: current, reason };
        db.prepare('DELETE FROM dal_locks WHERE lock_id = ?').run(lockId);
      }
      const row: LockRow = {
        lockId,
        owner: self.owner,
        host: self.host,
        pid: self.pid,
        acquiredAt: t,
        heartbeatAt: t,
        leaseExpiresAt: t + leaseMs,
      };
      db.prepare(
        'INSERT INTO dal_locks (lock_id, owner, host, pid, acquired_at, heartbeat_at, lease_expires_at) VALUES ' +
          '(?, ?, ?, ?, ?, ?, ?)',
      ).run(row.lockId, row.owner, row.host, row.pid, row.acquiredAt, row.heartbeatAt, row.leaseExpiresAt);
      return takeover === undefined ? { kind: 'acquired', row } : { kind: 'acquired', row, takeover };
    }),
  );
}

/** Why a row held by someone else may be taken over (its lease ran out), or undefined while it holds. */
function staleReason(row: LockRow, t: number): string | undefined {
  if (row.leaseExpiresAt <= t) return `lease expired at ${new Date(row.leaseExpiresAt).toISOString()}`;
  return undefined;
}

/** A held lease: a lifecycle (heartbeat timer, release), hence a class. */
class StorageLock implements HeldStorageLock {
  readonly lockId: string;
  readonly owner: string;
  #lost: Error | undefined;
  #released = false;
  #leaseExpiresAt: number;
  readonly #timer: NodeJS.Timeout;

  constructor(
    private readonly storageRoot: string,
    private readonly row: LockRow,
    private readonly leaseMs: number,
    heartbeatMs: number,
    private readonly now: () => number,
    private readonly onLost: ((err: Error) => void) | undefined,
  ) {
    this.lockId = row.lockId;
    this.owner = row.owner;
    this.#leaseExpiresAt = row.leaseExpiresAt;
    this.#timer = setInterval(() => this.#heartbeat(), heartbeatMs);
    // A forgotten lock must not keep the process alive; its lease then simply expires.
    this.#timer.unref();
  }

  get lost(): boolean {
    return this.#lost !== undefined;
  }

  confirm(): void {
    if (!this.#released) this.#heartbeat();
    if (this.#lost !== undefined) throw this.#lost;
  }

  async release(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#released) return;
    this.#released = true;
    if (this.#lost) return;
    try {
      withCore(this.storageRoot, (db) =>
        immediate(db, () => {
          if (!hasLockTable(db)) return;
          db.prepare(
            'DELETE FROM dal_locks WHERE lock_id = ? AND owner = ? AND host IS ? AND pid IS ? AND acquired_at = ?',
          ).run(this.row.lockId, this.row.owner, this.row.host, this.row.pid, this.row.acquiredAt);
        }),
      );
    } catch (err) {
      // A tree swapped for one without core.db (or an empty target) holds no lock of ours.
      if (err instanceof FoleBackupError && err.code === 'NOT_A_STORAGE_ROOT') return;
      throw err;
    }
  }

  #heartbeat(): void {
    if (this.#released || this.#lost) return;
    let outcome: { renewedUntil: number } | { takenBy: LockRow | null };
    try {
      outcome = withCore(this.storageRoot, (db) =>
        immediate(db, () => {
          const current = hasLockTable(db) ? selectRow(db, this.row.lockId) : undefined;
          if (current === undefined || !this.#isOurs(current)) return { takenBy: current ?? null };
          const t = this.now();
          db.prepare('UPDATE dal_locks SET heartbeat_at = ?, lease_expires_at = ? WHERE lock_id = ?').run(
            t,
            t + this.leaseMs,
            this.row.lockId,
          );
          return { renewedUntil: t + this.leaseMs };
        }),
      );
    } catch (err) {
      // Busy or unreadable core.db: try again next tick while our lease still stands.
      if (this.now() >= this.#leaseExpiresAt) {
        const msg = err instanceof Error ? err.message : String(err);
        this.#markLost(
          new FoleBackupError(
            'STORAGE_LOCKED',
            `storage lock ${this.lockId} could not be renewed before its lease expired: ${msg}`,
            {
              cause: err,
              hint: 'another process may take it over now; stop the operation and run it again',
            },
          ),
        );
      }
      return;
    }
    if ('renewedUntil' in outcome) {
      this.#leaseExpiresAt = outcome.renewedUntil;
      return;
    }
    const by = outcome.takenBy === null ? 'its row was removed' : `taken over by ${outcome.takenBy.owner}`;
    this.#markLost(
      new FoleBackupError('STORAGE_LOCKED', `storage lock ${this.lockId} was lost: ${by}`, {
        hint: 'another process now holds the storage lock; stop the operation and run it again',
      }),
    );
  }

  #isOurs(row: LockRow): boolean {
    return (
      row.owner === this.row.owner &&
      row.host === this.row.host &&
      row.pid === this.row.pid &&
      row.acquiredAt === this.row.acquiredAt
    );
  }

  #markLost(err: Error): void {
    this.#lost = err;
    clearInterval(this.#timer);
    try {
      this.onLost?.(err);
    } catch {
      // A throwing callback must not kill the process from a timer; `lost` still tells.
    }
  }
}

/** Open core.db for one short operation, never through a symlink (src/fs/inside-root.ts). */
function withCore<T>(storageRoot: string, fn: (db: Database.Database) => T): T {
  const file = join(storageRoot, 'core', 'core.db');
  let db: Database.Database;
  try {
    db = openDatabaseInside(storageRoot, 'core/core.db', { timeout: CORE_BUSY_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') {
      throw new FoleBackupError(
        'NOT_A_STORAGE_ROOT',
        `${storageRoot} is not a FOLE storage root: ${file} does not exist`,
        {
          path: storageRoot,
          hint: 'a FOLE STORAGE_ROOT has core/core.db; check --storage-root',
        },
      );
    }
    if (err instanceof FoleBackupError) throw err;
    throw new FoleBackupError('READ_ERROR', `open ${file}: ${err instanceof Error ? err.message : String(err)}`, {
      path: file,
      cause: err,
    });
  }
  try {
    return fn(db);
  } catch (err) {
    if (err instanceof FoleBackupError) throw err;
    const code = err instanceof Database.SqliteError ? err.code : '';
    const msg = `storage lock in ${file}: ${err instanceof Error ? err.message : String(err)}`;
    // core.db is FOLE's central database: damaged, it is a STOP (a human decides), not a
    // read error to retry — nothing may be backed up from or restored over it as it is
    if (isSqliteDamage(err)) {
      throw new StopError(
        'DB_INTEGRITY_ERROR',
        `core/core.db in ${storageRoot} is damaged or not a SQLite database: ` +
          `${err instanceof Error ? err.message : String(err)}`,
        {
          path: 'core/core.db',
          cause: err,
          hint:
            "FOLE's central database must be sound: stop FOLE, repair core/core.db or restore it from an " +
            'earlier backup, then run again',
        },
      );
    }
    throw code.startsWith('SQLITE_BUSY')
      ? new FoleBackupError('DB_LOCKED', msg, { path: file, cause: err, hint: 'FOLE holds core.db busy; try again' })
      : new FoleBackupError(code.startsWith('SQLITE_READONLY') ? 'WRITE_ERROR' : 'READ_ERROR', msg, {
          path: file,
          cause: err,
        });
  } finally {
    db.close();
  }
}

/** Run fn in BEGIN IMMEDIATE; commit what it did, roll back if it throws. */
function immediate<T>(db: Database.Database, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

function selectRow(db: Database.Database, lockId: string): LockRow | undefined {
  const r = db.prepare(SELECT_ROW).get(lockId) as DbRow | undefined;
  if (r === undefined) return undefined;
  return {
    lockId: r.lock_id,
    owner: r.owner,
    host: r.host,
    pid: r.pid === null ? null : Number(r.pid),
    acquiredAt: Number(r.acquired_at),
    heartbeatAt: Number(r.heartbeat_at),
    leaseExpiresAt: Number(r.lease_expires_at),
  };
}

function defaultOwner(): string {
  return `fole-backup:${currentUser()}@${hostname()}:${process.pid}`;
}

function usage(msg: string): FoleBackupError {
  return new FoleBackupError('USAGE', `acquire storage lock: ${msg}`);
}

function aborted(lockId: string): FoleBackupError {
  return new FoleBackupError('ABORTED', `acquire storage lock ${lockId}: aborted`, {
    hint: 'run it again; nothing was changed',
  });
}
