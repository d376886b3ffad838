/**
 * `PRAGMA integrity_check` of a database file that nobody else uses (a restored
 * or scratch copy). Opened writable so SQLite removes the -wal/-shm it creates
 * when the connection closes; nothing is written, so the file's bytes stay as
 * they are.
 *
 * Only what says the file is damaged makes it "not ok": integrity_check's own
 * lines, or SQLite refusing the file as corrupt or as no database. SQLite
 * failing for a reason outside the file — no room for the -shm of a WAL-mode
 * database (SQLITE_IOERR_SHMSIZE), a full disk, permissions, memory — is
 * thrown as an ordinary error (NO_SPACE, READ_ERROR): reporting it as a
 * damaged database would tell the operator not to trust a sound backup.
 */
import { existsSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { FoleBackupError } from '../errors.js';
import { SQLITE_SIDE_SUFFIXES } from './side-files.js';

export interface IntegrityResult {
  ok: boolean;
  /** integrity_check's first lines when not ok, or why the file could not be opened. */
  problems: string[];
}

const MAP_WHOLE_UP_TO = 64 * 1024 * 1024;
const MAP_FIRST_PART = 8 * 1024 * 1024;

/**
 * How much of a database integrity_check reads through a memory map instead of one pread
 * per page: all of one up to 64 MiB, the first 8 MiB of a larger one. integrity_check reads
 * most pages more than once, and on this VM a pread of a 4 KiB page costs ~2 µs, mostly in
 * the kernel: the 24 databases of a 578 MB restore took 530–560 ms to check with preads
 * (360–370 ms of it system time), 106–136 ms mapped whole. Mapping only the first part of a
 * file gains little (8 MiB of 24 MB: 530–550 ms), and the mapped pages count in the process's
 * RSS while the check runs, so a larger database is not mapped whole: a 1 GB one mapped up
 * to 64 MiB restored no faster and peaked 65 MB higher. Only copies we made are ever mapped
 * (a restored or captured file in private staging): a read error in a mapping is SIGBUS, not
 * an error that names the file, so a live source is never checked this way.
 */
export function checkMapBytes(file: string): number {
  let size = Number.POSITIVE_INFINITY;
  try {
    size = statSync(file).size;
  } catch {
    // opening it says why it cannot be checked
  }
  return size <= MAP_WHOLE_UP_TO ? MAP_WHOLE_UP_TO : MAP_FIRST_PART;
}

export function checkDatabaseFile(file: string, maxProblems = 10): IntegrityResult {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true });
    db.pragma(`mmap_size = ${checkMapBytes(file)}`);
    const rows = db.prepare(`PRAGMA integrity_check(${Math.max(1, maxProblems)})`).all() as {
      integrity_check: string;
    }[];
    const lines = rows.map((r) => r.integrity_check);
    return lines.length === 1 && lines[0] === 'ok' ? { ok: true, problems: [] } : { ok: false, problems: lines };
  } catch (err) {
    const code = sqliteCode(err);
    if (code === undefined || isSqliteDamage(err))
      return { ok: false, problems: [err instanceof Error ? err.message : String(err)] };
    throw notDamage(file, code, err);
  } finally {
    db?.close();
  }
}

/** Whether an SQLite error means the database file itself is damaged (corrupt, or no database at all). */
export function isSqliteDamage(err: unknown): boolean {
  const code = sqliteCode(err);
  return code !== undefined && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Whether the filesystem holding `file` is (all but) full. */
function diskFull(file: string): boolean {
  try {
    const s = statfsSync(dirname(file));
    return s.bavail * s.bsize < 1024 * 1024;
  } catch {
    return false;
  }
}

function notDamage(file: string, code: string, err: unknown): FoleBackupError {
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_FULL' || (code.startsWith('SQLITE_IOERR') && diskFull(file))) {
    return new FoleBackupError('NO_SPACE', `integrity_check of ${file}: no space left on device (${code})`, {
      path: file,
      cause: err,
      hint:
        'SQLite needs a little room beside the database it checks (a WAL-mode database gets its -shm file ' +
        'there): free space on that filesystem and run again',
    });
  }
  return new FoleBackupError(
    'READ_ERROR',
    `integrity_check of ${file}: SQLite could not check it (${code}: ${detail}); this says nothing about its content`,
    {
      path: file,
      cause: err,
      hint: 'fix the cause (permissions, memory, the disk) and run again',
    },
  );
}

/** Side files (-wal, -shm, -journal) present next to `file`. */
export function sideFilesOf(file: string): string[] {
  return SQLITE_SIDE_SUFFIXES.map((s) => file + s).filter((p) => existsSync(p));
}
