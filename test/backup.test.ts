/**
 * Full backup at the library level, over real files and real SQLite databases
 * in WAL mode: round trip, exclusions, manifest fields, WAL-only rows, and the
 * failure paths (wrong password, damaged pack, full disk, corrupt source DB).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  appendFileSync,
  linkSync,
  truncateSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  chmodSync,
  utimesSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { backup } from '../src/backup/backup.js';
import { confirmFoleDatabases } from '../src/backup/write-snapshot.js';
import { MemoryBackend } from '../src/backend/memory.js';
import { FaultInjectingBackend } from '../src/backend/fault.js';
import { FoleBackupError, StopError } from '../src/errors.js';
import { readManifest } from '../src/manifest/manifest.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots, loadSnapshot } from '../src/snapshot/store.js';
import { readTree } from '../src/snapshot/tree.js';
import { readStorageLock } from '../src/storage/global-lock.js';
import type { SnapshotDatabase, TreeEntry } from '../src/snapshot/snapshot.js';
import {
  createDamagedDatabase,
  createDatabase,
  createWalOnlyDatabase,
  type WalOnlyDatabase,
} from './fixtures/sqlite-writer.js';
import { makeRepo, readBack, TEST_PASSWORD } from './repo-helpers.js';
import { createHash, randomBytes } from 'node:crypto';

let root: string;
let work: string;
let core: WalOnlyDatabase;

function write(rel: string, content: string | Buffer): void {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), content);
}

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-test-'));
  root = join(work, 'storage');
  mkdirSync(join(root, 'core'), { recursive: true });
  core = createWalOnlyDatabase(join(root, 'core', 'core.db'), 5, 40);
  core.db.exec('CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT)');
  core.db.prepare('INSERT INTO users VALUES (?, ?)').run('u1', 'ada@example.com');
  write('core/ai-action-log.jsonl', '{"a":1}\n');
  write('templates/server-defaults.json', '{"theme":"light"}');
  write('templates/email/welcome.json', '{"subject":"hi"}');
  write('config/server.json', '{"port":8080}');
  mkdirSync(join(root, 'modules', 'maps'), { recursive: true });
  createDatabase(join(root, 'modules', 'maps', 'module.db'), 20);
  write('modules/maps/module-settings.json', '{}');
  write('modules/maps/tmp/scratch.bin', 'junk');
  write('projects/p1/project.json', '{"id":"p1"}');
  createDatabase(join(root, 'projects', 'p1', 'project.db'), 100);
  createDatabase(join(root, 'projects', 'p1', 'maps', 'm1', 'map.db'), 50, 'delete');
  write(
    'projects/p1/maps/m1/tiles/0/0/0.png',
    Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(3000, 7)]),
  );
  write('projects/p1/files/big.bin', randomBytes(3 * 1024 * 1024 + 17));
  write('projects/p1/files/empty.txt', '');
  write('projects/p1/cache/thumb.png', 'cached');
  write('projects/p1/tmp/upload.part', 'partial');
  write('projects/p1/logs/app.log', 'line\n'.repeat(1000));
  write('projects/p2/project.json', '{"id":"p2"}');
  write('AI_AUTOMATION_PAUSED', '');
  symlinkSync('/etc/hostname', join(root, 'projects', 'p1', 'files', 'outside-link'));
  chmodSync(join(root, 'config', 'server.json'), 0o640);
  utimesSync(join(root, 'config', 'server.json'), new Date('2024-01-02T03:04:05Z'), new Date('2024-01-02T03:04:05Z'));
});

afterEach(() => {
  core.db.close();
  rmSync(work, { recursive: true, force: true });
});

async function entries(repo: Repository, backupId: string): Promise<TreeEntry[]> {
  const snap = await loadSnapshot(repo, backupId);
  const out: TreeEntry[] = [];
  for await (const e of readTree(repo, snap.tree)) out.push(e);
  return out;
}

describe('full backup', () => {
  it('stores every file byte-identical and leaves ephemeral files, side files and symlinks out', async () => {
    const repo = await makeRepo();
    const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1', actor: 'ops@example.com' });
    expect(r.databases).toBe(4);
    const list = await entries(repo, r.backupId);
    const paths = list.map((e) => e.path);
    expect(paths).not.toContain('projects/p1/cache');
    expect(paths).not.toContain('projects/p1/tmp/upload.part');
    expect(paths).not.toContain('modules/maps/tmp');
    expect(paths.some((p) => p.endsWith('-wal') || p.endsWith('-shm'))).toBe(false);
    expect(paths).not.toContain('projects/p1/files/outside-link');
    expect(r.skipped).toContainEqual({
      path: 'projects/p1/files/outside-link',
      reason: expect.stringContaining('symlink'),
    });
    for (const e of list) {
      if (e.kind !== 'file') continue;
      const original = readFileSync(join(root, e.path));
      const stored = await readBack(repo, e);
      expect(stored.equals(original), e.path).toBe(true);
      expect(e.sha256).toBe(createHash('sha256').update(original).digest('hex'));
    }
    const cfg = list.find((e) => e.path === 'config/server.json');
    expect(cfg?.mode).toBe(0o640);
    expect(cfg?.mtimeMs).toBe(Date.parse('2024-01-02T03:04:05Z'));
    expect(list.find((e) => e.path === 'projects/p1/files/big.bin')?.chunks).toHaveLength(4);
  });

  it('captures databases with the Online Backup API, including rows only in the -wal', async () => {
    const repo = await makeRepo();
    const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
    const list = await entries(repo, r.backupId);
    const coreEntry = list.find((e) => e.path === 'core/core.db');
    expect(coreEntry?.kind).toBe('db');
    const copy = join(work, 'restored-core.db');
    const bytes = await readBack(repo, coreEntry as TreeEntry);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(coreEntry?.sha256);
    writeFileSync(copy, bytes);
    const db = new Database(copy, { readonly: true });
    expect(db.prepare('SELECT count(*) AS c FROM counter').get()).toEqual({ c: 45 });
    expect(db.prepare('SELECT email FROM users').get()).toEqual({ email: 'ada@example.com' });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    // our own lock row never travels inside a backup
    const hasLocks = db.prepare("SELECT count(*) AS c FROM sqlite_master WHERE name = 'dal_locks'").get() as {
      c: number;
    };
    if (hasLocks.c > 0)
      expect(db.prepare("SELECT count(*) AS c FROM dal_locks WHERE lock_id = 'storage:global'").get()).toEqual({
        c: 0,
      });
    db.close();
    // and the lock is released in the live tree
    expect(readStorageLock(root)).toBeUndefined();
  });

  it('stores a database copy and an upload over 32 MiB (stored in parts) whole and readable', async () => {
    const big = new Database(join(root, 'projects', 'p2', 'project.db'));
    big.pragma('journal_mode = WAL');
    big.exec('CREATE TABLE attachments (id INTEGER PRIMARY KEY, data BLOB)');
    const insert = big.prepare('INSERT INTO attachments (data) VALUES (randomblob(65536))');
    big.transaction(() => {
      for (let i = 0; i < 600; i++) insert.run();
    })();
    const upload = randomBytes(36 * 1024 * 1024 + 5);
    write('projects/p2/files/survey.bin', upload);
    const repo = await makeRepo();
    const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
    const list = await entries(repo, r.backupId);
    const db = list.find((e) => e.path === 'projects/p2/project.db') as TreeEntry;
    expect(db.kind).toBe('db');
    expect(db.size).toBeGreaterThan(32 * 1024 * 1024);
    const bytes = await readBack(repo, db);
    expect(bytes.length).toBe(db.size);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(db.sha256);
    writeFileSync(join(work, 'p2.db'), bytes);
    const copy = new Database(join(work, 'p2.db'), { readonly: true });
    expect(copy.prepare('SELECT count(*) AS c FROM attachments').get()).toEqual({ c: 600 });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    copy.close();
    big.close();
    const file = list.find((e) => e.path === 'projects/p2/files/survey.bin') as TreeEntry;
    expect((await readBack(repo, file)).equals(upload)).toBe(true);
    expect(file.sha256).toBe(createHash('sha256').update(upload).digest('hex'));
  });

  it("writes a manifest with every field of FOLE's manifest.json", async () => {
    const repo = await makeRepo();
    const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1', actor: 'ops@example.com' });
    const m = await readManifest(repo, await loadSnapshot(repo, r.backupId));
    expect(m.backupId).toBe(r.backupId);
    expect(m.backupId).toMatch(/^[0-9a-f-]{36}$/);
    expect(m.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(m.createdBy).toBe('ops@example.com');
    expect(m.foleVersion).toBe('2.3.1');
    expect(m.storageSpecVersion).toBe('1.1.0');
    expect(m.modules).toEqual(['maps']);
    expect(m.projects.map((p) => p.projectId)).toEqual(['p1', 'p2']);
    const p1 = m.projects[0];
    expect(p1?.projectDb).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(p1?.mapDbs).toHaveLength(1);
    expect(p1?.mapDbs[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(p1?.files.map((f) => f.path)).toContain('projects/p1/files/big.bin');
    expect(m.projects[1]?.projectDb).toBeNull();
    expect(m.core.coreDb).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Object.keys(m.core.templates).sort()).toEqual(['email/welcome.json', 'server-defaults.json']);
    const byPath = new Map(m.fullFileList.map((f) => [f.path, f.sha256]));
    expect(byPath.get('config/server.json')).toBe(
      createHash('sha256')
        .update(readFileSync(join(root, 'config/server.json')))
        .digest('hex'),
    );
    expect(byPath.get('core/core.db')).toBe(m.core.coreDb?.slice('sha256:'.length));
    for (const f of m.fullFileList) {
      expect(f.path.startsWith('/')).toBe(false);
      expect(f.path).not.toContain('..');
      expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(byPath.has('projects/p1/files/empty.txt')).toBe(true);
  });

  it('dedups: a second backup of an unchanged tree adds almost nothing', async () => {
    const repo = await makeRepo();
    const first = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
    const second = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
    expect(first.addedBytes).toBeGreaterThan(3 * 1024 * 1024);
    // only metadata and the database pages that really changed (the lock table in core.db) are new
    expect(second.addedBytes).toBeLessThan(300 * 1024);
    expect((await listSnapshots(repo)).map((s) => s.backupId)).toEqual([first.backupId, second.backupId]);
  });

  it('reopens with the password and refuses a wrong one with PERMISSION_DENIED', async () => {
    const backend = new MemoryBackend();
    const repo = await makeRepo(backend);
    const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
    const again = await Repository.open(backend, TEST_PASSWORD);
    await again.loadIndex();
    expect((await entries(again, r.backupId)).length).toBeGreaterThan(10);
    await expect(Repository.open(backend, 'wrong')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(Repository.open(backend, 'wrong')).rejects.toBeInstanceOf(StopError);
  });

  it('refuses a repository of an unknown format version', async () => {
    const backend = new MemoryBackend();
    await makeRepo(backend);
    const cfg = JSON.parse((await backend.load({ type: 'config', name: 'config' })).toString()) as Record<
      string,
      unknown
    >;
    await backend.save({ type: 'config', name: 'config' }, Buffer.from(JSON.stringify({ ...cfg, formatVersion: 99 })));
    await expect(Repository.open(backend, TEST_PASSWORD)).rejects.toMatchObject({ code: 'REPO_FORMAT_UNSUPPORTED' });
  });

  it('detects a bit flipped in a pack when reading it back', async () => {
    const inner = new MemoryBackend();
    const faulty = new FaultInjectingBackend(inner);
    const repo = await makeRepo(faulty);
    const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
    const list = await entries(repo, r.backupId);
    const big = list.find((e) => e.path === 'projects/p1/files/big.bin') as TreeEntry;
    faulty.flipBitOnLoad((h) => h.type === 'data');
    await expect(readBack(repo, big)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
  });

  it('leaves no backup behind when the repository disk fills up, and the next backup succeeds', async () => {
    const faulty = new FaultInjectingBackend(new MemoryBackend());
    const repo = await makeRepo(faulty);
    faulty.failSaveWith('ENOSPC', (h) => h.type === 'data');
    const err = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FoleBackupError);
    expect((err as FoleBackupError).code).toBe('NO_SPACE');
    expect(await listSnapshots(repo)).toEqual([]);
    expect(readStorageLock(root)).toBeUndefined();
    faulty.clearFaults();
    const ok = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
    expect((await listSnapshots(repo)).map((s) => s.backupId)).toEqual([ok.backupId]);
  });

  it('stops with DB_INTEGRITY_ERROR when a source database is corrupt, and stores nothing', async () => {
    const file = join(root, 'projects', 'p1', 'project.db');
    const db = new Database(file);
    db.exec('CREATE TABLE big (x TEXT); CREATE INDEX big_x ON big(x)');
    const ins = db.prepare('INSERT INTO big VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 5000; i++) ins.run(`row-${i}-${'y'.repeat(50)}`);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
    db.close();
    // damage the middle of the file (B-tree pages), keep the header intact
    const bytes = readFileSync(file);
    const size = statSync(file).size;
    bytes.fill(0x5a, Math.floor(size / 2), Math.floor(size / 2) + 4096);
    writeFileSync(file, bytes);
    const repo = await makeRepo();
    const err = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StopError);
    expect((err as StopError).code).toBe('DB_INTEGRITY_ERROR');
    expect((err as StopError).path).toContain('projects/p1/project.db');
    expect(await listSnapshots(repo)).toEqual([]);
    expect(readStorageLock(root)).toBeUndefined();
  });

  it('refuses a directory that is not a STORAGE_ROOT', async () => {
    const repo = await makeRepo();
    await expect(backup(repo, { storageRoot: join(work, 'nope'), foleVersion: '1.0.0' })).rejects.toMatchObject({
      code: 'NOT_A_STORAGE_ROOT',
    });
    mkdirSync(join(work, 'empty'));
    await expect(backup(repo, { storageRoot: join(work, 'empty'), foleVersion: '1.0.0' })).rejects.toMatchObject({
      code: 'NOT_A_STORAGE_ROOT',
    });
  });
});

describe('backup aborted part-way', () => {
  for (const phase of ['scan and store files', 'capture databases and store files', 'write index', 'write snapshot']) {
    const stops = `stops at "${phase}" with ABORTED`;
    it(`${stops}, leaves no backup, no staging and no lock, and the next backup works`, async () => {
      const repo = await makeRepo();
      const stagingParent = join(work, 'staging-parent');
      mkdirSync(stagingParent);
      const ac = new AbortController();
      const err = await backup(repo, {
        storageRoot: root,
        foleVersion: '1.0.0',
        stagingParent,
        signal: ac.signal,
        reporter: {
          phase: (name) => {
            if (name === phase) ac.abort();
          },
          progress: () => undefined,
          warn: () => undefined,
        },
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FoleBackupError);
      expect((err as FoleBackupError).code).toBe('ABORTED');
      expect(await listSnapshots(repo)).toEqual([]);
      expect(readdirSync(stagingParent)).toEqual([]);
      expect(readStorageLock(root)).toBeUndefined();
      const ok = await backup(repo, { storageRoot: root, foleVersion: '1.0.0', stagingParent });
      expect((await listSnapshots(repo)).map((s) => s.backupId)).toEqual([ok.backupId]);
    });
  }
});

const sha256Of = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('FOLE databases behind a symlink', () => {
  /** Move `rel` out of the root to `<work>/outside/<rel>` and leave a symlink to it in its place. */
  function moveOutside(rel: string): string {
    const outside = join(work, 'outside', rel);
    mkdirSync(join(outside, '..'), { recursive: true });
    renameSync(join(root, rel), outside);
    symlinkSync(outside, join(root, rel));
    return outside;
  }

  function hasLockTable(file: string): boolean {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'dal_locks'").get() !== undefined;
    } finally {
      db.close();
    }
  }

  for (const rel of ['core/core.db', 'core']) {
    const when = `when ${rel} is a symlink`;
    it(`fails the backup with UNSAFE_PATH ${when}, and never writes to what it points to`, async () => {
      core.db.close();
      const outside = moveOutside(rel);
      const outsideDb = rel === 'core' ? join(outside, 'core.db') : outside;
      const before = sha256Of(outsideDb);
      const repo = await makeRepo();
      const err = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FoleBackupError);
      expect((err as FoleBackupError).code).toBe('UNSAFE_PATH');
      expect((err as FoleBackupError).message).toContain('symlink');
      expect(sha256Of(outsideDb)).toBe(before);
      expect(hasLockTable(outsideDb)).toBe(false);
      expect(await listSnapshots(repo)).toEqual([]);
    });
  }

  for (const rel of ['projects/p1/project.db', 'projects/p1', 'modules/maps/module.db', 'modules']) {
    it(`fails the backup with UNSAFE_PATH when ${rel}, a place of FOLE's databases, is a symlink`, async () => {
      moveOutside(rel);
      const repo = await makeRepo();
      const err = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FoleBackupError);
      expect((err as FoleBackupError).code).toBe('UNSAFE_PATH');
      expect((err as FoleBackupError).message).toContain(rel);
      expect(await listSnapshots(repo)).toEqual([]);
      expect(readStorageLock(root)).toBeUndefined();
    });
  }
});

describe("a damaged SQLite file that is not one of FOLE's databases", () => {
  for (const rel of ['projects/p1/files/upload.bin', 'projects/p1/files/notes.db', 'config/cache.sqlite']) {
    it(`stores ${rel} byte for byte as a file with a warning, and the backup succeeds`, async () => {
      createDamagedDatabase(join(root, rel));
      const original = readFileSync(join(root, rel));
      const repo = await makeRepo();
      const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
      expect(r.warnings.some((w) => w.includes(rel) && w.includes('damaged'))).toBe(true);
      const e = (await entries(repo, r.backupId)).find((x) => x.path === rel) as TreeEntry;
      expect(e.kind).toBe('file');
      expect((await readBack(repo, e)).equals(original)).toBe(true);
      expect(r.databases).toBe(4);
      const snap = await loadSnapshot(repo, r.backupId);
      expect(snap.warnings.some((w) => w.includes(rel))).toBe(true);
    });
  }

  it('still captures a sound SQLite upload as a database', async () => {
    createDatabase(join(root, 'projects', 'p1', 'files', 'sound.db'), 10);
    const repo = await makeRepo();
    const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' });
    expect((await entries(repo, r.backupId)).find((x) => x.path === 'projects/p1/files/sound.db')?.kind).toBe('db');
    expect(r.warnings).toEqual([expect.stringContaining('outside-link')]);
  });

  for (const rel of ['projects/p1/project.db', 'projects/p1/maps/m1/map.db', 'modules/maps/module.db']) {
    it(`stops with DB_INTEGRITY_ERROR when FOLE's own ${rel} is damaged`, async () => {
      createDamagedDatabase(join(root, rel));
      const repo = await makeRepo();
      const err = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StopError);
      expect((err as StopError).code).toBe('DB_INTEGRITY_ERROR');
      expect((err as StopError).path).toContain(rel);
      expect(await listSnapshots(repo)).toEqual([]);
    });
  }
});

describe("a file at a place of FOLE's databases that is not a sound database", () => {
  /** Each way a FOLE database can be broken below what capture sees: none of them may be stored as a plain file. */
  const broken: { rel: string; what: string; make: (file: string) => void }[] = [
    { rel: 'projects/p1/project.db', what: 'truncated to 5000 bytes', make: (f) => truncateSync(f, 5000) },
    {
      rel: 'projects/p1/project.db',
      what: 'followed by 100 appended bytes',
      make: (f) => appendFileSync(f, Buffer.alloc(100, 0x41)),
    },
    { rel: 'projects/p1/maps/m1/map.db', what: 'empty', make: (f) => writeFileSync(f, '') },
    { rel: 'modules/maps/module.db', what: 'text', make: (f) => writeFileSync(f, 'hello\n') },
    {
      rel: 'modules/maps/module.db',
      what: 'text of a whole number of pages',
      make: (f) => writeFileSync(f, 'x'.repeat(4096)),
    },
    { rel: 'core/core.db', what: 'truncated to 5000 bytes', make: (f) => truncateSync(f, 5000) },
  ];
  for (const { rel, what, make } of broken) {
    it(`stops with DB_INTEGRITY_ERROR naming ${rel} when it is ${what}, and writes no snapshot`, async () => {
      if (rel === 'core/core.db') core.db.close();
      for (const s of ['-wal', '-shm']) rmSync(join(root, rel + s), { force: true });
      make(join(root, rel));
      const repo = await makeRepo();
      const err = await backup(repo, { storageRoot: root, foleVersion: '2.3.1' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StopError);
      expect((err as StopError).code).toBe('DB_INTEGRITY_ERROR');
      expect((err as StopError).path).toBe(rel);
      expect((err as StopError).message).toContain(rel);
      expect((err as StopError).hint).toBeTruthy();
      expect(await listSnapshots(repo)).toEqual([]);
    });
  }
});

describe('a SQLite database held locked by a writer', () => {
  /** Hold `rel` the way a stuck program does: exclusive locking mode, a write transaction left open. */
  function holdLocked(rel: string, journalMode: 'wal' | 'delete'): Database.Database {
    createDatabase(join(root, rel), 10, journalMode);
    const holder = new Database(join(root, rel));
    holder.pragma('locking_mode = EXCLUSIVE');
    holder.exec('BEGIN IMMEDIATE');
    holder.prepare('INSERT INTO counter (n, payload) VALUES (?, ?)').run(1000, 'uncommitted');
    return holder;
  }

  for (const mode of ['wal', 'delete'] as const) {
    const upload = `stores an upload (${mode} mode)`;
    it(`${upload} byte for byte with a warning that a writer held it, and the backup succeeds`, async () => {
      const rel = 'projects/p1/uploads/user.sqlite';
      const holder = holdLocked(rel, mode);
      try {
        const repo = await makeRepo();
        const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1', busyTimeoutMs: 300 });
        expect(r.warnings.filter((w) => w.includes(rel))).toEqual([
          expect.stringMatching(/locked by a writer.*may be inconsistent/),
        ]);
        const e = (await entries(repo, r.backupId)).find((x) => x.path === rel) as TreeEntry;
        expect(e.kind).toBe('file');
        expect((await readBack(repo, e)).equals(readFileSync(join(root, rel)))).toBe(true);
        expect(r.databases).toBe(4);
      } finally {
        holder.close();
      }
    });
  }

  it("still fails with DB_LOCKED when the database held is one of FOLE's own", async () => {
    rmSync(join(root, 'projects', 'p1', 'project.db'));
    for (const s of ['-wal', '-shm']) rmSync(join(root, 'projects', 'p1', `project.db${s}`), { force: true });
    const holder = holdLocked('projects/p1/project.db', 'wal');
    try {
      const repo = await makeRepo();
      const err = await backup(repo, { storageRoot: root, foleVersion: '2.3.1', busyTimeoutMs: 300 }).catch(
        (x: unknown) => x,
      );
      expect(err).toMatchObject({ code: 'DB_LOCKED', path: 'projects/p1/project.db' });
      expect(await listSnapshots(repo)).toEqual([]);
    } finally {
      holder.close();
    }
  });
});

describe('the last check before a snapshot is written', () => {
  const recorded = (...paths: string[]): SnapshotDatabase[] =>
    paths.map((path) => ({
      path,
      sha256: 'a'.repeat(64),
      size: 4096,
      pageSize: 4096,
      pageCount: 1,
      userVersion: 0,
      journalMode: 'wal',
      integrity: 'ok',
      captured: true,
    }));

  it('fails when core.db, or a FOLE database the scan found, is not recorded as a database', () => {
    expect(() =>
      confirmFoleDatabases(
        root,
        ['core/core.db', 'projects/p1/project.db'],
        recorded('core/core.db', 'projects/p1/project.db'),
      ),
    ).not.toThrow();
    // the scan saw core.db, but it ended up as no database (replaced while the backup ran)
    expect(() => confirmFoleDatabases(root, ['projects/p1/project.db'], recorded('projects/p1/project.db'))).toThrow(
      expect.objectContaining({ code: 'READ_ERROR', path: 'core/core.db', hint: expect.any(String) }),
    );
    expect(() =>
      confirmFoleDatabases(root, ['core/core.db', 'modules/maps/module.db'], recorded('core/core.db')),
    ).toThrow(expect.objectContaining({ path: 'modules/maps/module.db' }));
  });
});

describe('two database names for one file (hard links)', () => {
  it(
    "fails at once with UNSAFE_PATH naming both when one of them is FOLE's own, " + 'instead of waiting on itself',
    async () => {
      const project = join(root, 'projects', 'p1', 'project.db');
      for (const s of ['', '-wal', '-shm']) rmSync(project + s, { force: true });
      linkSync(join(root, 'core', 'core.db'), project);
      const repo = await makeRepo();
      const err = await backup(repo, { storageRoot: root, foleVersion: '2.3.1', busyTimeoutMs: 1000 }).catch(
        (x: unknown) => x,
      );
      expect(err).toMatchObject({ code: 'UNSAFE_PATH', hint: expect.any(String) });
      expect((err as Error).message).toContain('core/core.db');
      expect((err as Error).message).toContain('projects/p1/project.db');
      expect(await listSnapshots(repo)).toEqual([]);
    },
  );

  it('captures one of two hard-linked uploads and stores the other byte for byte with a warning', async () => {
    const [a, b] = ['projects/p1/files/a.sqlite', 'projects/p1/files/b.sqlite'];
    createDatabase(join(root, a), 10, 'delete');
    linkSync(join(root, a), join(root, b));
    const repo = await makeRepo();
    const r = await backup(repo, { storageRoot: root, foleVersion: '2.3.1', busyTimeoutMs: 1000 });
    const all = await entries(repo, r.backupId);
    expect(all.find((x) => x.path === a)?.kind).toBe('db');
    const eb = all.find((x) => x.path === b) as TreeEntry;
    expect(eb.kind).toBe('file');
    expect((await readBack(repo, eb)).equals(readFileSync(join(root, b)))).toBe(true);
    expect(r.warnings.filter((w) => w.includes(b))).toEqual([expect.stringContaining(a)]);
  });
});
