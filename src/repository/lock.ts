/**
 * Repository locks (locks/<random id>): shared for backup, verify and restore;
 * exclusive for prune and key changes. A lock is a sealed JSON record with its
 * owner (host, pid, and where /proc tells them: boot id, PID namespace and the
 * process's start time, see src/host/process-identity.ts) and a lease that a
 * timer refreshes (every third of the lease, by writing a new lock object and
 * removing the old one).
 *
 * A lock is stale when
 *   - its lease ran out and its holder is provably gone (same host, same boot,
 *     same PID namespace, and its pid is gone or belongs to a newer process), or
 *   - its lease ran out long ago (STALE_GRACE_FACTOR leases past its expiry),
 *     whoever holds it: a holder suspended that long has lost it.
 * A pid alone never makes a lock stale: another container sharing this hostname
 * has pids of its own. A lock file that cannot be read (another key, damaged)
 * is judged by the age of the file alone.
 *
 * Stale locks do not block anyone, but they are never removed silently: the
 * caller is told (audited) and `fole-backup unlock` removes them. A holder
 * suspended past its lease may have been judged stale meanwhile, so it checks
 * (verify()) before it commits anything that relies on the lock: a backup
 * before it writes its snapshot, prune before it deletes.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { FoleBackupError } from '../errors.js';
import { currentUser } from '../host/current-user.js';
import { holderGone, selfIdentity } from '../host/process-identity.js';
import { AAD } from './format.js';
import type { SealedObjects } from './slices.js';

export interface LockRecord {
  exclusive: boolean;
  operation: string;
  host: string;
  pid: number;
  username: string;
  createdAt: string;
  refreshedAt: string;
  leaseMs: number;
  /** The holder's boot id, PID namespace and start time (absent in records of older versions). */
  bootId?: string;
  pidNs?: string;
  startTime?: string;
}

/** A lock as listed: its object name, holder and whether (and why) it is stale. */
export interface LockInfo extends LockRecord {
  name: string;
  stale: false | string;
  /** The record could not be read: only the file's age is known. */
  unreadable?: true;
}

export const LEASE_MS = 5 * 60_000;
/** A lease this many lease lengths past its expiry counts as abandoned, whoever holds it. */
export const STALE_GRACE_FACTOR = 5;
/** For tests and operators: a shorter (or longer) lease for the locks this process takes. */
export const LEASE_ENV = 'FOLE_BACKUP_LOCK_LEASE_MS';
const MIN_LEASE_MS = 300;
const MAX_LEASE_MS = 24 * 3_600_000;

export interface LockOptions {
  exclusive: boolean;
  operation: string;
  leaseMs?: number;
  /** Told about each stale lock that is ignored, once per lock. */
  onStale?: (lock: LockInfo) => void;
  /** The clock other locks are judged by (default Date.now); our own lease always runs on the real clock. */
  now?: () => number;
}

/** The lease for new locks: `FOLE_BACKUP_LOCK_LEASE_MS` when set, else LEASE_MS. */
export function defaultLeaseMs(): number {
  const v = process.env[LEASE_ENV];
  if (v === undefined || v === '') return LEASE_MS;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < MIN_LEASE_MS || n > MAX_LEASE_MS) {
    throw new FoleBackupError(
      'USAGE',
      `${LEASE_ENV} must be a whole number of milliseconds from ${MIN_LEASE_MS} to ${MAX_LEASE_MS}` +
        `, not ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/** Whether `name` is a lock id, the name every lock object gets (16 random bytes in lower-case hex). */
export function isLockName(name: string): boolean {
  return /^[0-9a-f]{32}$/.test(name);
}

/** A new lock id. */
function newLockName(): string {
  return randomBytes(16).toString('hex');
}

/** Why a lock is stale, or false if its owner may still be alive. */
export function staleReason(lock: LockRecord, now: number, host = hostname()): false | string {
  const expires = Date.parse(lock.refreshedAt) + lock.leaseMs;
  if (!Number.isFinite(expires) || !(lock.leaseMs >= 0)) return 'its lease cannot be read';
  const at = isoTime(expires);
  if (now > expires + STALE_GRACE_FACTOR * lock.leaseMs) return `lease expired at ${at}`;
  if (now > expires) {
    const gone = holderGone(lock, host);
    if (gone !== false) return `${gone}; lease expired at ${at}`;
  }
  return false;
}

/** A time for messages; a record may hold one beyond what Date can show. */
function isoTime(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? `${ms} ms after 1970` : d.toISOString();
}

/** How old an unreadable lock file must be to count as stale: a default lease and its grace. */
export const UNREADABLE_STALE_MS = (1 + STALE_GRACE_FACTOR) * LEASE_MS;

function describe(l: LockInfo): string {
  if (l.unreadable) return `unreadable lock ${l.name.slice(0, 12)} (last written ${l.refreshedAt})`;
  return (
    `${l.exclusive ? 'exclusive' : 'shared'} lock for ${l.operation} by ${l.username}@${l.host}` +
    ` pid ${l.pid} since ${l.createdAt}`
  );
}

/** A decrypted lock object as a LockRecord; REPO_CORRUPT when its fields are not what a lock holds. */
export function parseLockRecord(v: unknown, name: string): LockRecord {
  const r = v as Partial<Record<keyof LockRecord, unknown>> | null;
  const str = (x: unknown): x is string => typeof x === 'string' && x.length <= 1024;
  const optStr = (x: unknown): boolean => x === undefined || str(x);
  if (
    typeof r !== 'object' ||
    r === null ||
    Array.isArray(r) ||
    typeof r.exclusive !== 'boolean' ||
    !str(r.operation) ||
    !str(r.host) ||
    !Number.isSafeInteger(r.pid) ||
    !str(r.username) ||
    !str(r.createdAt) ||
    !str(r.refreshedAt) ||
    typeof r.leaseMs !== 'number' ||
    !optStr(r.bootId) ||
    !optStr(r.pidNs) ||
    !optStr(r.startTime)
  ) {
    throw new FoleBackupError('REPO_CORRUPT', `locks/${name}: not a lock record`);
  }
  return r as LockRecord;
}

/**
 * Every lock in the repository with its staleness. A lock that cannot be
 * decrypted or parsed is judged by its file's age: stale once older than
 * UNREADABLE_STALE_MS, live before (the safe side) or when the backend does
 * not tell the age.
 */
export async function listLocks(repo: SealedObjects, now = Date.now()): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for await (const o of repo.backend.list('locks')) {
    try {
      const rec = parseLockRecord(await repo.loadJson('locks', o.name, AAD.lock), o.name);
      out.push({ ...rec, name: o.name, stale: staleReason(rec, now) });
    } catch (err) {
      if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') continue; // removed meanwhile
      const written = o.mtimeMs === undefined ? '?' : isoTime(o.mtimeMs);
      const old = o.mtimeMs !== undefined && now - o.mtimeMs > UNREADABLE_STALE_MS;
      out.push({
        name: o.name,
        exclusive: true,
        operation: 'unknown (unreadable lock)',
        host: '?',
        pid: 0,
        username: '?',
        createdAt: written,
        refreshedAt: written,
        leaseMs: 0,
        unreadable: true,
        stale: old ? `unreadable lock file, last written at ${written}` : false,
      });
    }
  }
  return out;
}

/** Codes a lock write fails with when the repository cannot be written (permissions, read-only, full). */
const UNWRITABLE: ReadonlySet<string> = new Set(['WRITE_ERROR', 'NO_SPACE']);

function lockLost(message: string, cause?: unknown): FoleBackupError {
  return new FoleBackupError('LOCK_LOST', message, {
    ...(cause === undefined ? {} : { cause }),
    hint:
      'another process may have judged the lock stale and changed the repository meanwhile; nothing was ' +
      'committed — run the operation again',
  });
}

/** A lock on a repository: shared for backups, checks and restores, exclusive for prune, forget and key
 * changes. Holders are known by host, pid, boot id and start time; a lock whose holder is provably gone and whose
 * lease ran out is stale and ignored. Take it with `RepositoryLock.acquire`, give it back with `release`. */
export class RepositoryLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  private refreshing: Promise<void> | undefined;
  /** Why the lock can no longer be relied on, once that is known. */
  private lostBy: FoleBackupError | undefined;

  private constructor(
    private readonly repo: SealedObjects,
    private name: string,
    private record: LockRecord,
  ) {}

  /**
   * Take a lock. Throws REPO_LOCKED naming the holder if a live conflicting lock
   * exists (any live lock for exclusive; a live exclusive lock for shared).
   * `onStale` hears of each stale lock once.
   */
  static async acquire(repo: SealedObjects, opts: LockOptions): Promise<RepositoryLock> {
    const now = opts.now ?? Date.now;
    const told = new Set<string>();
    const conflicts = async (self?: string): Promise<LockInfo | undefined> => {
      for (const l of await listLocks(repo, now())) {
        if (l.name === self) continue;
        if (l.stale !== false) {
          if (!told.has(l.name)) {
            told.add(l.name);
            opts.onStale?.(l);
          }
          continue;
        }
        if (opts.exclusive || l.exclusive) return l;
      }
      return undefined;
    };
    const fail = (l: LockInfo): FoleBackupError =>
      new FoleBackupError('REPO_LOCKED', `repository ${repo.backend.location} is locked: ${describe(l)}`, {
        hint: l.unreadable
          ? `a lock file no key of this repository opens; it counts as stale ${UNREADABLE_STALE_MS / 60_000}` +
            ` minutes after it was written, then \`fole-backup unlock\` removes it`
          : 'wait for that operation to finish; once its lease has run out and its process is gone, ' +
            '`fole-backup unlock` removes the lock',
      });
    const first = await conflicts();
    if (first) throw fail(first);
    const t = new Date().toISOString();
    const record: LockRecord = {
      exclusive: opts.exclusive,
      operation: opts.operation,
      host: hostname(),
      pid: process.pid,
      username: currentUser(),
      createdAt: t,
      refreshedAt: t,
      leaseMs: opts.leaseMs ?? defaultLeaseMs(),
      ...selfIdentity(),
    };
    const name = newLockName();
    await repo.saveJson('locks', record, AAD.lock, name);
    // re-check: another process may have written its lock between our list and save
    const second = await conflicts(name);
    if (second) {
      await repo.backend.remove({ type: 'locks', name });
      throw fail(second);
    }
    const lock = new RepositoryLock(repo, name, record);
    lock.timer = setInterval(() => void lock.refresh(), Math.max(100, Math.floor(record.leaseMs / 3)));
    lock.timer.unref();
    return lock;
  }

  /**
   * A shared lock for an operation that only reads the repository (restore,
   * verify, check). A repository that cannot be written — a read-only mount, an
   * append-only or locked copy, what disaster recovery reads from — takes no
   * lock file: the operation then goes ahead without one, since the look for
   * conflicts before the write found no live exclusive lock (no prune is
   * deleting anything), and `onUnlocked` hears why, once. Other failures throw.
   */
  static async acquireForReading(
    repo: SealedObjects,
    opts: Omit<LockOptions, 'exclusive'> & { onUnlocked: (why: string) => void },
  ): Promise<RepositoryLock | undefined> {
    try {
      return await RepositoryLock.acquire(repo, { ...opts, exclusive: false });
    } catch (err) {
      if (!(err instanceof FoleBackupError && UNWRITABLE.has(err.code))) throw err;
      opts.onUnlocked(`no repository lock could be taken (${err.message}); reading without one`);
      return undefined;
    }
  }

  /** True once the lock is known to be lost (its lease lapsed, or its file was removed). */
  get lost(): boolean {
    return this.lostBy !== undefined;
  }

  /**
   * Refresh the lease: write a new lock object, then remove the old one. A lease
   * that already ran out (the process was suspended, or its storage unreachable)
   * is not renewed: others may have judged it stale, so the lock is lost.
   */
  async refresh(): Promise<void> {
    if (this.released || this.lostBy !== undefined) return;
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      const lapsed = this.lapsed(Date.now());
      if (lapsed !== undefined) return this.lose(lapsed);
      try {
        // someone who judged it stale may have removed it: never write it back then
        await this.repo.backend.stat({ type: 'locks', name: this.name });
      } catch (err) {
        if (err instanceof FoleBackupError && err.code === 'NOT_FOUND')
          return this.lose(`its lock file locks/${this.name} was removed by another process`);
        return; // unreachable storage: retried on the next tick while the lease still covers us
      }
      const record = { ...this.record, refreshedAt: new Date().toISOString() };
      const name = newLockName();
      try {
        await this.repo.saveJson('locks', record, AAD.lock, name);
        const old = this.name;
        this.name = name;
        this.record = record;
        await this.repo.backend.remove({ type: 'locks', name: old });
      } catch {
        // a failed refresh is retried on the next tick; the lease still covers us until then
      }
    })();
    try {
      await this.refreshing;
    } finally {
      this.refreshing = undefined;
    }
  }

  /**
   * Throw LOCK_LOST unless the lock is still ours: its lease never ran out
   * between refreshes and has not now, and its lock file is still there with
   * our record in it. Call it right before committing what the lock protects.
   */
  async verify(): Promise<void> {
    if (this.refreshing) await this.refreshing;
    if (this.lostBy === undefined) {
      const lapsed = this.lapsed(Date.now());
      if (lapsed !== undefined) this.lose(lapsed);
    }
    if (this.lostBy === undefined) {
      let stored: LockRecord | undefined;
      try {
        stored = parseLockRecord(await this.repo.loadJson('locks', this.name, AAD.lock), this.name);
      } catch (err) {
        if (!(err instanceof FoleBackupError && (err.code === 'NOT_FOUND' || err.code === 'REPO_CORRUPT'))) throw err;
      }
      if (stored === undefined || JSON.stringify(stored) !== JSON.stringify(this.record)) {
        this.lose(`its lock file locks/${this.name} was removed or replaced by another process`);
      }
    }
    if (this.lostBy !== undefined) throw this.lostBy;
  }

  /** Why the lease has run out at `now`, or undefined while it holds. */
  private lapsed(now: number): string | undefined {
    const expires = Date.parse(this.record.refreshedAt) + this.record.leaseMs;
    if (now <= expires) return undefined;
    return (
      `its lease ran out at ${new Date(expires).toISOString()} before it was refreshed (was the process ` +
      `suspended?)`
    );
  }

  private lose(why: string): void {
    this.lostBy ??= lockLost(`${this.record.operation}: repository lock lost: ${why}`);
    if (this.timer) clearInterval(this.timer);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    if (this.refreshing) await this.refreshing;
    await this.repo.backend.remove({ type: 'locks', name: this.name });
  }
}

/** What `unlockRepository` removed and which locks it left because their holders may still be alive. */
export interface UnlockResult {
  removed: LockInfo[];
  kept: LockInfo[];
}

/** Remove stale locks (all locks with `force`). Live locks are kept and reported. */
export async function unlockRepository(
  repo: SealedObjects,
  opts: { force?: boolean; now?: number } = {},
): Promise<UnlockResult> {
  const removed: LockInfo[] = [];
  const kept: LockInfo[] = [];
  for (const l of await listLocks(repo, opts.now ?? Date.now())) {
    if (l.stale !== false || opts.force === true) {
      await repo.backend.remove({ type: 'locks', name: l.name });
      removed.push(l);
    } else {
      kept.push(l);
    }
  }
  return { removed, kept };
}

export { describe as describeLock };
