/**
 * FOLE's `dal_locks` table, as far as a SQLite file is concerned: whether a
 * database has it, and deleting one row from it. The Global Storage Lock that
 * lives in it is src/storage/global-lock.ts; the capture worker uses this to
 * drop our own lock row from a staging copy of core.db.
 */
import type Database from 'better-sqlite3';

export function hasLockTable(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dal_locks'").get() !== undefined;
}

/**
 * Delete the row of lock `lockId` from `db` if its `dal_locks` table exists.
 * For staging copies of core.db: a backup must never contain its own lock, or a
 * restored server would start under a phantom lock.
 */
export function removeLockRow(db: Database.Database, lockId: string): void {
  if (!hasLockTable(db)) return;
  // zero the freed bytes too, so no trace of the lock (owner, host, pid) travels in a backup
  db.pragma('secure_delete = ON');
  db.prepare('DELETE FROM dal_locks WHERE lock_id = ?').run(lockId);
}
