import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FoleBackupError, StopError } from '../errors.js';
import {
  acquireStorageLock,
  DAL_LOCKS_SCHEMA,
  GLOBAL_LOCK_ID,
  readStorageLock,
  type HeldStorageLock,
  type LockRow,
} from './global-lock.js';
import { removeLockRow } from '../sqlite/lock-table.js';
import { rejection } from '../../test/rejection.js';

let root: string;
const held: HeldStorageLock[] = [];
const cleanups: (() => unknown)[] = [];

function coreDb(r: string = root): string {
  return join(r, 'core', 'core.db');
}

/** A STORAGE_ROOT with a core.db in WAL mode, as FOLE leaves it. */
function makeStorageRoot(): string {
  const base = mkdtempSync(join(tmpdir(), 'fole-lock-'));
  cleanups.push(() => rmSync(base, { recursive: true, force: true }));
  mkdirSync(join(base, 'core'));
  const db = new Database(coreDb(base));
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
  db.close();
  return base;
}

beforeEach(() => {
  root = makeStorageRoot();
});

afterEach(async () => {
  for (const l of held.splice(0)) await l.release();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function acquire(
  opts: Omit<Parameters<typeof acquireStorageLock>[0], 'storageRoot'> = {},
): Promise<HeldStorageLock> {
  const lock = await acquireStorageLock({ storageRoot: root, ...opts });
  held.push(lock);
  return lock;
}

/** Poll until `cond` holds (the test's own timeout is the limit). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('Global Storage Lock', () => {
  it('is held while acquired and gone after release', async () => {
    expect(readStorageLock(root)).toBeUndefined();
    const lock = await acquire({ owner: 'backup-1', now: () => 1_000_000, leaseMs: 30_000 });
    expect(lock.lockId).toBe(GLOBAL_LOCK_ID);
    expect(lock.owner).toBe('backup-1');
    expect(lock.lost).toBe(false);
    expect(readStorageLock(root)).toEqual<LockRow>({
      lockId: GLOBAL_LOCK_ID,
      owner: 'backup-1',
      host: hostname(),
      pid: process.pid,
      acquiredAt: 1_000_000,
      heartbeatAt: 1_000_000,
      leaseExpiresAt: 1_030_000,
    });
    await lock.release();
    expect(readStorageLock(root)).toBeUndefined();
    await lock.release();
    // Free again: the next holder gets it at once.
    await acquire();
  });

  it('names the default owner after user, host and pid', async () => {
    const lock = await acquire();
    expect(lock.owner).toMatch(new RegExp(`^fole-backup:.+@${hostname()}:${process.pid}$`));
  });

  it('refuses a second holder with STORAGE_LOCKED naming the owner', async () => {
    await acquire({ owner: 'fole-server', now: () => Date.UTC(2030, 0, 1) });
    const err = await rejection(acquireStorageLock({ storageRoot: root, owner: 'backup-2' }));
    expect(err.code).toBe('STORAGE_LOCKED');
    expect(err.message).toBe(
      'storage lock storage:global is held by fole-server (lease until 2030-01-01T00:00:30.000Z)',
    );
    expect(err.hint).toContain('2030-01-01T00:00:30.000Z');
    expect(readStorageLock(root)?.owner).toBe('fole-server');
  });

  it('waits up to waitMs and gets the lock when the holder releases it', async () => {
    const first = await acquire({ owner: 'first' });
    const second = acquireStorageLock({ storageRoot: root, owner: 'second', waitMs: 60_000 });
    await first.release();
    const lock = await second;
    held.push(lock);
    expect(readStorageLock(root)?.owner).toBe('second');
  });

  it('keeps different lock ids apart', async () => {
    await acquire({ owner: 'global' });
    const other = await acquire({ owner: 'project', lockId: 'project:p1' });
    expect(readStorageLock(root, 'project:p1')?.owner).toBe('project');
    await other.release();
    expect(readStorageLock(root)?.owner).toBe('global');
  });

  it('takes over the lock of a process that was killed once its lease ran out, and reports it', async () => {
    const moduleUrl = new URL('./global-lock.ts', import.meta.url).href;
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { acquireStorageLock } from ${JSON.stringify(moduleUrl)};
         await acquireStorageLock({ storageRoot: ${JSON.stringify(root)}, owner: 'doomed', leaseMs: 1_500 });
         process.stdout.write('acquired\\n');
         setInterval(() => {}, 1000);`,
      ],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((r) => child.on('exit', r));
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('acquired')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before acquiring`)));
    });
    expect(readStorageLock(root)?.pid).toBe(child.pid);
    // While it lives, it holds the lock.
    expect((await rejection(acquireStorageLock({ storageRoot: root }))).code).toBe('STORAGE_LOCKED');

    child.kill('SIGKILL');
    await exited;
    // Its pid is gone, but a pid proves nothing (see below): its lease still holds…
    expect((await rejection(acquireStorageLock({ storageRoot: root }))).code).toBe('STORAGE_LOCKED');
    // …until it runs out.
    const takeovers: [LockRow, string][] = [];
    const lock = await acquire({
      owner: 'rescuer',
      waitMs: 10_000,
      onTakeover: (stale, reason) => takeovers.push([stale, reason]),
    });
    expect(lock.owner).toBe('rescuer');
    expect(takeovers).toHaveLength(1);
    expect(takeovers[0]?.[0]).toMatchObject({ owner: 'doomed', pid: child.pid, host: hostname() });
    expect(takeovers[0]?.[1]).toMatch(/^lease expired at /);
    expect(readStorageLock(root)?.owner).toBe('rescuer');
  });

  it('never takes over a live lease because its pid names no process here (another PID namespace)', async () => {
    const gone = spawnSync('true').pid as number;
    const db = new Database(coreDb());
    db.exec(DAL_LOCKS_SCHEMA);
    const t = Date.now();
    db.prepare('INSERT INTO dal_locks VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      GLOBAL_LOCK_ID,
      'container-backup',
      hostname(),
      gone,
      t,
      t,
      t + 60_000,
    );
    db.close();
    expect((await rejection(acquireStorageLock({ storageRoot: root }))).code).toBe('STORAGE_LOCKED');
    expect(readStorageLock(root)?.owner).toBe('container-backup');
  });

  it('confirm() renews a lock still ours and throws once it was taken over', async () => {
    const a = await acquire({ owner: 'old', now: () => 1_000, leaseMs: 100, heartbeatMs: 50 });
    a.confirm();
    await acquire({ owner: 'new', now: () => 5_000, leaseMs: 100, heartbeatMs: 50 });
    expect(() => a.confirm()).toThrow('storage lock storage:global was lost: taken over by new');
    expect(a.lost).toBe(true);
  });

  it('takes over an expired lease, and the old holder learns it lost the lock', async () => {
    const lost: Error[] = [];
    // The old holder's clock stands still: it keeps renewing a lease that ends at 1_100.
    const a = await acquire({
      owner: 'old',
      now: () => 1_000,
      leaseMs: 100,
      heartbeatMs: 5,
      onLost: (e) => lost.push(e),
    });
    // Nobody can take a live lease…
    expect((await rejection(acquireStorageLock({ storageRoot: root, now: () => 1_050 }))).code).toBe('STORAGE_LOCKED');
    // …but at 5_000 it has expired.
    const takeovers: string[] = [];
    const b = await acquire({
      owner: 'new',
      now: () => 5_000,
      leaseMs: 100,
      heartbeatMs: 50,
      onTakeover: (s, r) => takeovers.push(`${s.owner}: ${r}`),
    });
    expect(takeovers).toEqual(['old: lease expired at 1970-01-01T00:00:01.100Z']);
    expect(b.lost).toBe(false);

    await until(() => a.lost);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.message).toBe('storage lock storage:global was lost: taken over by new');
    // A lost lock's release leaves the new holder's row alone.
    await a.release();
    expect(readStorageLock(root)?.owner).toBe('new');
  });

  it('extends its lease with a heartbeat', async () => {
    let clock = 10_000;
    await acquire({ owner: 'beating', now: () => clock, leaseMs: 1_000, heartbeatMs: 5 });
    expect(readStorageLock(root)).toMatchObject({ heartbeatAt: 10_000, leaseExpiresAt: 11_000 });
    clock = 50_000;
    await until(() => readStorageLock(root)?.heartbeatAt === 50_000);
    expect(readStorageLock(root)).toMatchObject({ acquiredAt: 10_000, heartbeatAt: 50_000, leaseExpiresAt: 51_000 });
    // The renewed lease holds off others whose clock is past the first lease.
    expect((await rejection(acquireStorageLock({ storageRoot: root, now: () => 50_500 }))).code).toBe('STORAGE_LOCKED');
  });

  it('removes the lock row from a staging copy of core.db', async () => {
    await acquire({ owner: 'backup' });
    const other = await acquire({ owner: 'project', lockId: 'project:p1' });
    const copyPath = join(root, 'copy.db');
    const src = new Database(coreDb());
    await src.backup(copyPath);
    src.close();
    const copy = new Database(copyPath);
    removeLockRow(copy, GLOBAL_LOCK_ID);
    const rows = copy.prepare('SELECT lock_id FROM dal_locks ORDER BY lock_id').all();
    copy.close();
    expect(rows).toEqual([{ lock_id: 'project:p1' }]);
    // The live row is untouched.
    expect(readStorageLock(root)?.owner).toBe('backup');
    await other.release();
  });

  it('leaves a database without a dal_locks table alone', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (x)');
    removeLockRow(db, GLOBAL_LOCK_ID);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([{ name: 't' }]);
    db.close();
  });

  it('creates the dal_locks table when FOLE has not yet', async () => {
    const before = new Database(coreDb());
    expect(before.prepare("SELECT 1 FROM sqlite_master WHERE name = 'dal_locks'").get()).toBeUndefined();
    before.close();
    await acquire();
    expect(readStorageLock(root)?.lockId).toBe(GLOBAL_LOCK_ID);
  });

  it(
    'never opens a core.db reached through a symlink (core/core.db or core/), and leaves what it points to ' +
      'untouched',
    async () => {
      for (const linked of ['core/core.db', 'core']) {
        const other = makeStorageRoot();
        const outside = join(other, 'core', 'core.db');
        const before = readFileSync(outside);
        if (linked === 'core') {
          rmSync(join(root, 'core'), { recursive: true });
          symlinkSync(join(other, 'core'), join(root, 'core'));
        } else {
          rmSync(coreDb(), { force: true });
          symlinkSync(outside, coreDb());
        }
        const err = await rejection(acquire());
        expect(err.code).toBe('UNSAFE_PATH');
        expect(err.message).toContain('symlink');
        expect(() => readStorageLock(root)).toThrow(expect.objectContaining({ code: 'UNSAFE_PATH' }));
        expect(readFileSync(outside).equals(before)).toBe(true);
        expect(existsSync(`${outside}-wal`)).toBe(false);
        root = makeStorageRoot();
      }
    },
  );

  it('says NOT_A_STORAGE_ROOT when core/core.db is missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'fole-lock-empty-'));
    cleanups.push(() => rmSync(empty, { recursive: true, force: true }));
    const err = await rejection(acquireStorageLock({ storageRoot: empty }));
    expect(err.code).toBe('NOT_A_STORAGE_ROOT');
    expect(err.message).toContain(join(empty, 'core', 'core.db'));
    expect(err.hint).toBe('a FOLE STORAGE_ROOT has core/core.db; check --storage-root');
    expect(() => readStorageLock(empty)).toThrow(FoleBackupError);
  });
});

describe('a core.db that is not a sound database', () => {
  it('is a STOP DB_INTEGRITY_ERROR with a hint, and an empty or text core.db is left exactly as it was', async () => {
    for (const content of ['', 'hello\n']) {
      writeFileSync(coreDb(), content);
      const err = await rejection(acquire());
      expect(err).toBeInstanceOf(StopError);
      expect(err).toMatchObject({
        code: 'DB_INTEGRITY_ERROR',
        path: 'core/core.db',
        hint: expect.stringContaining('core.db'),
      });
      expect(readFileSync(coreDb(), 'utf8')).toBe(content);
    }
  });

  it('is a STOP DB_INTEGRITY_ERROR when its header is sound but the schema page behind it is damaged', async () => {
    const bytes = readFileSync(coreDb());
    bytes.fill(0x5a, 100, bytes.length);
    writeFileSync(coreDb(), bytes);
    const err = await rejection(acquire());
    expect(err).toBeInstanceOf(StopError);
    expect(err).toMatchObject({ code: 'DB_INTEGRITY_ERROR', hint: expect.stringContaining('core.db') });
  });
});
