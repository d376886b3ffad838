/**
 * forget + prune on real backups: the space of forgotten backups is freed,
 * partly used packs are repacked, orphans from crashed backups go, and every
 * remaining backup still reads back completely. Also: prune and backup exclude
 * each other with a clear lock error.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { backup } from '../src/backup/backup.js';
import { LocalBackend } from '../src/backend/local.js';
import { prune } from '../src/prune/prune.js';
import { pruneApprovalPlan, requireApprovedPrune } from '../src/prune/approval-plan.js';
import { forget, loadRetentionPolicy, saveRetentionPolicy } from '../src/retention/forget.js';
import { RepositoryLock } from '../src/repository/lock.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots } from '../src/snapshot/store.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { expectAllReadable, FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';

let work: string;
let root: string;
let repoDir: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-prune-'));
  root = join(work, 'storage');
  repoDir = join(work, 'repo');
  createDatabase(join(root, 'core', 'core.db'), 10);
  mkdirSync(join(root, 'projects', 'p1', 'files'), { recursive: true });
});

afterEach(() => rmSync(work, { recursive: true, force: true }));

async function repoSize(repo: Repository): Promise<number> {
  let n = 0;
  for await (const o of repo.backend.list('data')) n += o.size;
  return n;
}

const fresh = async (): Promise<Repository> => Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);

describe('forget and prune', () => {
  it('frees the data only forgotten backups used, and keeps the rest readable', async () => {
    // small packs so the test has many of them
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, {
      kdf: FAST_KDF,
      packSize: 256 * 1024,
    });
    const files = join(root, 'projects', 'p1', 'files');
    const ids: string[] = [];
    for (let gen = 0; gen < 4; gen++) {
      for (let i = 0; i < 10; i++) writeFileSync(join(files, `g${gen}-${i}.bin`), randomBytes(50_000));
      if (gen > 0) for (let i = 0; i < 10; i++) unlinkSync(join(files, `g${gen - 1}-${i}.bin`));
      ids.push((await backup(repo, { storageRoot: root, foleVersion: '1.0.0' })).backupId);
    }
    const before = await repoSize(repo);
    const f = await forget(repo, { policy: { last: 1 } });
    expect(f.removed).toEqual(ids.slice(0, 3).reverse());
    // the packs are minutes old: the default safety margin leaves them all alone
    const young = await prune(await fresh());
    expect(young.plan).toMatchObject({ removePacks: 0, repackPacks: 0, freedBytes: 0 });
    expect(young.plan.youngPacks).toBe(young.plan.packs);
    expect(await repoSize(repo)).toBe(before);
    const dry = await prune(await fresh(), { dryRun: true, minPackAgeMs: 0 });
    expect(dry.plan.removePacks).toBeGreaterThan(0);
    expect(await repoSize(repo)).toBe(before);
    const r = await prune(await fresh(), { minPackAgeMs: 0 });
    expect(r.plan.freedBytes).toBeGreaterThan(1_000_000);
    const after = await repoSize(await fresh());
    expect(after).toBeLessThan(before / 2);
    const again = await fresh();
    expect((await listSnapshots(again)).map((s) => s.backupId)).toEqual([ids[3]]);
    await expectAllReadable(again);
    // pruning again finds nothing to do
    const second = await prune(await fresh(), { minPackAgeMs: 0 });
    expect(second.plan.removePacks).toBe(0);
  });

  it('repacks partly used packs and removes orphan packs left by a crash', async () => {
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, {
      kdf: FAST_KDF,
      packSize: 4 * 1024 * 1024,
    });
    const files = join(root, 'projects', 'p1', 'files');
    for (let i = 0; i < 20; i++) writeFileSync(join(files, `a${i}.bin`), randomBytes(40_000));
    const first = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    for (let i = 0; i < 10; i++) unlinkSync(join(files, `a${i}.bin`));
    await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    // an orphan pack: stored, in no index (a backup killed before writing its index)
    await repo.backend.save({ type: 'data', name: 'ab'.repeat(32) }, randomBytes(1000));
    await forget(repo, { ids: [first.backupId] });
    const r = await prune(await fresh(), { repackThreshold: 0.1, minPackAgeMs: 0 });
    expect(r.plan.orphanPacks).toBe(1);
    expect(r.plan.repackPacks).toBeGreaterThan(0);
    expect(r.newPacks).toBeGreaterThan(0);
    const again = await fresh();
    await expectAllReadable(again);
    const names: string[] = [];
    for await (const o of again.backend.list('data')) names.push(o.name);
    expect(names).not.toContain('ab'.repeat(32));
  });

  it('deletes nothing when it lost its lock before the delete step', async () => {
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
    writeFileSync(join(root, 'projects', 'p1', 'files', 'x.bin'), randomBytes(100_000));
    const first = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    await forget(repo, { ids: [first.backupId], allowRemoveAll: true });
    const before = await repoSize(repo);
    const indexBefore = (await repo.listIndexFiles()).length;
    const pruning = await fresh();
    const err = await prune(pruning, {
      minPackAgeMs: 0,
      reporter: {
        progress() {},
        warn() {},
        // another process judged this prune's lock stale and removed it (`unlock --force`)
        phase: (name) => {
          if (name === 'write index')
            for (const f of readdirSync(join(repoDir, 'locks'))) rmSync(join(repoDir, 'locks', f));
        },
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'LOCK_LOST', message: expect.stringMatching(/^prune: repository lock lost/) });
    expect(await repoSize(await fresh())).toBe(before);
    // its new index files were written, the old ones are all still there
    expect((await (await fresh()).listIndexFiles()).length).toBeGreaterThanOrEqual(indexBefore);
  });

  it('runs an approved plan as approved, and deletes nothing once the repository changed since', async () => {
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
    const files = join(root, 'projects', 'p1', 'files');
    writeFileSync(join(files, 'old.bin'), randomBytes(100_000));
    const first = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    unlinkSync(join(files, 'old.bin'));
    writeFileSync(join(files, 'new.bin'), randomBytes(100_000));
    await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    await forget(repo, { ids: [first.backupId] });
    const opts = { minPackAgeMs: 0 };
    const { plan, summary } = await pruneApprovalPlan(await fresh(), opts);
    expect(plan.remove.length).toBeGreaterThan(0);
    expect(plan.backups).toHaveLength(1);
    expect(summary[0]).toMatch(/^prune: delete \d+ of \d+ packs/);
    // a backup made after the approval: the plan under the lock is not the approved one
    writeFileSync(join(files, 'newer.bin'), randomBytes(100_000));
    await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    const before = await repoSize(repo);
    const changed = await fresh();
    await expect(prune(changed, { ...opts, onPlan: requireApprovedPrune(changed, plan, opts) })).rejects.toMatchObject({
      code: 'APPROVAL_REQUIRED',
    });
    expect(await repoSize(repo)).toBe(before);
    // planned again with the repository as it is, the approved plan runs
    const again = await pruneApprovalPlan(await fresh(), opts);
    const pruning = await fresh();
    const r = await prune(pruning, { ...opts, onPlan: requireApprovedPrune(pruning, again.plan, opts) });
    expect(r.plan.removePacks).toBe(again.plan.remove.length);
    expect(await repoSize(repo)).toBeLessThan(before);
    await expectAllReadable(await fresh());
  });

  it('stores a retention policy in the repository and refuses an empty one', async () => {
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
    expect(await loadRetentionPolicy(repo)).toBeUndefined();
    await expect(saveRetentionPolicy(repo, {})).rejects.toThrow(/empty retention policy/);
    await saveRetentionPolicy(repo, { daily: 7, weekly: 5, tags: ['pre-migration:1'] });
    expect(await loadRetentionPolicy(await fresh())).toEqual({ daily: 7, weekly: 5, tags: ['pre-migration:1'] });
  });

  it('prune and backup exclude each other with a clear lock error, and nothing is lost', async () => {
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
    writeFileSync(join(root, 'projects', 'p1', 'files', 'x.bin'), randomBytes(10_000));
    await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
    // a backup in progress holds a shared lock: prune refuses
    const shared = await RepositoryLock.acquire(await fresh(), { exclusive: false, operation: 'backup' });
    await expect(prune(await fresh())).rejects.toMatchObject({
      code: 'REPO_LOCKED',
      message: expect.stringContaining('shared lock for backup'),
    });
    await shared.release();
    // a prune in progress holds the exclusive lock: backup refuses
    const exclusive = await RepositoryLock.acquire(await fresh(), { exclusive: true, operation: 'prune' });
    await expect(backup(await fresh(), { storageRoot: root, foleVersion: '1.0.0' })).rejects.toMatchObject({
      code: 'REPO_LOCKED',
      hint: expect.stringContaining('unlock'),
    });
    await exclusive.release();
    // two backups of one STORAGE_ROOT at once: the second is refused by the Global Storage Lock
    const results = await Promise.allSettled([
      backup(await fresh(), { storageRoot: root, foleVersion: '1.0.0' }),
      backup(await fresh(), { storageRoot: root, foleVersion: '1.0.0' }),
    ]);
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    for (const f of failed) expect(f.reason).toMatchObject({ code: 'STORAGE_LOCKED' });
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    const again = await fresh();
    expect((await listSnapshots(again)).length).toBe(1 + results.filter((r) => r.status === 'fulfilled').length);
    await expectAllReadable(again);
  });
});
