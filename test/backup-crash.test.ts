/**
 * Crash safety of backup: a real `fole-backup backup` process is killed with
 * SIGKILL at random instants. Afterwards the repository must show no partial
 * backup (every listed backup reads back completely) and the next backup must
 * succeed — including taking over the Global Storage Lock the dead process held.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LocalBackend } from '../src/backend/local.js';
import { backup } from '../src/backup/backup.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots } from '../src/snapshot/store.js';
import { readTree } from '../src/snapshot/tree.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { readBack } from './repo-helpers.js';
import { runCli, spawnCli } from './cli-helpers.js';
import { killAfter, timeUndisturbedRun } from './crash-helpers.js';

const PASSWORD = 'crash-test-password';
let work: string;
let root: string;
let repoDir: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-crash-'));
  root = join(work, 'storage');
  repoDir = join(work, 'repo');
  createDatabase(join(root, 'core', 'core.db'), 2000);
  for (let p = 0; p < 3; p++) {
    createDatabase(join(root, 'projects', `p${p}`, 'project.db'), 20_000);
    mkdirSync(join(root, 'projects', `p${p}`, 'files'), { recursive: true });
    // fresh random content on each run, so no crash run can dedup against an earlier one
    for (let f = 0; f < 150; f++)
      writeFileSync(join(root, 'projects', `p${p}`, 'files', `f${f}.bin`), randomBytes(40_000 + f * 300));
  }
  const init = await runCli(['init', '--repo', repoDir], { FOLE_BACKUP_PASSWORD: PASSWORD });
  expect(init.code, init.stderr).toBe(0);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every backup in the repository reads back completely: tree and every blob. */
async function assertEveryBackupComplete(): Promise<number> {
  const repo = await Repository.open(new LocalBackend(repoDir), PASSWORD);
  const snaps = await listSnapshots(repo);
  for (const s of snaps) {
    let files = 0;
    for await (const e of readTree(repo, s.tree)) {
      if (e.kind === 'dir') continue;
      files++;
      const bytes = await readBack(repo, e);
      expect(bytes.length).toBe(e.size);
    }
    expect(files).toBe(s.stats.files);
  }
  return snaps.length;
}

const STORAGE_LEASE_MS = 1500;

describe('backup killed with SIGKILL', () => {
  it('never leaves a partial backup, and the next backup succeeds', async () => {
    // an undisturbed backup, to spread the kill points over its work
    const { result: full, points } = await timeUndisturbedRun(() =>
      runCli(['backup', '--repo', repoDir, '--storage-root', root, '--fole-version', '1.0.0', '--json'], {
        FOLE_BACKUP_PASSWORD: PASSWORD,
      }),
    );
    expect(full.code, full.stderr).toBe(0);
    let completed = 1;
    const kills = 6;
    for (let i = 0; i < kills; i++) {
      // new content so the killed run has real work to do
      writeFileSync(join(root, 'projects', 'p0', 'files', `new-${i}.bin`), randomBytes(2_000_000));
      // the storage lock of a killed run is taken over once its lease ran out (a pid proves
      // nothing): a short lease, and each run waits it out
      const child = spawnCli(
        ['backup', '--repo', repoDir, '--storage-root', root, '--fole-version', '1.0.0', '--storage-lock-wait', '20'],
        {
          FOLE_BACKUP_PASSWORD: PASSWORD,
          FOLE_BACKUP_STORAGE_LEASE_MS: String(STORAGE_LEASE_MS),
        },
      );
      const how = await killAfter(child, points.at(i, kills));
      // killed after its snapshot was written (or it finished first): then it is a complete backup too
      const now = await assertEveryBackupComplete();
      expect(
        now === completed || now === completed + 1,
        `${now} backups after kill ${i} (${how.signal ?? how.code})`,
      ).toBe(true);
      if (how.code === 0) expect(now).toBe(completed + 1);
      // a run that failed (rather than was killed) would hide the kill points behind it
      expect(how.signal ?? `exit ${how.code}`, `kill ${i}`).toMatch(/^(SIGKILL|exit 0)$/);
      completed = now;
    }
    // the next backup (in-process) succeeds despite the dead process's locks and staging
    const repo = await Repository.open(new LocalBackend(repoDir), PASSWORD);
    const warnings: string[] = [];
    const r = await backup(repo, {
      storageRoot: root,
      foleVersion: '1.0.0',
      storageLockWaitMs: 20_000,
      reporter: { phase() {}, progress() {}, warn: (m) => warnings.push(m) },
    });
    expect(r.files).toBeGreaterThan(450);
    completed++;
    expect((await listSnapshots(repo)).length).toBe(completed);
    expect(await assertEveryBackupComplete()).toBe(completed);
  }, 240_000);
});
