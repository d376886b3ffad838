import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalBackend } from '../backend/local.js';
import { MemoryBackend } from '../backend/memory.js';
import { processAlive } from '../host/process-alive.js';
import { selfIdentity } from '../host/process-identity.js';
import { makeRepo, TEST_PASSWORD } from '../../test/repo-helpers.js';
import { AAD } from './format.js';
import fc from 'fast-check';
import { fuzz, fuzzAsync } from '../../test/fuzz.js';
import {
  listLocks,
  parseLockRecord,
  RepositoryLock,
  staleReason,
  unlockRepository,
  type LockInfo,
  type LockRecord,
} from './lock.js';
import type { Repository } from './repository.js';
import { canRun } from '../../test/needs.js';
import { rejection } from '../../test/rejection.js';

const LEASE = 60_000;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A pid that no process has right now: a child that already exited. */
function deadPid(): number {
  const r = spawnSync('true');
  const pid = r.pid;
  if (pid === undefined || processAlive(pid)) throw new Error('could not find a free pid');
  return pid;
}

/** A lock record as a holder on this host would write it, refreshed `ago` ms before `now`. */
function record(now: number, ago: number, over: Partial<LockRecord> = {}): LockRecord {
  const t = new Date(now - ago).toISOString();
  return {
    exclusive: false,
    operation: 'backup',
    host: hostname(),
    pid: deadPid(),
    username: 'someone',
    createdAt: t,
    refreshedAt: t,
    leaseMs: LEASE,
    ...selfIdentity(),
    ...over,
  };
}

const linuxProc = canRun(selfIdentity().pidNs !== undefined, 'Linux /proc PID-namespace ids');

describe('staleReason', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it.runIf(linuxProc)(
    'calls the lock of a gone process stale once its lease ran out, when it is provably the same boot and PID ' +
      'namespace',
    () => {
      expect(staleReason(record(now, 2 * LEASE), now)).toMatch(
        /^process \d+ on this host .* is gone; lease expired at /,
      );
      // still within its lease: it may be a process that has just not refreshed yet
      expect(staleReason(record(now, LEASE / 2), now)).toBe(false);
    },
  );

  it.runIf(linuxProc)('calls a lock stale when its pid now belongs to a process that started at another time', () => {
    const reused = record(now, 2 * LEASE, { pid: process.pid, startTime: '1' });
    expect(staleReason(reused, now)).toMatch(/now belongs to another process/);
    // the same pid and start time is this very process: alive
    expect(staleReason(record(now, 2 * LEASE, { pid: process.pid }), now)).toBe(false);
  });

  it(
    'never calls a lock stale for its pid alone when the holder may be in another PID namespace, boot or an ' +
      'older version',
    () => {
      const others: Partial<LockRecord>[] = [
        { pidNs: 'pid:[1]' }, // another container sharing this hostname
        { bootId: '00000000-0000-0000-0000-000000000000' }, // another machine of the same name, or before a reboot
        { bootId: undefined, pidNs: undefined, startTime: undefined }, // a record of an older version
      ];
      for (const over of others) {
        const lock = record(now, 2 * LEASE, over);
        expect(staleReason(lock, now), JSON.stringify(over)).toBe(false);
        // a lease far past its expiry is stale whoever holds it
        expect(staleReason({ ...lock, refreshedAt: new Date(now - 7 * LEASE).toISOString() }, now)).toMatch(
          /^lease expired at /,
        );
      }
    },
  );
});

describe('RepositoryLock', () => {
  it('refuses an exclusive lock while a lock whose pid is dead here may belong to another PID namespace', async () => {
    const repo = await makeRepo();
    const now = Date.now();
    await repo.saveJson('locks', record(now, 2 * LEASE, { pidNs: 'pid:[1]' }), AAD.lock, 'a'.repeat(32));
    const err = await rejection(RepositoryLock.acquire(repo, { exclusive: true, operation: 'prune' }));
    expect(err.code).toBe('REPO_LOCKED');
    // and unlock keeps it
    expect((await unlockRepository(repo)).kept.map((l) => l.name)).toEqual(['a'.repeat(32)]);
  });

  it('tells onStale about each stale lock once', async () => {
    const repo = await makeRepo();
    const now = Date.now();
    const old = { bootId: undefined, pidNs: undefined, startTime: undefined };
    await repo.saveJson('locks', record(now, 7 * LEASE, old), AAD.lock, 'b'.repeat(32));
    await repo.saveJson('locks', record(now, 8 * LEASE, old), AAD.lock, 'c'.repeat(32));
    const told: string[] = [];
    const lock = await RepositoryLock.acquire(repo, {
      exclusive: true,
      operation: 'prune',
      onStale: (l) => told.push(l.name),
    });
    await lock.release();
    expect(told.sort()).toEqual(['b'.repeat(32), 'c'.repeat(32)]);
  });

  it(
    'is lost when its lease ran out while the process was suspended, ' + 'and says so before anything is committed',
    async () => {
      const repo = await makeRepo();
      const lock = await RepositoryLock.acquire(repo, { exclusive: false, operation: 'backup', leaseMs: 300 });
      await lock.verify();
      // the event loop stands still as in a suspended process: no refresh can run
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 450);
      const err = await rejection(lock.verify());
      expect(err.code).toBe('LOCK_LOST');
      expect(err.message).toMatch(/^backup: repository lock lost: its lease ran out at .* before it was refreshed/);
      // a lost lock is not written back by a later refresh
      await lock.refresh();
      expect(lock.lost).toBe(true);
      await lock.release();
      expect(await listLocks(repo)).toEqual([]);
    },
  );

  it('is lost when another process removed its lock file, and never writes it back', async () => {
    const repo = await makeRepo();
    const lock = await RepositoryLock.acquire(repo, { exclusive: false, operation: 'backup', leaseMs: 60_000 });
    await unlockRepository(repo, { force: true });
    await lock.refresh();
    expect(await listLocks(repo)).toEqual([]);
    expect((await rejection(lock.verify())).message).toMatch(/was removed/);
    await lock.release();
  });

  it('keeps holding a lock it refreshes in time', async () => {
    const repo = await makeRepo();
    const leaseMs = 300;
    const lock = await RepositoryLock.acquire(repo, { exclusive: false, operation: 'backup', leaseMs });
    // wait until its record says it was refreshed more than two leases after it was taken: only
    // refreshes can have kept it that long, and no one may call it stale meanwhile
    await vi.waitFor(
      async () => {
        const [held] = await listLocks(repo);
        expect(held?.stale).toBe(false);
        expect(Date.parse(held?.refreshedAt ?? '') - Date.parse(held?.createdAt ?? '')).toBeGreaterThan(2 * leaseMs);
      },
      { timeout: 10_000, interval: 25 },
    );
    await lock.verify();
    expect(lock.lost).toBe(false);
    expect(await listLocks(repo)).toHaveLength(1);
    await lock.release();
  });
});

describe('an unreadable lock', () => {
  async function withGarbageLock(writtenAt: number): Promise<{ repo: Repository; name: string }> {
    const backend = new MemoryBackend();
    const repo = await makeRepo(backend);
    const name = 'd'.repeat(32);
    await backend.save({ type: 'locks', name }, Buffer.from('not a sealed lock'));
    backend.setModified({ type: 'locks', name }, writtenAt);
    return { repo, name };
  }

  it('is stale once its file is old, and unlock removes it', async () => {
    const { repo, name } = await withGarbageLock(Date.parse('2020-03-01T00:00:00Z'));
    const told: LockInfo[] = [];
    const lock = await RepositoryLock.acquire(repo, {
      exclusive: true,
      operation: 'prune',
      onStale: (l) => told.push(l),
    });
    await lock.release();
    expect(told.map((l) => [l.name, l.stale])).toEqual([
      [name, 'unreadable lock file, last written at 2020-03-01T00:00:00.000Z'],
    ]);
    expect((await unlockRepository(repo)).removed.map((l) => l.name)).toEqual([name]);
    expect(await listLocks(repo)).toEqual([]);
  });

  it('blocks while its file is fresh, and unlock keeps it', async () => {
    const { repo, name } = await withGarbageLock(Date.now() - 60_000);
    const err = await rejection(RepositoryLock.acquire(repo, { exclusive: true, operation: 'prune' }));
    expect(err.code).toBe('REPO_LOCKED');
    expect(err.message).toMatch(/unreadable lock/);
    expect((await unlockRepository(repo)).kept.map((l) => l.name)).toEqual([name]);
  });
});

describe('lock records read from the repository (fuzzed)', () => {
  it('any JSON value is a lock record or REPO_CORRUPT, and any record can be judged', () => {
    const now = Date.now();
    const nearRecord = fc.record(
      {
        exclusive: fc.oneof(fc.boolean(), fc.anything()),
        operation: fc.oneof(fc.string(), fc.anything()),
        host: fc.oneof(fc.constant(hostname()), fc.string()),
        pid: fc.oneof(fc.integer(), fc.double(), fc.anything()),
        username: fc.string(),
        createdAt: fc.string(),
        refreshedAt: fc.oneof(
          fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
          fc.string(),
        ),
        leaseMs: fc.oneof(fc.integer(), fc.double()),
        bootId: fc.oneof(fc.constant(selfIdentity().bootId), fc.string(), fc.anything()),
        pidNs: fc.oneof(fc.constant(selfIdentity().pidNs), fc.string()),
        startTime: fc.oneof(fc.string(), fc.anything()),
      },
      { requiredKeys: [] },
    );
    fuzz(
      fc.property(fc.oneof(fc.jsonValue(), nearRecord), (v) => {
        let rec: LockRecord;
        try {
          rec = parseLockRecord(v, 'x');
        } catch (err) {
          expect(err).toMatchObject({ code: 'REPO_CORRUPT' });
          return;
        }
        const r = staleReason(rec, now);
        expect(r === false || typeof r === 'string').toBe(true);
      }),
      300,
    );
  });

  it('any bytes in a lock file make an unreadable lock, never a crash', async () => {
    const backend = new MemoryBackend();
    const repo = await makeRepo(backend);
    await fuzzAsync(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        await backend.save({ type: 'locks', name: 'e'.repeat(32) }, bytes);
        const [l] = await listLocks(repo);
        expect(l).toMatchObject({ name: 'e'.repeat(32), unreadable: true, stale: false });
      }),
      100,
    );
  });
});

// A holder in a PID namespace of its own (a container sharing this hostname): its pid
// names no process out here, or another one.
const unshareOk = canRun(
  process.getuid?.() === 0 &&
    existsSync('/usr/bin/unshare') &&
    spawnSync('unshare', ['-p', '-f', '--mount-proc', 'true']).status === 0,
  'root and PID namespaces (unshare -p)',
);

describe.runIf(unshareOk)('a holder in another PID namespace (unshare -p -f --mount-proc)', () => {
  it('holds its lock though its pid does not exist out here', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fole-lock-ns-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const repoDir = join(dir, 'repo');
    await makeRepo(new LocalBackend(repoDir));
    // a pid that is free out here; the child burns pids inside until its own lands past it
    const free = (() => {
      const used = new Set(
        readdirSync('/proc')
          .filter((n) => /^\d+$/.test(n))
          .map(Number),
      );
      for (let p = 200; ; p++) if (!used.has(p) && !used.has(p + 1) && !used.has(p + 2) && !used.has(p + 3)) return p;
    })();
    const lockUrl = new URL('./lock.ts', import.meta.url).href;
    const repoUrl = new URL('./repository.ts', import.meta.url).href;
    const localUrl = new URL('../backend/local.ts', import.meta.url).href;
    const backend = `new LocalBackend(${JSON.stringify(repoDir)})`;
    const script = `import { RepositoryLock } from ${JSON.stringify(lockUrl)};
      import { Repository } from ${JSON.stringify(repoUrl)};
      import { LocalBackend } from ${JSON.stringify(localUrl)};
      const repo = await Repository.open(${backend}, ${JSON.stringify(TEST_PASSWORD)});
      await RepositoryLock.acquire(repo, { exclusive: false, operation: 'backup', leaseMs: 1000 });
      process.stdout.write('locked ' + process.pid + '\\n');
      setInterval(() => {}, 1000);`;
    const waitForPid = `while [ "$(sh -c 'echo $$')" -lt ${free - 1} ]; do :; done`;
    const shell = `${waitForPid}; "$0" --import tsx --input-type=module -e "$1"`;
    const child = spawn(
      'unshare',
      ['-p', '-f', '--mount-proc', '--kill-child', 'sh', '-c', shell, process.execPath, script],
      {
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = new Promise((r) => child.on('exit', r));
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    const innerPid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /locked (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before locking`)));
    });
    // the case that matters: its pid names nothing out here
    expect(processAlive(innerPid), `pid ${innerPid} (aimed past ${free})`).toBe(false);
    const repo = await (await import('./repository.js')).Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);
    const [held] = await listLocks(repo);
    expect(held).toMatchObject({ pid: innerPid, host: hostname(), stale: false });
    expect(held?.pidNs).not.toBe(selfIdentity().pidNs);
    const err = await rejection(RepositoryLock.acquire(repo, { exclusive: true, operation: 'prune' }));
    expect(err.code).toBe('REPO_LOCKED');
    expect((await unlockRepository(repo)).kept).toHaveLength(1);
  }, 60_000);
});
