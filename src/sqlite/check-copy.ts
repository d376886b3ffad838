/**
 * The check of one database copy in staging, made by the capture
 * (src/sqlite/capture.ts) and closed: our own lock row dropped from core.db's
 * (the transform), PRAGMA integrity_check, page size, count and user_version,
 * and proof that no side file is left beside it. A plain function of a closed
 * file, so it can run on another thread while the next copy is made
 * (src/sqlite/check-thread.ts).
 */
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { FoleBackupError, fsError, StopError } from '../errors.js';
import { relabel, sqliteError } from './capture-errors.js';
import { checkMapBytes, isSqliteDamage } from './integrity.js';
import { SQLITE_SIDE_SUFFIXES } from './side-files.js';
import type { DbInfo } from '../snapshot/snapshot.js';

/** A copy to check: the database's relative path, the closed copy, and what the capture knows of its source. */
export interface CopyToCheck {
  rel: string;
  /** Absolute path of the copy in staging. */
  file: string;
  journalMode: string;
  fingerprint: string;
}

/** Changes a copy before it is checked (e.g. deletes our lock row from core.db's). */
export type CopyTransform = (relPath: string, copy: Database.Database) => void;

/** A checked copy: what the snapshot records of it (DbInfo: its pages, user_version, the source's journal mode). */
export interface CapturedDatabase extends DbInfo {
  /** Relative path, as given. */
  path: string;
  /** Absolute path of the snapshot copy in staging: closed, no -wal/-shm/-journal beside it. */
  file: string;
  size: number;
  /** Source fingerprint at the instant (fingerprintOf in src/sqlite/capture.ts). */
  fingerprint: string;
}

/** Transform, check and measure a copy, then close it and prove it has no side files. */
export function checkCopy(s: CopyToCheck, transform?: CopyTransform): CapturedDatabase {
  const file = s.file;
  let db: Database.Database | undefined;
  let pageSize = 0;
  let pageCount = 0;
  let userVersion = 0;
  try {
    db = new Database(file, { fileMustExist: true });
    db.pragma(`mmap_size = ${checkMapBytes(file)}`);
    if (transform !== undefined) {
      try {
        transform(s.rel, db);
      } catch (err) {
        if (err instanceof FoleBackupError || isSqliteDamage(err)) throw err;
        throw new FoleBackupError(
          'INTERNAL',
          `capture: transform of ${s.rel} failed: ${err instanceof Error ? err.message : String(err)}`,
          {
            path: s.rel,
            cause: err,
          },
        );
      }
    }
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    const lines = rows.map((row) => row.integrity_check);
    if (lines.length !== 1 || lines[0] !== 'ok') {
      throw new StopError('DB_INTEGRITY_ERROR', `integrity check of ${s.rel} failed: ${lines.slice(0, 5).join('; ')}`, {
        path: s.rel,
        hint: 'the source database is damaged; repair or restore it before backing up',
      });
    }
    pageSize = Number(db.pragma('page_size', { simple: true }));
    pageCount = Number(db.pragma('page_count', { simple: true }));
    userVersion = Number(db.pragma('user_version', { simple: true }));
  } catch (err) {
    // A copy too damaged to be read is a damaged source.
    throw sqliteError(s.rel, 'check copy of', err, 'copy');
  } finally {
    // Closing the last connection checkpoints a WAL-mode copy and deletes its -wal and -shm.
    db?.close();
  }
  for (const suffix of SQLITE_SIDE_SUFFIXES) {
    if (existsSync(file + suffix)) {
      throw new FoleBackupError(
        'INTERNAL',
        `capture ${s.rel}: ${basename(file)}${suffix} is left beside the closed copy`,
        {
          path: s.rel,
        },
      );
    }
  }
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw relabel(fsError('read', file, err), s.rel);
  }
  if (size !== pageSize * pageCount) {
    throw new FoleBackupError(
      'INTERNAL',
      `capture ${s.rel}: copy is ${size} bytes, expected ${pageCount} pages of ${pageSize}`,
      {
        path: s.rel,
      },
    );
  }
  return {
    path: s.rel,
    file,
    size,
    pageSize,
    pageCount,
    userVersion,
    journalMode: s.journalMode,
    integrity: 'ok',
    fingerprint: s.fingerprint,
  };
}
