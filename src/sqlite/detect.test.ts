import Database from 'better-sqlite3';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StopError } from '../errors.js';
import { checkFoleDatabaseFile, isSqliteFile, mayBeSqlite, SQLITE_HEADER } from './detect.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fole-detect-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('mayBeSqlite', () => {
  it('accepts only whole multiples of 512 bytes, from 512 on', () => {
    expect([0, 100, 511, 513, 4095, 4097].map(mayBeSqlite)).toEqual([false, false, false, false, false, false]);
    expect([512, 1024, 4096, 65536 * 3].map(mayBeSqlite)).toEqual([true, true, true, true]);
  });
});

describe('isSqliteFile', () => {
  it('recognises a database by its header, whatever its name', async () => {
    const file = join(dir, 'project.sqlite-or-whatever');
    const db = new Database(file);
    db.exec('CREATE TABLE t (x)');
    db.close();
    expect(SQLITE_HEADER.toString('latin1')).toBe('SQLite format 3\0');
    expect(isSqliteFile(file)).toBe(true);
  });

  it('rejects other files, short files and files that are gone', async () => {
    writeFileSync(join(dir, 'tile.png'), Buffer.alloc(4096, 7));
    writeFileSync(join(dir, 'short.db'), 'SQLite format');
    writeFileSync(join(dir, 'almost.db'), Buffer.concat([Buffer.from('SQLite format 3!'), Buffer.alloc(496)]));
    expect(isSqliteFile(join(dir, 'tile.png'))).toBe(false);
    expect(isSqliteFile(join(dir, 'short.db'))).toBe(false);
    expect(isSqliteFile(join(dir, 'almost.db'))).toBe(false);
    expect(isSqliteFile(join(dir, 'gone.db'))).toBe(false);
  });
});

describe('checkFoleDatabaseFile', () => {
  const rel = 'projects/p1/project.db';
  function sound(): string {
    mkdirSync(join(dir, 'projects', 'p1'), { recursive: true });
    const file = join(dir, rel);
    const db = new Database(file);
    db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    db.close();
    return file;
  }

  it('accepts a sound database', () => {
    sound();
    expect(() => checkFoleDatabaseFile(dir, rel)).not.toThrow();
  });

  it('is a STOP DB_INTEGRITY_ERROR for an empty file, a text file and a size that is not whole pages', () => {
    const file = sound();
    appendFileSync(file, 'x');
    for (const content of [null, '', 'hello\n', 'y'.repeat(4096)]) {
      if (content !== null) writeFileSync(file, content);
      let err: unknown;
      try {
        checkFoleDatabaseFile(dir, rel);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StopError);
      expect(err).toMatchObject({ code: 'DB_INTEGRITY_ERROR', path: rel, hint: expect.stringContaining(rel) });
    }
  });

  it('fails, never answers "not a database", when the file vanished or was replaced since the scan saw it', () => {
    mkdirSync(join(dir, 'projects', 'p1'), { recursive: true });
    expect(() => checkFoleDatabaseFile(dir, rel)).toThrow(
      expect.objectContaining({ code: 'READ_ERROR', message: expect.stringContaining('vanished') }),
    );
    mkdirSync(join(dir, rel));
    expect(() => checkFoleDatabaseFile(dir, rel)).toThrow(
      expect.objectContaining({ code: 'READ_ERROR', message: expect.stringContaining('not a regular file') }),
    );
    rmSync(join(dir, rel), { recursive: true });
    const elsewhere = join(dir, 'elsewhere.db');
    const other = new Database(elsewhere);
    other.exec('CREATE TABLE t (x)');
    other.close();
    symlinkSync(elsewhere, join(dir, rel));
    expect(() => checkFoleDatabaseFile(dir, rel)).toThrow(expect.objectContaining({ code: 'UNSAFE_PATH' }));
  });
});
