/**
 * The Global Storage Lock row a restore leaves behind. A restore holds the lock
 * (src/storage/global-lock.ts) in the live tree's core.db up to the swap; the
 * live tree, row and all, is then renamed aside, and the restored tree moves in
 * exactly as it was verified: nothing writes to it, so its core.db matches the
 * backup's SHA-256 byte for byte. What remains is our row in the previous tree
 * (or, after a rollback, in the live one), deleted here by its owner string.
 *
 * Rows are deleted with secure_delete, so no owner/host/pid stays in free pages.
 * A delete that finds no row writes nothing: the file's bytes stay as they were.
 * core.db is never opened through a symlink (src/sqlite/open-inside.ts).
 */
import type Database from 'better-sqlite3';
import { FoleBackupError } from '../errors.js';
import { openDatabaseInside } from '../sqlite/open-inside.js';
import { CORE_DB } from '../storage/fole-layout.js';
import { GLOBAL_LOCK_ID } from '../storage/global-lock.js';

const BUSY_TIMEOUT_MS = 5_000;

function withCore<T>(root: string, fn: (db: Database.Database) => T): T {
  let db: Database.Database;
  try {
    db = openDatabaseInside(root, CORE_DB, { timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof FoleBackupError) throw err;
    throw new FoleBackupError(
      'WRITE_ERROR',
      `open ${root}/${CORE_DB}: ${err instanceof Error ? err.message : String(err)}`,
      { path: CORE_DB, cause: err },
    );
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
    throw new FoleBackupError(
      'WRITE_ERROR',
      `storage lock row in ${root}/${CORE_DB}: ${err instanceof Error ? err.message : String(err)}`,
      { path: CORE_DB, cause: err },
    );
  } finally {
    db.close();
  }
}

/** Delete the lock row owned by `owner` from `<root>/core/core.db`. Returns whether there was one. */
export function deleteLockRow(root: string, owner: string, lockId: string = GLOBAL_LOCK_ID): boolean {
  return withCore(root, (db) => {
    const hasTable =
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'dal_locks'").get() !== undefined;
    if (!hasTable) return false;
    db.pragma('secure_delete = ON');
    return db.prepare('DELETE FROM dal_locks WHERE lock_id = ? AND owner = ?').run(lockId, owner).changes > 0;
  });
}
