import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isSqliteFile, mayBeSqlite, SQLITE_HEADER } from './detect.js';

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
