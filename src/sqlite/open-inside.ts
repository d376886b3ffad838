/**
 * Opening a database that lies under a root (a STORAGE_ROOT, a restore target)
 * without going through a symlink: src/fs/inside-root.ts says why and how.
 * Every connection fole-backup makes to a database in a tree it does not own
 * is made here.
 */
import Database from 'better-sqlite3';
import { FoleBackupError } from '../errors.js';
import { pathInsideRoot, sameFileAt } from '../fs/inside-root.js';

/**
 * Open `rel` under `root` with better-sqlite3 (`options` as for its
 * constructor; the file must exist). Throws UNSAFE_PATH when a component is a
 * symlink or the file lies outside the root (also when that changed while it
 * was being opened), NOT_FOUND when it does not exist, READ_ERROR when it is
 * not a regular file; SQLite's own errors are thrown as they are.
 */
export function openDatabaseInside(root: string, rel: string, options: Database.Options = {}): Database.Database {
  const { abs, st } = pathInsideRoot(root, rel);
  if (!st.isFile())
    throw new FoleBackupError('READ_ERROR', `open ${rel} in ${root}: not a regular file`, { path: rel });
  const db = new Database(abs, { ...options, fileMustExist: true });
  if (!sameFileAt(abs, st)) {
    db.close();
    throw new FoleBackupError('UNSAFE_PATH', `open ${rel} in ${root}: it was replaced while it was being opened`, {
      path: rel,
      hint: 'something is changing the tree under the database; find out what, then run again',
    });
  }
  return db;
}
