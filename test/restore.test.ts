/**
 * Full restore at the library level over a generated FOLE-like tree with real
 * SQLite databases in WAL mode: the round trip (bytes, rows including WAL-only
 * rows, modes, mtimes, exclusions), replacing a live STORAGE_ROOT (previous tree
 * kept, lock released), the dry run, empty targets, and a backup taken while a
 * writer was committing to two databases.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../src/backup/backup.js';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restore/restore.js';
import type { TreeEntry } from '../src/snapshot/snapshot.js';
import { sideFilesOf } from '../src/sqlite/integrity.js';
import { sha256Hex } from '../src/crypto/hash.js';
import { loadSnapshot } from '../src/snapshot/store.js';
import { readStorageLock } from '../src/storage/global-lock.js';
import { createDatabase, startWriter } from './fixtures/sqlite-writer.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';
import {
  dumpDatabase,
  dumpDatabaseFile,
  makeFoleTree,
  treeHash,
  treeLines,
  treeOf,
  workingFiles,
  type FoleTree,
} from './restore-helpers.js';

let work: string;
let repo: Repository;
let source: FoleTree;
let backupId: string;
let entries: TreeEntry[];
/** Row dumps of the source databases at backup time, read through SQLite (so WAL-only rows are in). */
const sourceRows = new Map<string, string>();

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-restore-'));
  source = makeFoleTree(join(work, 'site', 'storage'));
  repo = await Repository.init(new LocalBackend(join(work, 'repo')), TEST_PASSWORD, { kdf: FAST_KDF });
  const r = await backup(repo, { storageRoot: source.root, foleVersion: '2.3.1' });
  backupId = r.backupId;
  entries = await treeOf(repo, backupId);
  // core.db through the connection that keeps its -wal (45 rows, 40 of them only in the -wal)
  sourceRows.set('core/core.db', dumpDatabase(source.core.db));
  for (const db of source.databases.slice(1)) sourceRows.set(db, dumpDatabaseFile(join(source.root, db)));
});

afterAll(async () => {
  source.core.db.close();
  await repo.close();
  rmSync(work, { recursive: true, force: true });
});

const opts = (target: string) => ({ target, confirm: backupId, foleVersion: '2.3.1' });

function assertRestoredTree(root: string, opts2: { replaced?: boolean } = {}): void {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  // exactly the backup's paths: no tmp/, cache/, -wal/-shm or symlink comes back, nothing extra appears
  const present = treeLines(root, { ignoreRoot: true }).map((l) => l.split(' ')[1] as string);
  expect(present.sort()).toEqual([...byPath.keys()].sort());
  for (const l of present) expect(l).not.toMatch(/(^|\/)(tmp|cache)(\/|$)|-wal$|-shm$|-journal$|outside-link/);
  for (const e of entries) {
    const p = join(root, e.path);
    const st = lstatSync(p);
    expect(st.mode & 0o7777, `mode of ${e.path}`).toBe(e.mode);
    expect(Math.abs(st.mtimeMs - e.mtimeMs), `mtime of ${e.path}`).toBeLessThan(0.001);
    if (e.kind === 'dir') expect(st.isDirectory()).toBe(true);
    else if (e.kind === 'file')
      expect(readFileSync(p).equals(readFileSync(join(source.root, e.path))), `content of ${e.path}`).toBe(true);
    else {
      expect(sideFilesOf(p), `side files of ${e.path}`).toEqual([]);
      // a restored database is the captured one, byte for byte: nothing (not even the lock bookkeeping) writes to it
      expect(sha256Hex(readFileSync(p)), `SHA-256 of ${e.path}`).toBe(e.sha256);
    }
  }
  // databases: row-identical to the source as SQLite saw it at backup time, WAL-only rows included
  for (const e of entries)
    if (e.kind === 'db') expect(dumpDatabaseFile(join(root, e.path)), `rows of ${e.path}`).toBe(sourceRows.get(e.path));
  const core = new Database(join(root, 'core', 'core.db'), { fileMustExist: true });
  expect(core.prepare('SELECT count(*) AS c FROM counter').get()).toEqual({ c: 45 });
  expect(core.pragma('integrity_check', { simple: true })).toBe('ok');
  core.close();
  if (opts2.replaced) expect(readStorageLock(root)).toBeUndefined();
}

describe('restore', () => {
  it(
    'restores into an absent directory: every file byte-identical, every row identical (WAL-only rows too), ' +
      'modes and mtimes kept',
    async () => {
      const target = join(work, 'drill', 'fole');
      mkdirSync(join(work, 'drill'));
      const r = await restore(repo, backupId, opts(target));
      expect(r).toMatchObject({
        backupId,
        target,
        mode: 'fill',
        previousTree: null,
        databases: 4,
        storageLock: false,
        recovered: null,
        cachesCleared: [],
        partial: false,
      });
      expect(r.files).toBe(entries.filter((e) => e.kind !== 'dir').length);
      expect(r.bytes).toBe(entries.reduce((n, e) => n + (e.size ?? 0), 0));
      assertRestoredTree(target);
      // the root as the backup recorded it, not a private default
      expect(statSync(target).mode & 0o7777).toBe(statSync(source.root).mode & 0o7777);
      expect(workingFiles(join(work, 'drill'))).toEqual([]);
    },
  );

  it('replaces a live STORAGE_ROOT, keeps the previous tree beside it and names it', async () => {
    const live = join(work, 'live', 'fole');
    const old = makeFoleTree(live, { bigBytes: 5000 });
    old.core.db.close();
    const oldLines = treeLines(live, { ignoreContent: ['core', 'core/core.db'] });
    const r = await restore(repo, 'latest', { ...opts(live), now: () => new Date('2026-11-26T05:12:00Z') });
    expect(r.mode).toBe('replace');
    expect(r.storageLock).toBe(true);
    expect(r.previousTree).toBe(`${live}.pre-restore-20261126T051200Z`);
    assertRestoredTree(live, { replaced: true });
    // `verify` of the restored tree against the manifest: core.db matches it byte for byte
    const manifest = (await loadSnapshot(repo, backupId)).manifest;
    expect(`sha256:${sha256Hex(readFileSync(join(live, 'core', 'core.db')))}`).toBe(manifest.core.coreDb);
    // the previous tree is the old one, untouched but for the lock bookkeeping in core.db
    expect(treeLines(r.previousTree as string, { ignoreContent: ['core', 'core/core.db'] })).toEqual(oldLines);
    expect(readStorageLock(r.previousTree as string)).toBeUndefined();
    expect(readdirSync(join(work, 'live')).sort()).toEqual(['fole', 'fole.pre-restore-20261126T051200Z']);

    // and again, in the same second: the next previous tree gets a fresh name
    const again = await restore(repo, backupId, { ...opts(live), now: () => new Date('2026-11-26T05:12:00Z') });
    expect(again.previousTree).toBe(`${live}.pre-restore-20261126T051200Z-2`);
    assertRestoredTree(live, { replaced: true });
  });

  it('replaces an empty target directory, giving it the mode of the STORAGE_ROOT that was backed up', async () => {
    const target = join(work, 'empty');
    mkdirSync(target, { mode: 0o751 });
    const r = await restore(repo, backupId, opts(target));
    expect(r).toMatchObject({ mode: 'fill', previousTree: null });
    assertRestoredTree(target);
    expect(statSync(target).mode & 0o7777).toBe(statSync(source.root).mode & 0o7777);
  });

  it('plans in a dry run and changes nothing, not even staging', async () => {
    const live = join(work, 'dry', 'fole');
    makeFoleTree(live, { bigBytes: 100 }).core.db.close();
    const before = treeHash(join(work, 'dry'));
    const plan = await restore(repo, 'latest', { target: live, foleVersion: '2.3.1', dryRun: true });
    expect(plan).toMatchObject({ backupId, mode: 'replace', confirmed: false, storageLock: true });
    expect(plan.target.holds).toMatch(/STORAGE_ROOT \(2 projects, modules maps, sketch\)/);
    expect(plan.previousTree).toMatch(/\/dry\/fole\.pre-restore-\d{8}T\d{6}Z$/);
    expect(plan.databases.map((d) => d.path).sort()).toEqual([...source.databases].sort());
    expect(plan.write.files).toBe(entries.filter((e) => e.kind !== 'dir').length);
    expect(treeHash(join(work, 'dry'))).toBe(before);
  });
});

describe('restore of a backup taken while a writer was committing', () => {
  it('passes integrity and cross-database consistency', async () => {
    const root = join(work, 'busy');
    createDatabase(join(root, 'core', 'core.db'), 10);
    const a = join(root, 'projects', 'p1', 'project.db');
    const b = join(root, 'projects', 'p1', 'maps', 'm1', 'map.db');
    const writer = await startWriter([a, b]);
    let id: string;
    try {
      // let it commit for a while, then back up in the middle of its loop
      await writer.waitFor((l) => /^n \d+$/.test(l) && Number(l.slice(2)) >= 200);
      id = (await backup(repo, { storageRoot: root, foleVersion: '2.3.1', busyTimeoutMs: 30_000 })).backupId;
    } finally {
      await writer.stop();
    }
    const target = join(work, 'busy-restored');
    const r = await restore(repo, id, { target, confirm: id, foleVersion: '2.3.1' });
    expect(r.databases).toBe(3);
    expect(existsSync(`${join(target, 'projects', 'p1', 'project.db')}-wal`)).toBe(false);
    const max = (file: string): number => {
      const db = new Database(file, { fileMustExist: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        return (db.prepare('SELECT max(n) AS m FROM counter').get() as { m: number }).m;
      } finally {
        db.close();
      }
    };
    const ma = max(join(target, 'projects', 'p1', 'project.db'));
    const mb = max(join(target, 'projects', 'p1', 'maps', 'm1', 'map.db'));
    expect(ma).toBeGreaterThanOrEqual(200);
    expect(ma === mb || ma === mb + 1, `A.max ${ma}, B.max ${mb}`).toBe(true);
  });
});
