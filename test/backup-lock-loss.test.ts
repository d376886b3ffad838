/**
 * A backup that lost what its lock protected writes no snapshot. The case from
 * the field: a backup suspended (SIGSTOP, a VM pause) past its lease is judged
 * stale, a prune deletes the packs the backup re-uses, the backup resumes — and
 * must fail with LOCK_LOST instead of writing a snapshot that points at nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { backup } from '../src/backup/backup.js';
import { sleep } from '../src/concurrency/sleep.js';
import { prune } from '../src/prune/prune.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots } from '../src/snapshot/store.js';
import { acquireStorageLock, readStorageLock } from '../src/storage/global-lock.js';
import { checkRepository } from '../src/verify/check-repository.js';
import { runCli, spawnCli, waitExit } from './cli-helpers.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { TEST_PASSWORD, makeLocalRepo } from './repo-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'fole-backup-lock-loss-'));
const root = join(work, 'storage');
let repoDir: string;
let run = 0;

createDatabase(join(root, 'core', 'core.db'), 500);
mkdirSync(join(root, 'projects', 'p0', 'files'), { recursive: true });
// enough to read that a backup is still busy when it is stopped
for (let f = 0; f < 40; f++) writeFileSync(join(root, 'projects', 'p0', 'files', `f${f}.bin`), randomBytes(1_000_000));

afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeEach(() => {
  repoDir = join(work, `repo-${run++}`);
});

async function open(): Promise<Repository> {
  return Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);
}

/**
 * A repository with one backup of the tree, then that backup forgotten: its packs are unused, and every blob of the
 * next backup is in them.
 */
async function repoWithForgottenBackup(): Promise<string[]> {
  const repo = await makeLocalRepo(repoDir);
  const first = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
  await repo.backend.remove({ type: 'snapshots', name: first.backupId });
  const packs: string[] = [];
  for await (const o of repo.backend.list('data')) packs.push(o.name);
  return packs;
}

describe('a backup that lost its foundations', () => {
  it('writes no snapshot when a pack it re-uses was deleted while it ran', async () => {
    const oldPacks = await repoWithForgottenBackup();
    const repo = await open();
    const err = await backup(repo, {
      storageRoot: root,
      foleVersion: '1.0.0',
      reporter: {
        progress() {},
        warn() {},
        // what a prune that ignored the lock would do, right before the snapshot
        phase: (name) => {
          if (name === 'write index') for (const p of oldPacks) void repo.backend.remove({ type: 'data', name: p });
        },
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'LOCK_LOST',
      message: expect.stringMatching(/^backup: \d+ packs? it re-uses (was|were) deleted while it ran/),
    });
    expect(await listSnapshots(await open())).toEqual([]);
  }, 60_000);

  it('fails with LOCK_LOST after it was suspended past its lease and a prune removed what it re-uses', async () => {
    await repoWithForgottenBackup();
    const leaseMs = 1000;
    const child = spawnCli(['backup', '--repo', repoDir, '--storage-root', root, '--fole-version', '1.0.0'], {
      FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
      FOLE_BACKUP_LOCK_LEASE_MS: String(leaseMs),
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = waitExit(child);
    // the storage lock is taken after the index is loaded: from then on the backup re-uses the old packs
    while (readStorageLock(root) === undefined) {
      if (child.exitCode !== null) throw new Error(`backup ended before it could be stopped: ${stderr}`);
      await sleep(2);
    }
    child.kill('SIGSTOP');
    try {
      // far past its lease: any prune may now call the lock stale, whoever holds it
      await sleep(7 * leaseMs);
      const warned: string[] = [];
      const pruned = await prune(await open(), {
        minPackAgeMs: 0,
        reporter: { phase() {}, progress() {}, warn: (m) => warned.push(m) },
      });
      expect(warned.join('\n')).toMatch(/ignoring stale repository lock .*lease expired/);
      expect(pruned.plan.removePacks).toBeGreaterThan(0);
    } finally {
      child.kill('SIGCONT');
    }
    const { code } = await exited;
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/LOCK_LOST/);
    expect(stderr).toMatch(/repository lock lost: its lease ran out/);
    const repo = await open();
    expect(await listSnapshots(repo)).toEqual([]);
    const check = await checkRepository(repo, { readData: true });
    expect(check.ok, JSON.stringify(check)).toBe(true);
  }, 120_000);
});

describe('backup --storage-lock-wait', () => {
  it('waits for another holder of the storage lock instead of failing at once', async () => {
    await makeLocalRepo(repoDir);
    const held = await acquireStorageLock({ storageRoot: root, owner: 'another-backup' });
    const args = ['backup', '--repo', repoDir, '--storage-root', root, '--fole-version', '1.0.0'];
    try {
      const at0 = await runCli(args, { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
      expect(at0.code, at0.stderr).toBe(1);
      expect(at0.stderr).toMatch(/STORAGE_LOCKED/);
      const waiting = runCli([...args, '--storage-lock-wait', '60'], { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
      setTimeout(() => void held.release(), 3000);
      const r = await waiting;
      expect(r.code, r.stderr).toBe(0);
    } finally {
      await held.release();
    }
    const bad = await runCli([...args, '--storage-lock-wait', 'soon'], { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--storage-lock-wait must be a number of seconds/);
  }, 120_000);
});
