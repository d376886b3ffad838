/**
 * The check of one restored database in staging, before it gets its mode and
 * mtime (src/restore/execute.ts runs it through the restore workers):
 *
 *   no -wal/-shm/-journal beside it — a backup never holds one, and opening
 *     the database would replay it into the restored bytes   CHECKSUM_MISMATCH
 *   PRAGMA integrity_check                                     DB_INTEGRITY_ERROR
 *   SQLite left no side file behind                            WRITE_ERROR
 */
import { basename } from 'node:path';
import { FoleBackupError, StopError } from '../errors.js';
import { checkDatabaseFile, sideFilesOf } from '../sqlite/integrity.js';

/** Check the database at `file` (`path`: its path in the backup, for messages). Throws on the first problem. */
export function checkRestoredDatabase(file: string, path: string): void {
  const side = sideFilesOf(file);
  if (side.length > 0) {
    // opening the database would replay that -wal/-journal into it: refuse before
    throw new StopError(
      'CHECKSUM_MISMATCH',
      `${path}: the backup carries SQLite side files beside this database (${side.map((s) => basename(s)).join(', ')})`,
      {
        path,
        hint:
          'a backup never contains -wal/-shm/-journal files (their content is captured through SQLite); ' +
          'this one is damaged or forged — use another backup',
      },
    );
  }
  const r = checkDatabaseFile(file);
  if (!r.ok) {
    throw new StopError(
      'DB_INTEGRITY_ERROR',
      `${path}: integrity_check of the restored database failed: ${r.problems.slice(0, 3).join('; ')}`,
      {
        path,
        hint:
          'the backup holds a damaged database; nothing live was touched — use another backup, and run ' +
          '`fole-backup verify --read-data` on this one',
      },
    );
  }
  const left = sideFilesOf(file);
  if (left.length > 0) {
    throw new FoleBackupError(
      'WRITE_ERROR',
      `${path}: SQLite left ${left.map((s) => basename(s)).join(', ')} beside the restored database`,
      {
        path,
        hint: 'another process may have opened the staged database; run the restore again',
      },
    );
  }
}
