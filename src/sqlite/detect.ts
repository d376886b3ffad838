/**
 * Recognising SQLite databases by content, not by name (FOLE's specs disagree on
 * `project.db` / `db.sqlite` / `project.sqlite`). A tree can hold a million tiles,
 * so a cheap size filter runs first and only candidates have 16 bytes read.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { errnoCode, fsError } from '../errors.js';
import { fsPath } from '../fs/byte-names.js';

/** The first 16 bytes of every SQLite 3 database file: "SQLite format 3\0". */
export const SQLITE_HEADER: Buffer = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * True when a file of this size could be a non-empty SQLite database: page sizes are
 * powers of two from 512 to 65536 and a database is a whole number of pages.
 * A false answer means "certainly not a database"; true means "read the header".
 */
export function mayBeSqlite(size: number): boolean {
  return Number.isSafeInteger(size) && size >= 512 && size % 512 === 0;
}

/**
 * Whether the file at `absPath` starts with the SQLite header. Reads only the first
 * 16 bytes. A file that does not exist (e.g. deleted since it was listed) is not a
 * database; other read failures are raised as FoleBackupError naming the path.
 * Synchronous, like the scan (src/storage/scan.ts says why).
 */
export function isSqliteFile(absPath: string): boolean {
  let fd: number;
  try {
    fd = openSync(fsPath(absPath), 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw fsError('read', absPath, err);
  }
  try {
    const buf = Buffer.alloc(SQLITE_HEADER.length);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return got === SQLITE_HEADER.length && buf.equals(SQLITE_HEADER);
  } catch (err) {
    throw fsError('read', absPath, err);
  } finally {
    closeSync(fd);
  }
}
