/**
 * Crash safety of prune: a real `fole-backup prune` process is SIGKILLed at
 * points spread over its run. After each kill `check --read-data` must pass and
 * every remaining backup must restore; a later prune finishes the job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
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
import { TEST_PASSWORD } from './repo-helpers.js';
import { runCli } from './cli-helpers.js';
import { repositoryKillTrials, trialWorld } from './crash-helpers.js';

let work: string;
let template: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-prune-crash-'));
  const world = await trialWorld(work);
  const { root, files, repo } = world;
  template = world.template;
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

describe('prune killed with SIGKILL', () => {
  it('leaves every remaining backup restorable and the repository consistent', async () => {
    const args = ['prune', '--repack-threshold', '5', '--min-pack-age', '0'];
    const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
    await repositoryKillTrials({
      template,
      work,
      args,
      env,
      kills: 6,
      afterRun: async (repoDir) => {
        expect(await expectRemainingBackupsRestorable(repoDir)).toBe(3);
      },
      afterKill: async (repoDir) => {
        // whatever instant it died at, every remaining backup restores
        expect(await expectRemainingBackupsRestorable(repoDir)).toBe(3);
        // and the next prune finishes the job
        const next = await runCli([...args, '--repo', repoDir], env);
        expect(next.code, next.stderr).toBe(0);
        expect(await expectRemainingBackupsRestorable(repoDir)).toBe(3);
      },
    });
  }, 240_000);
});
