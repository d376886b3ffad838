/**
 * Crash safety of repair: a real `fole-backup repair` process, on a repository with damaged packs, a missing pack
 * and an unreadable index file, is SIGKILLed at points spread over its run. After each kill every command still
 * works on what it can read (check reports, never fails on its own); the next repair completes, and then
 * `check --read-data` passes and the backup the damage did not touch restores byte for byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { backup } from '../src/backup/backup.js';
import { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restore/restore.js';
import { checkRepository, checkVerdict } from '../src/verify/check-repository.js';
import { runCli } from './cli-helpers.js';
import { repositoryKillTrials, trialWorld } from './crash-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';

let work: string;
let template: string;
let root: string;
let untouched: string;
const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every pack file of a repository. */
function packFiles(repoDir: string): string[] {
  const data = join(repoDir, 'data');
  return readdirSync(data)
    .flatMap((d) => readdirSync(join(data, d)).map((f) => join(data, d, f)))
    .sort();
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-repair-crash-'));
  const world = await trialWorld(work);
  ({ root, template } = world);
  const { files, repo } = world;
  for (let i = 0; i < 40; i++) writeFileSync(join(files, `a${i}.bin`), randomBytes(30_000));
  untouched = (await backup(repo, { storageRoot: root, foleVersion: '1.0.0' })).backupId;
  const firstPacks = new Set(packFiles(template));
  const firstIndex = readdirSync(join(template, 'index'));
  for (let i = 0; i < 60; i++) writeFileSync(join(files, `b${i}.bin`), randomBytes(30_000));
  await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
  await repo.close();
  // the damage hits only what the second backup added: three flipped bytes, a missing pack, an unreadable index
  const added = packFiles(template).filter((p) => !firstPacks.has(p));
  expect(added.length).toBeGreaterThanOrEqual(5);
  for (const p of added.slice(0, 3)) {
    const b = readFileSync(p);
    const at = Math.floor(b.length / 3);
    b[at] = (b[at] ?? 0) ^ 0x40;
    writeFileSync(p, b);
  }
  unlinkSync(added[3] as string);
  const secondIndex = readdirSync(join(template, 'index')).find((n) => !firstIndex.includes(n));
  writeFileSync(join(template, 'index', secondIndex as string), randomBytes(500));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** After a finished repair: check --read-data passes, and the untouched backup restores byte for byte. */
async function expectRepaired(repoDir: string): Promise<void> {
  const repo = await Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);
  try {
    const report = await checkRepository(repo, { readData: true });
    expect(checkVerdict(report), JSON.stringify(report.problems.slice(0, 3))).toBeUndefined();
    expect(report.counts.knownDamageBackups).toBe(1);
    const target = join(work, `restored-${Date.now()}`);
    await restore(repo, untouched, { target, confirm: untouched, foleVersion: '1.0.0' });
    for (let i = 0; i < 40; i++) {
      const rel = join('projects', 'p1', 'files', `a${i}.bin`);
      expect(sha(readFileSync(join(target, rel))), rel).toBe(sha(readFileSync(join(root, rel))));
    }
    rmSync(target, { recursive: true, force: true });
  } finally {
    await repo.close();
  }
}

describe('repair killed with SIGKILL', () => {
  it('leaves a repository every command can use, and the next repair completes', async () => {
    const kills = 6;
    const interrupted = await repositoryKillTrials({
      template,
      work,
      args: ['repair'],
      env,
      kills,
      afterRun: expectRepaired,
      afterKill: async (repoDir) => {
        // whatever instant it died at, a check runs and says what it finds (exit 0 or a STOP, never a crash)
        const check = await runCli(['check', '--repo', repoDir], env);
        expect([0, 3], check.stderr).toContain(check.code);
        const next = await runCli(['repair', '--repo', repoDir], env);
        expect(next.code, next.stderr).toBe(0);
        await expectRepaired(repoDir);
        // and a repair after that has nothing left to do
        const again = await runCli(['repair', '--repo', repoDir, '--json'], env);
        expect((JSON.parse(again.stdout) as { nothingToDo: boolean }).nothingToDo, again.stdout).toBe(true);
      },
    });
    // most kills landed in the work, not after it (a run may be quicker than the timed one: the last may miss)
    expect(interrupted).toBeGreaterThanOrEqual(kills / 2);
  }, 300_000);
});
