import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StopError } from '../errors.js';
import { openUnder } from '../host/open-files.js';
import {
  createDamagedDatabase,
  createDatabase,
  createWalOnlyDatabase,
  startLockHolder,
  startWriter,
  type ChildHandle,
} from '../../test/fixtures/sqlite-writer.js';
import { captureDatabases, type CaptureOptions, fileReadAhead, fingerprintOf } from './capture.js';
import { rejection } from '../../test/rejection.js';
import { canRun } from '../../test/needs.js';
import { execFileSync } from 'node:child_process';

let root: string;
let staging: string;
const cleanups: (() => unknown)[] = [];

beforeEach(() => {
  const base = mkdtempSync(join(tmpdir(), 'fole-capture-'));
  root = join(base, 'root');
  staging = join(base, 'staging');
  mkdirSync(root);
  mkdirSync(staging, { mode: 0o700 });
  cleanups.push(() => rmSync(base, { recursive: true, force: true }));
});

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function abs(rel: string): string {
  return join(root, ...rel.split('/'));
}

function sha(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function sideFiles(file: string): string[] {
  return ['-wal', '-shm', '-journal'].filter((s) => existsSync(file + s));
}

/** One query on a short-lived connection (writable: a read-only one leaves -wal/-shm behind). */
function query<T>(file: string, sql: string): T {
  const db = new Database(file, { fileMustExist: true });
  try {
    return db.prepare(sql).get() as T;
  } finally {
    db.close();
  }
}

/**
 * A WAL database at `rel` with 25 rows, 20 of them only in its -wal, that nobody has open: what a FOLE that crashed
 * leaves. Returns the SHA-256 of its two files.
 */
function crashedFole(rel: string): { wal: string; main: string } {
  const live = join(staging, '..', 'live.db');
  const fix = createWalOnlyDatabase(live, 5, 20);
  mkdirSync(join(root, ...rel.split('/').slice(0, -1)), { recursive: true });
  copyFileSync(live, abs(rel));
  copyFileSync(`${live}-wal`, `${abs(rel)}-wal`);
  fix.db.close();
  return { wal: sha(`${abs(rel)}-wal`), main: sha(abs(rel)) };
}

/** The database's files are as crashedFole left them, and nothing under the root is open. */
function expectAsFound(rel: string, found: { wal: string; main: string }): void {
  expect(sha(`${abs(rel)}-wal`)).toBe(found.wal);
  expect(sha(abs(rel))).toBe(found.main);
  expect(openUnder(root)).toEqual(new Map());
}

function capture(databases: string[], extra: Partial<CaptureOptions> = {}) {
  return captureDatabases({ storageRoot: root, databases, stagingDir: staging, ...extra });
}

describe('captureDatabases', () => {
  it('captures rows that live only in the -wal and leaves the source -wal untouched', async () => {
    const rel = 'projects/p1/project.db';
    const fix = createWalOnlyDatabase(abs(rel), 10, 50);
    cleanups.push(() => fix.db.close());
    const walBefore = sha(`${abs(rel)}-wal`);
    const mainBefore = sha(abs(rel));

    // The main file alone lacks the rows: a file copy would lose them.
    const mainOnly = join(staging, 'main-only.db');
    copyFileSync(abs(rel), mainOnly);
    expect(query<{ c: number }>(mainOnly, 'SELECT count(*) AS c FROM counter').c).toBe(10);
    rmSync(mainOnly);

    const result = await capture([rel]);
    const [db] = result.databases;
    expect(db?.path).toBe(rel);
    expect(db?.journalMode).toBe('wal');
    expect(sideFiles(db?.file ?? '')).toEqual([]);
    expect(query<{ c: number }>(db?.file ?? '', 'SELECT count(*) AS c FROM counter').c).toBe(60);

    expect(existsSync(`${abs(rel)}-wal`)).toBe(true);
    expect(sha(`${abs(rel)}-wal`)).toBe(walBefore);
    expect(sha(abs(rel))).toBe(mainBefore);
    // SQLite defers closing a file descriptor while another connection of this process
    // (the fixture: a running FOLE) holds locks on the file; after it, nothing is open.
    fix.db.close();
    expect(openUnder(root)).toEqual(new Map());
  });

  it('leaves the -wal of a database nobody has open (a crashed FOLE) exactly as it found it', async () => {
    const rel = 'core/core.db';
    const found = crashedFole(rel);
    const result = await capture([rel]);
    expect(query<{ c: number }>(result.databases[0]?.file ?? '', 'SELECT count(*) AS c FROM counter').c).toBe(25);
    expectAsFound(rel, found);
  });

  it('leaves no side files beside a cleanly closed source', async () => {
    createDatabase(abs('modules/m/module.db'), 100, 'wal');
    createDatabase(abs('projects/p/project.db'), 100, 'delete');
    expect(sideFiles(abs('modules/m/module.db'))).toEqual([]);
    const result = await capture(['modules/m/module.db', 'projects/p/project.db']);
    expect(result.databases.map((d) => [d.path, d.journalMode])).toEqual([
      ['modules/m/module.db', 'wal'],
      ['projects/p/project.db', 'delete'],
    ]);
    expect(sideFiles(abs('modules/m/module.db'))).toEqual([]);
    expect(sideFiles(abs('projects/p/project.db'))).toEqual([]);
    expect(openUnder(root)).toEqual(new Map());
  });

  it('captures two databases at one instant while a real writer process commits to both', async () => {
    const a = 'projects/p1/project.db';
    const b = 'projects/p1/maps/m1/map.db';
    // Enough pages that copying takes many backup steps while the writer commits.
    createDatabase(abs(a), 3000, 'wal');
    createDatabase(abs(b), 3000, 'wal');
    const writer = await startWriter([abs(a), abs(b)]);
    cleanups.push(() => writer.stop());

    const startN = writer.lastN();
    let lastA = 0;
    for (let i = 0; i < 6; i++) {
      // Alternate one-step copies with 8-page steps: stepping must finish under commits too.
      const before = Date.now();
      const result = await capture([a, b], i % 2 === 0 ? {} : { backupStepPages: 8 });
      const after = Date.now();
      const [ca, cb] = result.databases;
      const maxA = query<{ m: number }>(ca?.file ?? '', 'SELECT max(n) AS m FROM counter').m;
      const maxB = query<{ m: number }>(cb?.file ?? '', 'SELECT max(n) AS m FROM counter').m;
      // A commits n before B does: one instant shows B == A or B one behind. B ahead of A
      // (B copied later than A) or B two behind would be a torn capture.
      expect([maxB, maxB + 1]).toContain(maxA);
      expect(maxA).toBeGreaterThanOrEqual(lastA);
      // the instant lies within the call, and the writers it held are accounted for
      expect(Date.parse(result.capturedAt)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(result.capturedAt)).toBeLessThanOrEqual(after);
      expect(result.writersBlockedMs).toBeGreaterThan(0);
      lastA = maxA;
      rmSync(ca?.file ?? '');
      rmSync(cb?.file ?? '');
    }
    expect(lastA).toBeGreaterThan(startN);
    // The writer goes on after the captures: it was never left blocked.
    await writer.waitFor((l) => Number(l.split(' ')[1]) > lastA + 100);
    expect(await writer.stop()).toBe(0);
    expect(openUnder(root)).toEqual(new Map());
  });

  it('refuses a damaged source with DB_INTEGRITY_ERROR naming it and keeps no copy', async () => {
    const rel = 'projects/p2/project.db';
    createDatabase(abs(rel), 2000, 'wal');
    createDatabase(abs('core/core.db'), 10, 'wal');
    const { page_size: pageSize, page_count: pageCount } = query<{ page_size: number; page_count: number }>(
      abs(rel),
      'SELECT page_size, page_count FROM pragma_page_size, pragma_page_count',
    );
    expect(pageCount).toBeGreaterThan(20);
    // Garble the cell pointer array of a b-tree page in the middle of the file.
    const fd = openSync(abs(rel), 'r+');
    writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, Math.floor(pageCount / 2) * pageSize + 8);
    closeSync(fd);

    const err = await rejection(capture(['core/core.db', rel]));
    expect(err).toBeInstanceOf(StopError);
    expect(err.code).toBe('DB_INTEGRITY_ERROR');
    expect(err.path).toBe(rel);
    expect(err.message).toContain(rel);
    expect(err.hint).toMatch(/damaged/);
    expect(readdirSync(staging)).toEqual([]);
    expect(openUnder(root)).toEqual(new Map());
  });

  it('refuses a file that is not a database with DB_INTEGRITY_ERROR', async () => {
    const rel = 'projects/p3/project.db';
    mkdirSync(join(root, 'projects', 'p3'), { recursive: true });
    writeFileSync(abs(rel), Buffer.alloc(4096, 0x42));
    const err = await rejection(capture([rel]));
    expect(err.code).toBe('DB_INTEGRITY_ERROR');
    expect(err.path).toBe(rel);
    expect(openUnder(root)).toEqual(new Map());
  });

  it('sets an optional damaged database aside (reported, no copy kept) and captures the others', async () => {
    createDatabase(abs('core/core.db'), 10, 'wal');
    const damaged = 'projects/p1/files/upload.db';
    const notDb = 'projects/p1/files/fake.db';
    createDamagedDatabase(abs(damaged));
    writeFileSync(abs(notDb), Buffer.alloc(4096, 0x42));
    const told: string[] = [];
    const r = await capture(['core/core.db', damaged, notDb], {
      optional: [damaged, notDb],
      onDatabase: (d) => {
        if (d.damaged !== undefined) told.push(d.path);
      },
    });
    expect(r.databases.map((d) => d.path)).toEqual(['core/core.db']);
    expect(r.damaged.map((d) => d.path).sort()).toEqual([notDb, damaged].sort());
    expect(told.sort()).toEqual([notDb, damaged].sort());
    expect(readdirSync(staging)).toHaveLength(1);
    expect(openUnder(root)).toEqual(new Map());
  });

  it("leaves out an optional database deleted since the scan saw it, and fails for one of FOLE's", async () => {
    createDatabase(abs('core/core.db'), 10, 'wal');
    const gone = 'projects/p1/files/gone.db';
    const told: string[] = [];
    const r = await capture(['core/core.db', gone], {
      optional: [gone],
      onDatabase: (d) => {
        if (d.vanished === true) told.push(d.path);
      },
    });
    expect(r.databases.map((d) => d.path)).toEqual(['core/core.db']);
    expect(r.vanished).toEqual([{ path: gone }]);
    expect(told).toEqual([gone]);
    const err = await rejection(capture(['core/core.db', 'projects/p9/project.db']));
    expect(err.code).toBe('NOT_FOUND');
    expect(openUnder(root)).toEqual(new Map());
  });

  it('never opens a database through a symlink: UNSAFE_PATH, and what it points to stays untouched', async () => {
    const outside = join(root, '..', 'outside.db');
    createDatabase(outside, 10, 'wal');
    const before = sha(outside);
    mkdirSync(abs('projects/p1'), { recursive: true });
    symlinkSync(outside, abs('projects/p1/project.db'));
    const err = await rejection(capture(['projects/p1/project.db']));
    expect(err.code).toBe('UNSAFE_PATH');
    expect(err.path).toBe('projects/p1/project.db');
    expect(sha(outside)).toBe(before);
    expect(sideFiles(outside)).toEqual([]);
  });

  it('says NOT_FOUND for a database that has gone', async () => {
    const err = await rejection(capture(['projects/gone/project.db']));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.path).toBe('projects/gone/project.db');
  });

  it('fails with DB_LOCKED naming the database a writer holds too long, and closes everything', async () => {
    createDatabase(abs('core/core.db'), 10, 'wal');
    createDatabase(abs('projects/p/project.db'), 10, 'wal');
    let holder: ChildHandle | undefined = await startLockHolder(abs('projects/p/project.db'));
    cleanups.push(() => holder?.stop());

    const err = await rejection(capture(['projects/p/project.db', 'core/core.db'], { busyTimeoutMs: 300 }));
    expect(err.code).toBe('DB_LOCKED');
    expect(err.path).toBe('projects/p/project.db');
    expect(err.message).toBe('capture projects/p/project.db: database locked by a writer for longer than 0.3s');
    expect(err.hint).toBeDefined();
    expect(openUnder(root)).toEqual(new Map());
    expect(readdirSync(staging)).toEqual([]);

    expect(await holder.stop()).toBe(0);
    holder = undefined;
    const result = await capture(['projects/p/project.db', 'core/core.db'], { busyTimeoutMs: 300 });
    expect(result.databases).toHaveLength(2);
  });

  it('sets aside every optional database writers hold, within one busy timeout, and captures the rest', async () => {
    createDatabase(abs('core/core.db'), 10, 'wal');
    const uploads = ['projects/p/files/a.sqlite', 'projects/p/files/b.sqlite', 'projects/p/files/c.sqlite'];
    for (const u of uploads) createDatabase(abs(u), 10, 'delete');
    for (const u of uploads) {
      const holder = await startLockHolder(abs(u));
      cleanups.push(() => holder.stop());
    }
    const started = performance.now();
    const result = await capture(['core/core.db', ...uploads], { busyTimeoutMs: 1500, optional: uploads });
    const took = performance.now() - started;
    expect(result.databases.map((d) => d.path)).toEqual(['core/core.db']);
    expect(result.locked.map((d) => d.path)).toEqual(uploads);
    expect(result.locked[0]?.reason).toContain('locked by a writer');
    // one budget for all of them, not one each (a deadlocked or serial wait would take 3 × 1.5 s)
    expect(took).toBeLessThan(2 * 1500);
    expect(openUnder(root)).toEqual(new Map());
  });

  it('gives the locks back and retries while a writer holds one, then captures when it lets go', async () => {
    createDatabase(abs('core/core.db'), 10, 'wal');
    createDatabase(abs('projects/p/project.db'), 10, 'delete');
    const holder = await startLockHolder(abs('projects/p/project.db'));
    cleanups.push(() => holder.stop());
    let stopped: Promise<number | null> | undefined;
    let attempts = 0;
    const result = await capture(['core/core.db', 'projects/p/project.db'], {
      busyTimeoutMs: 60_000,
      onProgress: (e) => {
        if (e.phase !== 'quiesce' || e.done !== 0) return;
        // Every attempt starts with done: 0; the second one means the first gave up.
        if (++attempts === 2) stopped = holder.stop();
      },
    });
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(await stopped).toBe(0);
    expect(holder.lines).toContain('released');
    expect(result.databases.map((d) => d.journalMode)).toEqual(['wal', 'delete']);
    expect(openUnder(root)).toEqual(new Map());
  });

  it('applies the transform to the copy only and measures the result', async () => {
    const rel = 'core/core.db';
    createDatabase(abs(rel), 500, 'wal');
    const src = new Database(abs(rel));
    src.pragma('user_version = 7');
    src.close();
    const seen: string[] = [];
    const result = await capture([rel], {
      transform: (path, copy) => {
        seen.push(path);
        copy.prepare('DELETE FROM counter WHERE n = 1').run();
      },
    });
    expect(seen).toEqual([rel]);
    const [db] = result.databases;
    if (db === undefined) throw new Error('no database captured');
    expect(sideFiles(db.file)).toEqual([]);
    const copyHash = sha(db.file);
    expect(query<{ c: number }>(db.file, 'SELECT count(*) AS c FROM counter WHERE n = 1').c).toBe(0);
    expect(query<{ c: number }>(db.file, 'SELECT count(*) AS c FROM counter').c).toBe(499);
    expect(query<{ c: number }>(abs(rel), 'SELECT count(*) AS c FROM counter WHERE n = 1').c).toBe(1);
    expect(db.userVersion).toBe(7);
    expect(db.integrity).toBe('ok');
    expect(db.size).toBe(statSync(db.file).size);
    expect(sha(db.file)).toBe(copyHash);
    expect(db.size).toBe(db.pageSize * db.pageCount);
    // The copy keeps the source's WAL header flag, so a restore writes back a WAL database.
    expect(query<{ journal_mode: string }>(db.file, 'PRAGMA journal_mode').journal_mode).toBe('wal');
    expect(new Date(result.capturedAt).toISOString()).toBe(result.capturedAt);
  });

  it('removes its copies and closes every connection when aborted mid-way', async () => {
    const rels = ['a/one.db', 'b/two.db', 'c/three.db'];
    for (const rel of rels) createDatabase(abs(rel), 200, 'wal');
    const ac = new AbortController();
    const phases: string[] = [];
    const err = await rejection(
      capture(rels, {
        signal: ac.signal,
        onProgress: (e) => {
          phases.push(`${e.phase}:${e.done}/${e.total}`);
          if (e.phase === 'copy' && e.done === 2) ac.abort();
        },
      }),
    );
    expect(err.code).toBe('ABORTED');
    // each copy is checked as soon as it is made: copy 1, its check, copy 2, then the abort
    expect(phases).toEqual(['quiesce:0/3', 'quiesce:3/3', 'copy:1/3', 'check:1/3', 'copy:2/3']);
    expect(readdirSync(staging)).toEqual([]);
    expect(openUnder(root)).toEqual(new Map());
    for (const rel of rels) expect(sideFiles(abs(rel))).toEqual([]);
  });

  it(
    'hands out each database as soon as it is settled, ' + 'before the capture ends, as the result will list it',
    async () => {
      const rels = ['a/one.db', 'b/two.db', 'c/three.db'];
      for (const rel of rels) createDatabase(abs(rel), 50, 'wal');
      const seen: { path: string; captured?: string; unchanged?: string; phasesSoFar: number }[] = [];
      const phases: string[] = [];
      const result = await capture(rels, {
        unchanged: (rel) => rel === 'b/two.db',
        onProgress: (e) => phases.push(e.phase),
        onDatabase: (d) =>
          seen.push({ path: d.path, captured: d.captured?.file, unchanged: d.unchanged, phasesSoFar: phases.length }),
      });
      expect(seen.map((d) => d.path)).toEqual(rels);
      // the first one is out before the last one is even copied
      expect(seen[0]?.phasesSoFar).toBeLessThan(phases.length - 2);
      expect(seen[1]?.unchanged).toBe(result.unchanged[0]?.fingerprint);
      expect(seen.filter((d) => d.captured !== undefined).map((d) => d.captured)).toEqual(
        result.databases.map((d) => d.file),
      );
    },
  );
});

/** Descriptors this process holds on `file` itself (a connection holds one each). */
function openOn(file: string): number {
  return [...openUnder(root).values()].filter((target) => target === file).length;
}

/**
 * Move a database's file times into the past and wait out the change time this moves, so that its fingerprint can
 * be trusted (a time within 20 ms of the moment is not).
 */
async function settle(file: string): Promise<void> {
  const past = Date.now() / 1000 - 60;
  for (const f of [file, `${file}-wal`]) if (existsSync(f)) utimesSync(f, past, past);
  await new Promise((resolve) => setTimeout(resolve, 50));
}

/**
 * Capture `rel` as an incremental whose parent holds it with fingerprint `parent`; `atQuiesce` runs when the first
 * attempt at the instant begins. Returns the result and how many connections held the database file then.
 */
async function captureAgainst(rel: string, parent: string, atQuiesce: () => void = () => undefined) {
  const held: number[] = [];
  const result = await capture([rel], {
    unchanged: (_rel, fp) => fp === parent,
    onProgress: (e) => {
      if (e.phase !== 'quiesce' || e.done !== 0 || held.length > 0) return;
      held.push(openOn(abs(rel)));
      atQuiesce();
    },
  });
  return { result, held };
}

describe("an incremental's read connections", () => {
  it("opens none ahead for a database that looks unchanged, and leaves a crashed FOLE's -wal as found", async () => {
    const rel = 'core/core.db';
    const found = crashedFole(rel);
    await settle(abs(rel));
    const parent = fingerprintOf(abs(rel));
    expect(parent).not.toBe('');
    const { result, held } = await captureAgainst(rel, parent);
    // the write connection only: no reader was opened for a database kept as it was
    expect(held).toEqual([1]);
    expect(result.unchanged).toEqual([{ path: rel, fingerprint: parent }]);
    expect(result.databases).toEqual([]);
    // closing the write connection last would have checkpointed the -wal into the file and removed it
    expectAsFound(rel, found);
  });

  it('copies from the instant a database changed after its opening, its reader opened in the window', async () => {
    const rel = 'modules/m/module.db';
    createDatabase(abs(rel), 100, 'wal');
    await settle(abs(rel));
    const parent = fingerprintOf(abs(rel));
    expect(parent).not.toBe('');
    const { result, held } = await captureAgainst(rel, parent, () => {
      // a writer commits after the fingerprint taken at opening, before the locks are taken
      const w = new Database(abs(rel));
      w.prepare('INSERT INTO counter (n, payload) VALUES (?, ?)').run(101, 'late');
      w.close();
    });
    expect(held).toEqual([1]);
    expect(result.unchanged).toEqual([]);
    expect(result.databases.map((d) => d.path)).toEqual([rel]);
    expect(query<{ c: number }>(result.databases[0]?.file ?? '', 'SELECT count(*) AS c FROM counter').c).toBe(101);
    expect(openUnder(root)).toEqual(new Map());
  });
});

describe('reading ahead', () => {
  it("asks for each database's -wal in the order they are opened, then the main file of those it copies", async () => {
    const kept = 'core/core.db';
    crashedFole(kept);
    await settle(abs(kept));
    const parent = fingerprintOf(abs(kept));
    const changed = 'projects/p/project.db';
    createDatabase(abs(changed), 50, 'wal');
    const rollback = 'modules/m/module.db';
    createDatabase(abs(rollback), 10, 'delete');
    const asked: string[] = [];
    const result = await capture([changed, kept, rollback], {
      unchanged: (rel, fp) => rel === kept && fp === parent,
      readFileAheadWith: (path) => asked.push(path),
    });
    expect(result.unchanged.map((u) => u.path)).toEqual([kept]);
    expect(result.databases.map((d) => d.path).sort()).toEqual([rollback, changed].sort());
    // the kept database's main file is not read: nothing copies it; the others have no -wal (closed cleanly)
    expect(asked).toEqual([`${abs(kept)}-wal`, abs(rollback), abs(changed)]);
  });

  it('asks only for regular files of at most 64 MiB', () => {
    mkdirSync(abs('f'));
    const small = abs('f/small');
    writeFileSync(small, 'x');
    const limit = abs('f/limit');
    const over = abs('f/over');
    // sparse: their size is what counts
    for (const [file, size] of [
      [limit, 64 << 20],
      [over, (64 << 20) + 1],
    ] as const) {
      writeFileSync(file, '');
      truncateSync(file, size);
    }
    symlinkSync('small', abs('f/link'));
    const asked: string[] = [];
    const ahead = fileReadAhead((path) => asked.push(path));
    for (const name of ['small', 'limit', 'over', 'link', 'missing', '.']) ahead?.(abs(`f/${name}`));
    expect(asked).toEqual([small, limit]);
    expect(fileReadAhead(undefined)).toBeUndefined();
  });
});

describe('copies in memory', () => {
  /** The directory each database's copy was made in, as onCopied tells it. */
  async function copyDirs(opts: Partial<CaptureOptions>): Promise<Record<string, string>> {
    const dirs: Record<string, string> = {};
    const r = await captureDatabases({
      storageRoot: root,
      databases: ['a/small.db', 'b/large.db', 'c/small2.db'],
      stagingDir: staging,
      onCopied: (c) => {
        dirs[c.path] = c.file.slice(0, c.file.lastIndexOf('/'));
      },
      ...opts,
    });
    for (const d of r.databases)
      expect(query<{ n: number }>(d.file, 'SELECT count(*) AS n FROM counter').n).toBe(
        { 'a/small.db': 10, 'b/large.db': 4000, 'c/small2.db': 10 }[d.path],
      );
    return dirs;
  }

  beforeEach(() => {
    createDatabase(abs('a/small.db'), 10);
    createDatabase(abs('b/large.db'), 4000);
    createDatabase(abs('c/small2.db'), 10);
  });

  it('puts a copy in memory when it fits beside the copies still there, else on disk', async () => {
    const memory = mkdtempSync(join(tmpdir(), 'fole-memory-'));
    cleanups.push(() => rmSync(memory, { recursive: true, force: true }));
    const small = statSync(abs('a/small.db')).size;
    expect(statSync(abs('b/large.db')).size).toBeGreaterThan(4 * small);
    // room for one small copy: the second small one finds the first still there
    const dirs = await copyDirs({ memoryStaging: { dir: memory, budgetBytes: small + small / 2 } });
    expect(dirs).toEqual({ 'a/small.db': memory, 'b/large.db': staging, 'c/small2.db': staging });
  });

  it('puts every copy on disk without a memory staging, and every one in memory when all fit', async () => {
    expect(Object.values(await copyDirs({}))).toEqual([staging, staging, staging]);
    const memory = mkdtempSync(join(tmpdir(), 'fole-memory-'));
    cleanups.push(() => rmSync(memory, { recursive: true, force: true }));
    const dirs = await copyDirs({ memoryStaging: { dir: memory, budgetBytes: 64 * 1024 * 1024 } });
    expect(Object.values(dirs)).toEqual([memory, memory, memory]);
  });

  it('puts every copy on disk when the memory staging is gone (removed under it)', async () => {
    const gone = join(tmpdir(), `fole-memory-gone-${process.pid}`);
    const dirs = await copyDirs({ memoryStaging: { dir: gone, budgetBytes: 64 * 1024 * 1024 } });
    expect(Object.values(dirs)).toEqual([staging, staging, staging]);
  });

  const root0 = process.getuid?.() === 0;
  it.runIf(canRun(root0, 'root, to mount a small tmpfs'))(
    'copies again on disk when the memory fills up under it',
    async () => {
      const memory = mkdtempSync(join(tmpdir(), 'fole-memory-'));
      // 64 KiB of tmpfs, while the budget claims much more: another program filled it meanwhile
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', memory]);
      cleanups.push(() => {
        execFileSync('umount', [memory]);
        rmSync(memory, { recursive: true, force: true });
      });
      expect(statSync(abs('b/large.db')).size).toBeGreaterThan(64 * 1024);
      const dirs = await copyDirs({ memoryStaging: { dir: memory, budgetBytes: 64 * 1024 * 1024 } });
      expect(dirs['b/large.db']).toBe(staging);
      // nothing of the failed copy is left in memory
      expect(readdirSync(memory).filter((n) => n.includes('large'))).toEqual([]);
    },
  );
});
