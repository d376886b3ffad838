/**
 * Repository locks (locks/<random id>): shared for backup, verify and restore;
 * exclusive for prune and key changes. A lock is a sealed JSON record with its
 * owner, host, pid and a lease that a timer refreshes.
 *
 * A lock is stale when its owner is provably gone: same host and a dead pid, or
 * a lease expired for longer than STALE_GRACE_MS. Stale locks do not block
 * anyone, but they are never removed silently: the caller is told (audited) and
 * `fole-backup unlock` removes them.
 */
import { processAlive } from '../host/process-alive.js';
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { FoleBackupError } from '../errors.js';
import { AAD } from './format.js';
import type { Repository } from './repository.js';

export interface LockRecord {
  exclusive: boolean;
  operation: string;
  host: string;
  pid: number;
  username: string;
  createdAt: string;
  refreshedAt: string;
  leaseMs: number;
}

export interface LockInfo extends LockRecord {
  name: string;
  stale: false | string;
}

export const LEASE_MS = 5 * 60_000;
/** A lease this long past its expiry counts as abandoned even on another host. */
export const STALE_GRACE_MS = 25 * 60_000;

export interface LockOptions {
  exclusive: boolean;
  operation: string;
  leaseMs?: number;
  /** Told about each stale lock that is ignored. */
  onStale?: (lock: LockInfo) => void;
  now?: () => number;
}

/** Why a lock is stale, or false if its owner may still be alive. */
export function staleReason(lock: LockRecord, now: number, host = hostname()): false | string {
  if (lock.host === host && lock.pid !== process.pid && !processAlive(lock.pid)) {
    return `process ${lock.pid} on this host (${host}) is gone`;
  }
  const expires = Date.parse(lock.refreshedAt) + lock.leaseMs;
  if (!Number.isFinite(expires) || now > expires + STALE_GRACE_MS) {
    return `lease expired at ${Number.isFinite(expires) ? new Date(expires).toISOString() : 'an unknown time'}`;
  }
  return false;
}

function describe(l: LockInfo): string {
  return `${l.exclusive ? 'exclusive' : 'shared'} lock for ${l.operation} by ${l.username}@${l.host} pid ${l.pid} since ${l.createdAt}`;
}

/** Every lock in the repository with its staleness. Undecryptable locks count as live (the safe side). */
export async function listLocks(repo: Repository, now = Date.now()): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for await (const o of repo.backend.list('locks')) {
    try {
      const rec = (await repo.loadJson('locks', o.name, AAD.lock)) as LockRecord;
      out.push({ ...rec, name: o.name, stale: staleReason(rec, now) });
    } catch (err) {
      if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') continue; // removed meanwhile
      out.push({
        name: o.name, exclusive: true, operation: 'unknown (unreadable lock)', host: '?', pid: 0, username: '?',
        createdAt: '?', refreshedAt: '?', leaseMs: 0, stale: false,
      });
    }
  }
  return out;
}

export class RepositoryLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  private refreshing: Promise<void> | undefined;

  private constructor(
    private readonly repo: Repository,
    private name: string,
    private record: LockRecord,
  ) {}

  /**
   * Take a lock. Throws REPO_LOCKED naming the holder if a live conflicting lock
   * exists (any live lock for exclusive; a live exclusive lock for shared).
   */
  static async acquire(repo: Repository, opts: LockOptions): Promise<RepositoryLock> {
    const now = opts.now ?? Date.now;
    const conflicts = async (self?: string): Promise<LockInfo | undefined> => {
      for (const l of await listLocks(repo, now())) {
        if (l.name === self) continue;
        if (l.stale !== false) {
          opts.onStale?.(l);
          continue;
        }
        if (opts.exclusive || l.exclusive) return l;
      }
      return undefined;
    };
    const fail = (l: LockInfo): FoleBackupError =>
      new FoleBackupError('REPO_LOCKED', `repository ${repo.backend.location} is locked: ${describe(l)}`, {
        hint: 'wait for that operation to finish; if its process is gone, `fole-backup unlock` removes the lock',
      });
    const first = await conflicts();
    if (first) throw fail(first);
    let username = 'unknown';
    try {
      username = userInfo().username;
    } catch {
      // no passwd entry in some containers
    }
    const t = new Date(now()).toISOString();
    const record: LockRecord = {
      exclusive: opts.exclusive, operation: opts.operation, host: hostname(), pid: process.pid, username,
      createdAt: t, refreshedAt: t, leaseMs: opts.leaseMs ?? LEASE_MS,
    };
    const name = randomBytes(16).toString('hex');
    await repo.saveJson('locks', record, AAD.lock, name);
    // re-check: another process may have written its lock between our list and save
    const second = await conflicts(name);
    if (second) {
      await repo.backend.remove({ type: 'locks', name });
      throw fail(second);
    }
    const lock = new RepositoryLock(repo, name, record);
    lock.timer = setInterval(() => void lock.refresh(), Math.max(1000, record.leaseMs / 3));
    lock.timer.unref();
    return lock;
  }

  /** Refresh the lease: write a new lock object, then remove the old one. */
  async refresh(): Promise<void> {
    if (this.released || this.refreshing) return;
    this.refreshing = (async () => {
      const record = { ...this.record, refreshedAt: new Date().toISOString() };
      const name = randomBytes(16).toString('hex');
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
    await this.refreshing;
    this.refreshing = undefined;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    if (this.refreshing) await this.refreshing;
    await this.repo.backend.remove({ type: 'locks', name: this.name });
  }
}

export interface UnlockResult {
  removed: LockInfo[];
  kept: LockInfo[];
}

/** Remove stale locks (all locks with `force`). Live locks are kept and reported. */
export async function unlockRepository(repo: Repository, opts: { force?: boolean; now?: number } = {}): Promise<UnlockResult> {
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
