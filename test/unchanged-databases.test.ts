/**
 * An incremental keeps a database from its parent only when its fingerprint
 * (src/sqlite/capture.ts fingerprintOf) is unchanged. These tests change a
 * database in every way a writer can — while a connection holds it open, as a
 * running FOLE does — and show that the next incremental captures it again and
 * reads back exactly like the live database; and that an untouched one is not
 * read again. Where a change could hide behind an unchanged size and mtime,
 * the mtime is set back to what the parent saw, so only the rest of the
 * fingerprint can catch it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type BackupResult, backup } from '../src/backup/backup.js';
import { captureStorageDatabases, DatabaseOutcomes } from '../src/backup/capture-databases.js';
import { deferred } from '../src/concurrency/deferred.js';
import type { Repository } from '../src/repository/repository.js';
import type { SnapshotDatabase } from '../src/snapshot/snapshot.js';
import { loadSnapshot } from '../src/snapshot/store.js';
import { readTree } from '../src/snapshot/tree.js';
import { fingerprintOf } from '../src/sqlite/capture.js';
import { createDatabase, fileTimesSettled, startWriter } from './fixtures/sqlite-writer.js';
import { makeRepo, readBack } from './repo-helpers.js';

const TARGET = 'projects/p1/project.db';
const BYSTANDER = 'projects/p2/project.db';

let work: string;
let root: string;
let repo: Repository;
const open: Database.Database[] = [];

beforeEach(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-unchanged-'));
  root = join(work, 'storage');
  createDatabase(join(root, 'core', 'core.db'), 10);
  // a database nobody has open: never read again while untouched
  createDatabase(join(root, ...BYSTANDER.split('/')), 300);
  repo = await makeRepo();
});

afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  rmSync(work, { recursive: true, force: true });
});

const target = (suffix = ''): string => join(root, ...TARGET.split('/')) + suffix;

/** A connection held open for the whole test, like a running FOLE: its -wal is never checkpointed away. */
function holdOpen(file: string, journalMode: 'wal' | 'delete' = 'wal'): Database.Database {
  mkdirSync(join(file, '..'), { recursive: true });
  const db = new Database(file);
  open.push(db);
  db.pragma(`journal_mode = ${journalMode}`);
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE IF NOT EXISTS counter (n INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
  return db;
}

function insert(db: Database.Database, from: number, count: number): void {
  const ins = db.prepare('INSERT INTO counter (n, payload) VALUES (?, ?)');
  db.transaction(() => {
    for (let n = from; n < from + count; n++) ins.run(n, `row ${n} ${'p'.repeat(150)}`);
  })();
}

/** Set a file's mtime to a whole second in the past: a value utimes can put back exactly. */
function pinMtime(file: string): number {
  const t = Math.floor(Date.now() / 1000) - 60;
  utimesSync(file, t, t);
  return t;
}

/** The target as a rollback-journal database nobody has open, its mtime pinned (returned). */
function closedTarget(): number {
  createDatabase(target(), 200, 'delete');
  return pinMtime(target());
}

/** A copy of the (closed) target at `file` with row `n` changed in place: the same size. */
function changedCopy(file: string, n: number): string {
  copyFileSync(target(), file);
  const db = new Database(file);
  try {
    db.prepare('UPDATE counter SET payload = ? WHERE n = ?').run('z'.repeat(210), n);
  } finally {
    db.close();
  }
  return file;
}

function rows(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT * FROM counter ORDER BY n').all();
  } finally {
    db.close();
  }
}

async function dbOf(id: string, path: string): Promise<SnapshotDatabase> {
  const snap = await loadSnapshot(repo, id);
  const d = snap.databases.find((x) => x.path === path);
  if (d === undefined) throw new Error(`${path} is not in backup ${id}`);
  return d;
}

/** The rows of `path` as backup `id` holds it. */
async function rowsInBackup(id: string, path: string): Promise<unknown[]> {
  const snap = await loadSnapshot(repo, id);
  for await (const e of readTree(repo, snap.tree)) {
    if (e.path !== path) continue;
    const copy = join(work, `check-${Math.random().toString(36).slice(2)}.db`);
    writeFileSync(copy, await readBack(repo, e));
    return rows(copy);
  }
  throw new Error(`${path} is not in backup ${id}`);
}

const full = (): Promise<BackupResult> => backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
const incremental = (): Promise<BackupResult> =>
  backup(repo, { storageRoot: root, foleVersion: '1.0.0', incremental: true });

/** The incremental after `change` captured the target again, reads back as the live one, and kept the bystander. */
async function expectRecaptured(change: () => void | Promise<void>): Promise<void> {
  const parent = await full();
  const before = (await dbOf(parent.backupId, TARGET)).fingerprint;
  // a fingerprint it could have kept the database by: the change alone must make the difference
  expect(before).toMatch(/^v2 /);
  await change();
  const incr = await incremental();
  expect(incr.parent).toBe(parent.backupId);
  const d = await dbOf(incr.backupId, TARGET);
  expect(d.captured, 'captured again').toBe(true);
  expect(d.fingerprint).not.toBe(before);
  expect(await rowsInBackup(incr.backupId, TARGET)).toEqual(rows(target()));
  expect((await dbOf(incr.backupId, BYSTANDER)).captured).toBe(false);
}

describe('an incremental captures a changed database again', () => {
  it('after a commit into the -wal', async () => {
    const db = holdOpen(target());
    insert(db, 1, 50);
    await expectRecaptured(() => insert(db, 1000, 1));
  });

  for (const mode of ['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'] as const) {
    it(`after a commit and a ${mode} checkpoint`, async () => {
      const db = holdOpen(target());
      insert(db, 1, 50);
      await expectRecaptured(() => {
        insert(db, 1000, 20);
        db.pragma(`wal_checkpoint(${mode})`);
      });
    });
  }

  it('after a checkpoint alone (the main file is written; the content is the same)', async () => {
    const db = holdOpen(target());
    insert(db, 1, 50);
    await expectRecaptured(() => void db.pragma('wal_checkpoint(PASSIVE)'));
  });

  it('after the -wal restarts and grows back to the same size (new salts), mtime set back', async () => {
    const db = holdOpen(target());
    insert(db, 1, 50);
    // everything checkpointed, the -wal keeps its frames: the next commit starts it over
    db.pragma('wal_checkpoint(PASSIVE)');
    const wal = target('-wal');
    const size = statSync(wal).size;
    const header = readFileSync(wal).subarray(0, 32);
    const mtime = pinMtime(wal);
    await expectRecaptured(() => {
      insert(db, 1000, 1);
      utimesSync(wal, mtime, mtime);
      expect(statSync(wal).size).toBe(size);
      expect(readFileSync(wal).subarray(0, 32).equals(header)).toBe(false);
    });
  });

  it('after a commit over stale frames of a restarted -wal (same size, header, last frame), old mtime', async () => {
    const db = holdOpen(target());
    insert(db, 1, 200);
    db.pragma('wal_checkpoint(PASSIVE)');
    insert(db, 1000, 1); // restarts the -wal: a few new frames, then the old ones to its end
    const wal = target('-wal');
    const before = readFileSync(wal);
    const mtime = pinMtime(wal);
    await expectRecaptured(() => {
      insert(db, 2000, 1);
      utimesSync(wal, mtime, mtime);
      const after = readFileSync(wal);
      // size, header and the file's last frame are what the parent saw: only the frames' salts tell
      expect(after.length).toBe(before.length);
      expect(after.subarray(0, 32).equals(before.subarray(0, 32))).toBe(true);
      expect(after.subarray(-(4096 + 24)).equals(before.subarray(-(4096 + 24)))).toBe(true);
      expect(statSync(wal).mtimeMs).toBe(mtime * 1000);
    });
  });

  it('after VACUUM', async () => {
    const db = holdOpen(target());
    insert(db, 1, 300);
    db.exec('DELETE FROM counter WHERE n % 2 = 0');
    await expectRecaptured(() => void db.exec('VACUUM'));
  });

  it('after a same-size rewrite of the main file with its mtime set back', async () => {
    const mtime = closedTarget();
    await expectRecaptured(() => {
      // the same database with one row changed in place, written over the original
      const other = changedCopy(join(work, 'other.db'), 7);
      const size = statSync(target()).size;
      writeFileSync(target(), readFileSync(other));
      utimesSync(target(), mtime, mtime);
      expect(statSync(target()).size).toBe(size);
    });
  });

  it('after an in-place update of a rollback-journal database held open', async () => {
    const db = holdOpen(target(), 'delete');
    insert(db, 1, 100);
    const size = statSync(target()).size;
    await expectRecaptured(() => {
      db.prepare('UPDATE counter SET payload = ? WHERE n = 5').run(`row 5 ${'q'.repeat(150)}`);
      expect(statSync(target()).size).toBe(size);
    });
  });

  it('after the file is replaced by another of the same size and mtime (renamed over it)', async () => {
    const mtime = closedTarget();
    await expectRecaptured(() => {
      const other = changedCopy(join(root, 'projects', 'p1', 'incoming.db'), 9);
      utimesSync(other, mtime, mtime);
      renameSync(other, target());
    });
  });

  it('after its journal mode is switched', async () => {
    const db = holdOpen(target());
    insert(db, 1, 50);
    await expectRecaptured(() => void db.pragma('journal_mode = DELETE'));
    expect(String(db.pragma('journal_mode', { simple: true }))).toBe('delete');
  });

  it('while a real writer process commits, and once more after it stopped; then it is kept', async () => {
    const writer = await startWriter([target()]);
    try {
      const parent = await full();
      await writer.waitFor((l) => Number(l.split(' ')[1]) > 50);
      const during = await incremental();
      expect(during.parent).toBe(parent.backupId);
      expect((await dbOf(during.backupId, TARGET)).captured).toBe(true);
    } finally {
      await writer.stop();
    }
    const after = await incremental();
    expect((await dbOf(after.backupId, TARGET)).captured).toBe(true);
    expect(await rowsInBackup(after.backupId, TARGET)).toEqual(rows(target()));
    const idle = await incremental();
    expect((await dbOf(idle.backupId, TARGET)).captured).toBe(false);
    expect(await rowsInBackup(idle.backupId, TARGET)).toEqual(rows(target()));
  });
});

describe('an incremental keeps an untouched database from its parent', () => {
  it('under a live idle connection with rows in its -wal, and with no connection at all', async () => {
    const db = holdOpen(target());
    insert(db, 1, 50);
    const parent = await full();
    expect(parent.dbsCaptured).toBe(3);
    const incr = await incremental();
    // core.db is always captured: it holds our lock row during every backup
    expect(incr.dbsCaptured).toBe(1);
    expect(incr.dbsUnchanged).toBe(2);
    expect((await dbOf(incr.backupId, TARGET)).captured).toBe(false);
    expect((await dbOf(incr.backupId, BYSTANDER)).captured).toBe(false);
    expect(await rowsInBackup(incr.backupId, TARGET)).toEqual(rows(target()));
    expect(await rowsInBackup(incr.backupId, BYSTANDER)).toEqual(rows(join(root, ...BYSTANDER.split('/'))));
  });

  it('whose -wal has frames and nobody has it open (a crashed FOLE)', async () => {
    const db = holdOpen(join(work, 'live.db'));
    insert(db, 1, 50);
    mkdirSync(join(target(), '..'), { recursive: true });
    copyFileSync(join(work, 'live.db'), target());
    copyFileSync(join(work, 'live.db-wal'), target('-wal'));
    const parent = await full();
    expect((await dbOf(parent.backupId, TARGET)).captured).toBe(true);
    const incr = await incremental();
    expect((await dbOf(incr.backupId, TARGET)).captured).toBe(false);
    expect(await rowsInBackup(incr.backupId, TARGET)).toEqual(rows(target()));
  });

  it("captures again, without an error, a database whose parent has an older fingerprint ('v1')", async () => {
    const db = holdOpen(target());
    insert(db, 1, 50);
    const parent = await full();
    const snap = await loadSnapshot(repo, parent.backupId);
    const st = statSync(target(), { bigint: true });
    const wal = statSync(target('-wal'), { bigint: true });
    const header = readFileSync(target('-wal')).subarray(0, 32).toString('hex');
    // what the previous release recorded for this very content
    const main = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    const v1 = `v1 ${main} wal ${wal.ino}:${wal.size}:${wal.mtimeNs}:${header}`;
    const parentDatabases = snap.databases.map((d) => (d.path === TARGET ? { ...d, fingerprint: v1 } : d));
    const stored = new Map<string, string>();
    const storing = deferred<void>();
    const outcomes = new DatabaseOutcomes();
    const staging = mkdtempSync(join(work, 'staging-'));
    const result = await captureStorageDatabases(
      {
        root,
        databases: [TARGET, BYSTANDER],
        stagingDir: staging,
        parentDatabases,
        signal: new AbortController().signal,
      },
      outcomes,
      async (path, copy) => {
        stored.set(path, copy.file);
        // a copy is removed once stored: held "being stored" until it is read below
        await storing.promise;
        return { status: 'vanished' };
      },
    );
    expect(result.databases.map((d) => d.path)).toEqual([TARGET]);
    expect(result.unchanged.map((d) => d.path)).toEqual([BYSTANDER]);
    expect(rows(stored.get(TARGET) ?? '')).toEqual(rows(target()));
    storing.resolve();
  });
});

describe('fingerprintOf', () => {
  it('gives none (changed) while a time of the file or its -wal is too recent to tell a later write from', async () => {
    const db = holdOpen(target());
    insert(db, 1, 50);
    const old = Math.floor(Date.now() / 1000) - 60;
    utimesSync(target(), old, old);
    utimesSync(target('-wal'), old, old);
    // utimes moved the main file's ctime to now
    await fileTimesSettled();
    expect(fingerprintOf(target())).toMatch(/^v2 /);
    // a time in the future is as untrustworthy as one within the last clock tick
    const future = Math.floor(Date.now() / 1000) + 3600;
    utimesSync(target('-wal'), future, future);
    expect(fingerprintOf(target())).toBe('');
    utimesSync(target('-wal'), old, old);
    utimesSync(target(), future, future);
    expect(fingerprintOf(target())).toBe('');
  });
});
