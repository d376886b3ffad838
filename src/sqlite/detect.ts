/**
 * Recognising SQLite databases by content, not by name (FOLE's specs disagree on
 * `project.db` / `db.sqlite` / `project.sqlite`). A tree can hold a million tiles,
 * so a cheap size filter runs first and only candidates have 16 bytes read.
 */
import { open } from 'node:fs/promises';
import { errnoCode, fsError } from '../errors.js';

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
 */
export async function isSqliteFile(absPath: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(absPath, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw fsError('read', absPath, err);
  }
  try {
    const buf = Buffer.alloc(SQLITE_HEADER.length);
    let got = 0;
    // read() may return fewer bytes than asked; loop until 16 or end of file.
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === SQLITE_HEADER.length && buf.equals(SQLITE_HEADER);
  } catch (err) {
    throw fsError('read', absPath, err);
  } finally {
    await fh.close();
  }
}
