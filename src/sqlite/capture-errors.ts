/**
 * How the capture of databases (src/sqlite/capture.ts, src/sqlite/check-copy.ts)
 * names an SQLite or file system failure: a typed error naming the database.
 */
import Database from 'better-sqlite3';
import { FoleBackupError, StopError } from '../errors.js';
import { isSqliteDamage } from './integrity.js';

type SqliteError = InstanceType<typeof Database.SqliteError>;

function isSqliteError(err: unknown): err is SqliteError {
  return err instanceof Database.SqliteError;
}

export function isBusy(err: unknown): boolean {
  return isSqliteError(err) && (err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED'));
}

/** Map an SQLite failure on a source (or its copy) to a FoleBackupError naming the path. */
export function sqliteError(rel: string, op: string, err: unknown, on: 'source' | 'copy'): FoleBackupError {
  if (err instanceof FoleBackupError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  const code = isSqliteError(err) ? err.code : '';
  const message = `capture: ${op} ${rel}: ${detail}`;
  if (isSqliteDamage(err)) {
    return new StopError('DB_INTEGRITY_ERROR', message, {
      path: rel,
      cause: err,
      hint: 'the source database is damaged or not a SQLite database; repair or restore it before backing up',
    });
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new FoleBackupError('DB_LOCKED', message, {
      path: rel,
      cause: err,
      hint: 'a writer holds it; run the backup again',
    });
  }
  if (code.startsWith('SQLITE_FULL')) {
    return new FoleBackupError('NO_SPACE', message, {
      path: rel,
      cause: err,
      hint: 'free space in the staging directory and run again; nothing partial was kept',
    });
  }
  return new FoleBackupError(on === 'copy' ? 'WRITE_ERROR' : 'READ_ERROR', message, {
    path: rel,
    cause: err,
    hint:
      code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_READONLY')
        ? 'run as a user that can read and write the database and its directory (usually the FOLE service user)'
        : undefined,
  });
}

/** Re-address a filesystem error to the database's relative path. */
export function relabel(err: FoleBackupError, rel: string): FoleBackupError {
  return new FoleBackupError(err.code, `capture ${rel}: ${err.message}`, {
    path: rel,
    cause: err.cause ?? err,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
  });
}
