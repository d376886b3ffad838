/**
 * `PRAGMA integrity_check` of a database file that nobody else uses (a restored
 * or scratch copy). Opened writable so SQLite removes the -wal/-shm it creates
 * when the connection closes; nothing is written, so the file's bytes stay as
 * they are.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { SQLITE_SIDE_SUFFIXES } from '../storage/exclusions.js';

export interface IntegrityResult {
  ok: boolean;
  /** integrity_check's first lines when not ok, or why the file could not be opened. */
  problems: string[];
}


export function checkDatabaseFile(file: string, maxProblems = 10): IntegrityResult {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true });
    const rows = db.prepare(`PRAGMA integrity_check(${Math.max(1, maxProblems)})`).all() as { integrity_check: string }[];
    const lines = rows.map((r) => r.integrity_check);
    return lines.length === 1 && lines[0] === 'ok' ? { ok: true, problems: [] } : { ok: false, problems: lines };
  } catch (err) {
    return { ok: false, problems: [err instanceof Error ? err.message : String(err)] };
  } finally {
    db?.close();
  }
}

/** Side files (-wal, -shm, -journal) present next to `file`. */
export function sideFilesOf(file: string): string[] {
  return SQLITE_SIDE_SUFFIXES.map((s) => file + s).filter((p) => existsSync(p));
}
