/**
 * Recognising SQLite databases by content, not by name (FOLE's specs disagree on
 * `project.db` / `db.sqlite` / `project.sqlite`). A tree can hold a million tiles,
 * so a cheap size filter runs first and only candidates have 16 bytes read.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { errnoCode, FoleBackupError, fsError, StopError } from '../errors.js';
import { fsPath } from '../fs/byte-names.js';
import { type CheckedPath, pathInsideRoot } from '../fs/inside-root.js';

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
  return headerOf(absPath)?.subarray(0, SQLITE_HEADER.length).equals(SQLITE_HEADER) ?? false;
}

/**
 * The first 100 bytes of the file at `absPath` (the SQLite database header),
 * fewer when the file is shorter; undefined when it does not exist.
 */
function headerOf(absPath: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(fsPath(absPath), 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw fsError('read', absPath, err);
  }
  try {
    return readHeader(fd);
  } catch (err) {
    throw fsError('read', absPath, err);
  } finally {
    closeSync(fd);
  }
}

/** Up to the 100 bytes of the SQLite database header from an open file. */
function readHeader(fd: number): Buffer {
  const buf = Buffer.alloc(100);
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * The page size a SQLite header declares (bytes 16–17, big-endian; 1 means
 * 65536), or undefined when it is not a power of two from 512 to 65536.
 */
function declaredPageSize(header: Buffer): number | undefined {
  if (header.length < 18) return undefined;
  const raw = header.readUInt16BE(16);
  const size = raw === 1 ? 65536 : raw;
  return size >= 512 && (size & (size - 1)) === 0 ? size : undefined;
}

/**
 * Check the file at `rel` under `root`, one of FOLE's database places
 * (src/storage/fole-layout.ts), before it is captured: FOLE's own databases
 * must be sound (a damaged one is a STOP), so what is found there is never stored as a
 * plain file. Throws StopError DB_INTEGRITY_ERROR when it is not a SQLite
 * database file: empty, no SQLite header, or a size that is not a whole
 * number of its pages (truncated, or bytes appended). An empty file is
 * refused too although SQLite would open it as an empty database: FOLE
 * creates its databases with their schema and never leaves one empty, so an
 * empty file where one belongs is a database lost (a failed copy, a disk
 * that filled up), and a backup carrying it would restore a server without
 * that data. Throws FoleBackupError READ_ERROR when the file vanished or
 * was replaced by something that is not a regular file since the scan saw
 * it, UNSAFE_PATH when it (or a directory on the way) is now a symlink: the
 * tree changed under the backup where it matters, and guessing would lose a
 * database silently.
 */
export function checkFoleDatabaseFile(root: string, rel: string): void {
  const changed = (what: string, cause?: unknown): FoleBackupError =>
    new FoleBackupError('READ_ERROR', `backup: ${rel}, where FOLE keeps a database, ${what} while the backup ran`, {
      path: rel,
      ...(cause === undefined ? {} : { cause }),
      hint:
        "something is moving or replacing FOLE's databases (a restore, a migration, a copy); let it finish, " +
        'then run the backup again',
    });
  let checked: CheckedPath;
  try {
    checked = pathInsideRoot(root, rel);
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') throw changed('vanished', err);
    throw err;
  }
  if (!checked.st.isFile()) throw changed('was replaced by something that is not a regular file');
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink swapped in since the check is refused, not read through
    fd = openSync(fsPath(checked.abs), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw changed('vanished', err);
    if (code === 'ELOOP') throw changed('was replaced by a symlink', err);
    throw fsError('read', checked.abs, err);
  }
  let header: Buffer;
  let size: number;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.dev !== checked.st.dev || st.ino !== checked.st.ino) throw changed('was replaced');
    size = st.size;
    header = readHeader(fd);
  } catch (err) {
    throw fsError('read', checked.abs, err);
  } finally {
    closeSync(fd);
  }
  const broken = (why: string): StopError =>
    new StopError('DB_INTEGRITY_ERROR', `${rel} is not a sound SQLite database: ${why}`, {
      path: rel,
      hint:
        `FOLE's own databases must be sound and a backup must not carry a broken one: restore ${rel}` +
        ` from an earlier backup or repair it (stop FOLE first), then run the backup again`,
    });
  if (size === 0) throw broken('the file is empty');
  const head = header.subarray(0, SQLITE_HEADER.length);
  if (!head.equals(SQLITE_HEADER)) throw broken('it does not start with the SQLite header');
  const pageSize = declaredPageSize(header);
  if (pageSize === undefined) throw broken('its header declares no valid page size');
  if (size % pageSize !== 0) {
    throw broken(
      `its size, ${size} bytes, is not a whole number of its ${pageSize}-byte pages (truncated, or bytes appended)`,
    );
  }
}
