/**
 * checkDatabaseFile reports damage only when the file is damaged: SQLite
 * failing for a reason outside the file (no room for the -shm of a WAL-mode
 * database, a -shm it cannot create) is an ordinary error, never "not ok".
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FoleBackupError } from '../errors.js';
import { checkDatabaseFile, checkMapBytes } from './integrity.js';

let work: string;
let walDb: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-integrity-'));
  walDb = join(work, 'wal.db');
  const db = new Database(walDb);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x TEXT); CREATE INDEX t_x ON t(x)');
  const ins = db.prepare('INSERT INTO t VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 500; i++) ins.run(`row ${i}`);
  })();
  db.close();
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** A copy of the WAL-mode database in a directory of its own. */
function copyIn(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  const file = join(dir, 'copy.db');
  copyFileSync(walDb, file);
  return file;
}

/** What `fn` throws (undefined when it returns). */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Whether this process may mount a tmpfs (root, and a kernel that lets it). */
function tryMountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('checkDatabaseFile', () => {
  it('passes a sound database', () => {
    expect(checkDatabaseFile(copyIn('sound'))).toEqual({ ok: true, problems: [] });
  });

  it('reports a file that is not a database as not ok (damage)', () => {
    const file = join(work, 'garbage.db');
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const r = checkDatabaseFile(file);
    expect(r.ok).toBe(false);
    expect(r.problems.join(' ')).toMatch(/not a database/);
  });

  it('throws READ_ERROR, not "not ok", when SQLite cannot create the -shm of a WAL-mode database', () => {
    const file = copyIn('no-shm');
    // where SQLite must create its -shm file: a link into a directory that does not exist
    symlinkSync(join(work, 'no', 'such', 'dir', 'shm'), `${file}-shm`);
    const err = thrownBy(() => checkDatabaseFile(file));
    expect(err).toBeInstanceOf(FoleBackupError);
    expect(err).toMatchObject({ code: 'READ_ERROR', path: file });
    expect((err as Error).message).toMatch(/says nothing about its content/);
  });

  it('throws NO_SPACE, not "not ok", when the disk is too full for the -shm (a 64 KiB tmpfs; needs root)', (ctx) => {
    const dir = join(work, 'tiny');
    mkdirSync(dir);
    if (!tryMountTmpfs(dir, '64k')) {
      ctx.skip();
      return;
    }
    try {
      const file = join(dir, 'copy.db');
      copyFileSync(walDb, file);
      // fill what is left
      try {
        writeFileSync(join(dir, 'fill'), Buffer.alloc(1024 * 1024));
      } catch {
        // ENOSPC: full, as wanted
      }
      const err = thrownBy(() => checkDatabaseFile(file));
      expect(err).toBeInstanceOf(FoleBackupError);
      expect(err).toMatchObject({ code: 'NO_SPACE' });
      expect((err as FoleBackupError).hint).toMatch(/free space/);
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe('checkMapBytes', () => {
  it('maps a database up to 64 MiB whole, only the first 8 MiB of a larger one', () => {
    const big = join(work, 'big.db');
    writeFileSync(big, '');
    truncateSync(big, 64 * 1024 * 1024);
    expect(checkMapBytes(walDb)).toBe(64 * 1024 * 1024);
    expect(checkMapBytes(big)).toBe(64 * 1024 * 1024);
    truncateSync(big, 64 * 1024 * 1024 + 4096);
    expect(checkMapBytes(big)).toBe(8 * 1024 * 1024);
    expect(checkMapBytes(join(work, 'absent.db'))).toBe(8 * 1024 * 1024);
  });
});
