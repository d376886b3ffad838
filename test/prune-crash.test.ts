/**
 * Crash safety of prune: a real `fole-backup prune` process is SIGKILLed at
 * points spread over its run. After each kill `check --read-data` must pass and
 * every remaining backup must restore; a later prune finishes the job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { backup } from '../src/backup/backup.js';
import { LocalBackend } from '../src/backend/local.js';
import { forget } from '../src/retention/forget.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots } from '../src/snapshot/store.js';
import { checkRepository, checkVerdict } from '../src/verify/check-repository.js';
import { restore } from '../src/restore/restore.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';
import { sleep } from '../src/concurrency/sleep.js';
import { runCli, spawnCli } from './cli-helpers.js';
import { killAfter, timeUndisturbedRun } from './crash-helpers.js';

let work: string;
let template: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-prune-crash-'));
  const root = join(work, 'storage');
  template = join(work, 'repo-template');
  createDatabase(join(root, 'core', 'core.db'), 10);
  const files = join(root, 'projects', 'p1', 'files');
  mkdirSync(files, { recursive: true });
  const repo = await Repository.init(new LocalBackend(template), TEST_PASSWORD, {
    kdf: FAST_KDF,
    packSize: 128 * 1024,
  });
  const ids: string[] = [];
  for (let gen = 0; gen < 6; gen++) {
    for (let i = 0; i < 30; i++) writeFileSync(join(files, `g${gen}-${i}.bin`), randomBytes(30_000));
    if (gen > 0) for (let i = 0; i < 25; i++) unlinkSync(join(files, `g${gen - 1}-${i}.bin`));
    ids.push((await backup(repo, { storageRoot: root, foleVersion: '1.0.0' })).backupId);
  }
  await forget(repo, { ids: [ids[0] as string, ids[2] as string, ids[4] as string] });
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** `check --read-data` passes, and every remaining backup restores (the real restore, into a scratch target). */
async function expectRemainingBackupsRestorable(repoDir: string): Promise<number> {
  const repo = await Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);
  const report = await checkRepository(repo, { readData: true });
  expect(checkVerdict(report), JSON.stringify(report.problems.slice(0, 3))).toBeUndefined();
  const snaps = await listSnapshots(repo);
  for (const s of snaps) {
    const target = join(work, `restore-${s.backupId}`);
    const r = await restore(repo, s.backupId, { target, confirm: s.backupId, foleVersion: '1.0.0' });
    expect(r.files).toBe(s.stats.files);
    rmSync(target, { recursive: true, force: true });
  }
  return snaps.length;
}

const LEASE_MS = 1000;

describe('prune killed with SIGKILL', () => {
  it('leaves every remaining backup restorable and the repository consistent', async () => {
    // how long an undisturbed prune takes
    const probe = join(work, 'probe');
    cpSync(template, probe, { recursive: true });
    const { result: ok, points } = await timeUndisturbedRun(() =>
      runCli(['prune', '--repo', probe, '--repack-threshold', '5', '--min-pack-age', '0'], {
        FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
      }),
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(await expectRemainingBackupsRestorable(probe)).toBe(3);

    const kills = 6;
    for (let i = 0; i < kills; i++) {
      const repoDir = join(work, `kill-${i}`);
      cpSync(template, repoDir, { recursive: true });
      // a short lease: the dead prune's lock is stale once its lease ran out and its pid is gone
      const child = spawnCli(['prune', '--repo', repoDir, '--repack-threshold', '5', '--min-pack-age', '0'], {
        FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
        FOLE_BACKUP_LOCK_LEASE_MS: String(LEASE_MS),
      });
      await killAfter(child, points.at(i, kills));
      // the dead one's lock is stale once its lease ran out (same host, boot and PID
      // namespace, dead pid): then a check and the next prune go ahead
      await sleep(LEASE_MS + 200);
      expect(await expectRemainingBackupsRestorable(repoDir)).toBe(3);
      // the next prune finishes the job
      const next = await runCli(['prune', '--repo', repoDir, '--repack-threshold', '5', '--min-pack-age', '0'], {
        FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
      });
      expect(next.code, next.stderr).toBe(0);
      expect(await expectRemainingBackupsRestorable(repoDir)).toBe(3);
      rmSync(repoDir, { recursive: true, force: true });
    }
  }, 240_000);
});
