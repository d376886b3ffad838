/**
 * Incremental backups: what is provably unchanged is not read again, what
 * changed is, and the result is a complete backup that reads back exactly like
 * the live tree.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { backup } from '../src/backup/backup.js';
import { loadSnapshot } from '../src/snapshot/store.js';
import { readTree } from '../src/snapshot/tree.js';
import type { TreeEntry } from '../src/snapshot/snapshot.js';
import type { Repository } from '../src/repository/repository.js';
import { createDatabase, createWalOnlyDatabase, type WalOnlyDatabase } from './fixtures/sqlite-writer.js';
import { makeRepo, readBack } from './repo-helpers.js';

let work: string;
let root: string;
let live: WalOnlyDatabase;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-incr-'));
  root = join(work, 'storage');
  createDatabase(join(root, 'core', 'core.db'), 10);
  // a database FOLE keeps open, with committed rows only in its -wal
  live = createWalOnlyDatabase(join(root, 'projects', 'p1', 'project.db'), 100, 30);
  createDatabase(join(root, 'projects', 'p1', 'maps', 'm1', 'map.db'), 2000);
  createDatabase(join(root, 'projects', 'p2', 'project.db'), 500, 'delete');
  mkdirSync(join(root, 'projects', 'p1', 'files'), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(root, 'projects', 'p1', 'files', `f${i}.bin`), randomBytes(20_000));
  writeFileSync(join(root, 'projects', 'p1', 'project.json'), '{"id":"p1"}');
});

afterEach(() => {
  live.db.close();
  rmSync(work, { recursive: true, force: true });
});

async function treeOf(repo: Repository, id: string): Promise<Map<string, TreeEntry>> {
  const snap = await loadSnapshot(repo, id);
  const m = new Map<string, TreeEntry>();
  for await (const e of readTree(repo, snap.tree)) m.set(e.path, e);
  return m;
}

function rows(file: string, table = 'counter'): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT * FROM ${table} ORDER BY 1`).all();
  } finally {
    db.close();
  }
}

/** Every file and DB of the backup reads back as the live tree has it now. */
async function expectMatchesLive(repo: Repository, id: string): Promise<void> {
  const tree = await treeOf(repo, id);
  for (const [path, e] of tree) {
    if (e.kind === 'file') expect((await readBack(repo, e)).equals(readFileSync(join(root, path))), path).toBe(true);
    if (e.kind === 'db' && path !== 'core/core.db') {
      const copy = join(work, `check-${Math.random().toString(36).slice(2)}.db`);
      writeFileSync(copy, await readBack(repo, e));
      expect(rows(copy), path).toEqual(rows(join(root, path)));
    }
  }
}

describe('incremental backup', () => {
  it('reads (almost) nothing when nothing changed, and still stores a complete backup', async () => {
    const repo = await makeRepo();
    const full = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    const incr = await backup(repo, { storageRoot: root, foleVersion: '1.0.0', incremental: true });
    expect(incr.type).toBe('incremental');
    expect(incr.parent).toBe(full.backupId);
    expect(incr.filesUnchanged).toBe(41);
    expect(incr.filesNew + incr.filesChanged + incr.filesDeleted).toBe(0);
    expect(full.filesDeleted).toBe(0);
    // only core.db is captured again: it carries the storage lock during every backup
    expect(incr.dbsCaptured).toBe(1);
    expect(incr.dbsUnchanged).toBe(3);
    expect(incr.bytesRead).toBeLessThan(full.bytesRead / 20);
    expect(incr.files).toBe(full.files);
    expect(incr.bytes).toBe(full.bytes);
    const a = await treeOf(repo, full.backupId);
    const b = await treeOf(repo, incr.backupId);
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [p, e] of a) if (p !== 'core/core.db') expect(b.get(p)?.sha256, p).toBe(e.sha256);
    await expectMatchesLive(repo, incr.backupId);
  });

  it('re-reads touched, added and changed files, drops removed ones, and recaptures changed databases', async () => {
    const repo = await makeRepo();
    const full = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    const files = join(root, 'projects', 'p1', 'files');
    appendFileSync(join(files, 'f1.bin'), 'more'); // changed
    const t = new Date(Date.now() + 5000);
    utimesSync(join(files, 'f2.bin'), t, t); // touched, same content
    unlinkSync(join(files, 'f3.bin')); // removed
    writeFileSync(join(files, 'new.bin'), randomBytes(30_000)); // added
    // WAL commit
    live.db.prepare('INSERT INTO counter (n, payload) VALUES (?, ?)').run(100_000, 'after the full backup');
    const p2 = new Database(join(root, 'projects', 'p2', 'project.db'));
    p2.prepare('UPDATE counter SET payload = ? WHERE n = 7').run('changed');
    p2.close();

    const incr = await backup(repo, { storageRoot: root, foleVersion: '1.0.0', incremental: true });
    expect(incr.filesNew).toBe(1);
    expect(incr.filesChanged).toBe(2);
    expect(incr.filesUnchanged).toBe(38);
    expect(incr.filesDeleted).toBe(1);
    expect(incr.dbsCaptured).toBe(3); // core + the two changed ones
    expect(incr.dbsUnchanged).toBe(1); // map.db
    const tree = await treeOf(repo, incr.backupId);
    expect(tree.has('projects/p1/files/f3.bin')).toBe(false);
    expect(tree.has('projects/p1/files/new.bin')).toBe(true);
    await expectMatchesLive(repo, incr.backupId);
    // the touched file was re-read but its content deduplicated
    expect(incr.addedBytes).toBeLessThan(full.addedBytes / 4);
  });

  it('falls back to a full backup when there is no parent, and --full style re-reads everything', async () => {
    const repo = await makeRepo();
    const first = await backup(repo, { storageRoot: root, foleVersion: '1.0.0', incremental: true });
    expect(first.type).toBe('full');
    expect(first.parent).toBeUndefined();
    const again = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    expect(again.type).toBe('full');
    expect(again.bytesRead).toBeGreaterThanOrEqual(first.bytesRead * 0.9);
  });

  it('chains: an incremental of an incremental is still complete', async () => {
    const repo = await makeRepo();
    await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    writeFileSync(join(root, 'projects', 'p1', 'files', 'f5.bin'), randomBytes(1000));
    const second = await backup(repo, { storageRoot: root, foleVersion: '1.0.0', incremental: true });
    live.db.prepare('INSERT INTO counter (n, payload) VALUES (?, ?)').run(200_000, 'third');
    const third = await backup(repo, { storageRoot: root, foleVersion: '1.0.0', incremental: true });
    expect(third.parent).toBe(second.backupId);
    expect(third.dbsCaptured).toBe(2);
    await expectMatchesLive(repo, third.backupId);
  });
});
