/**
 * The Global Storage Lock across a swap. The lock is a row in `dal_locks` of
 * `<target>/core/core.db` (src/storage/global-lock.ts), and the swap replaces
 * that very file. So before the swap, the row we hold in the live tree is copied
 * verbatim (same owner, host, pid, acquired_at) into the staged tree's core.db:
 * whichever tree is at the target holds our lock at every instant, and the held
 * lock (bound to the target path) keeps heartbeating and releases in the new
 * tree, which it cannot tell from the old one. After the swap the row is also
 * removed from the previous tree, so it is clean if anyone moves it back.
 *
 * Rows are deleted with secure_delete, so no owner/host/pid stays in free pages
 * of a restored database.
 */
import Database from 'better-sqlite3';
import { FoleBackupError } from '../errors.js';
import { DAL_LOCKS_SCHEMA, GLOBAL_LOCK_ID, type LockRow } from '../storage/global-lock.js';

const BUSY_TIMEOUT_MS = 5_000;

function withDb<T>(file: string, fn: (db: Database.Database) => T): T {
  let db: Database.Database;
  try {
    db = new Database(file, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw new FoleBackupError('WRITE_ERROR', `open ${file}: ${err instanceof Error ? err.message : String(err)}`, { path: file, cause: err });
  }
  try {
    db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn(db);
      db.exec('COMMIT');
      return r;
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
  } catch (err) {
    if (err instanceof FoleBackupError) throw err;
    throw new FoleBackupError('WRITE_ERROR', `storage lock row in ${file}: ${err instanceof Error ? err.message : String(err)}`, { path: file, cause: err });
  } finally {
    db.close();
  }
}

/** Put a copy of `row` into the core.db at `file` (replacing any row with that lock id). */
export function copyLockRow(file: string, row: LockRow): void {
  withDb(file, (db) => {
    db.exec(DAL_LOCKS_SCHEMA);
    db.pragma('secure_delete = ON');
    db.prepare('DELETE FROM dal_locks WHERE lock_id = ?').run(row.lockId);
    db.prepare(
      'INSERT INTO dal_locks (lock_id, owner, host, pid, acquired_at, heartbeat_at, lease_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(row.lockId, row.owner, row.host, row.pid, row.acquiredAt, row.heartbeatAt, row.leaseExpiresAt);
  });
}

/** Delete the lock row owned by `owner` from the core.db at `file`. Returns whether there was one. */
export function deleteLockRow(file: string, owner: string, lockId: string = GLOBAL_LOCK_ID): boolean {
  return withDb(file, (db) => {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dal_locks'").get() !== undefined;
    if (!hasTable) return false;
    db.pragma('secure_delete = ON');
    return db.prepare('DELETE FROM dal_locks WHERE lock_id = ? AND owner = ?').run(lockId, owner).changes > 0;
  });
}
