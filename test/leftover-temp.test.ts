/**
 * Temporary files a killed writer leaves (`.tmp-*`, see src/fs/durable.ts) in
 * any folder of a local repository: `check` reports them as harmless info (the
 * result stays OK), `prune` removes those older than its safety margin and
 * never a recent one, which may belong to a writer still at work.
 */
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prune } from '../src/prune/prune.js';
import { checkRepository } from '../src/verify/check-repository.js';
import { runCli } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { makeFixture, type Fixture } from './verify-fixture.js';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture({ files: 3 });
});
afterEach(() => fx.cleanup());

/** Where a kill leaves temp files: every folder writeFileAtomic writes into. */
const OLD = [
  '.tmp-00aa00aa00aa00aa',
  'index/.tmp-11bb11bb11bb11bb',
  'snapshots/.tmp-22cc22cc22cc22cc',
  'data/3f/.tmp-33dd33dd33dd33dd',
  'keys/.tmp-44ee44ee44ee44ee',
  'locks/.tmp-55ff55ff55ff55ff',
  'settings/.tmp-6600660066006600',
];
/** A temp file written a moment ago: a save under way. */
const FRESH = 'index/.tmp-7711771177117711';

function plant(): void {
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  for (const rel of [...OLD, FRESH]) {
    const path = join(fx.repoDir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, Buffer.alloc(100, 1));
    if (rel !== FRESH) utimesSync(path, twoHoursAgo, twoHoursAgo);
  }
}

describe('leftover temporary files', () => {
  it('are reported by check as harmless info, and the check stays OK', async () => {
    plant();
    const repo = await fx.open();
    const r = await checkRepository(repo);
    await repo.close();
    expect(r.ok).toBe(true);
    expect(r.counts).toMatchObject({ tempFiles: OLD.length + 1, tempBytes: 100 * (OLD.length + 1) });
    expect(r.info).toContainEqual(
      expect.objectContaining({
        kind: 'temp-files',
        message: expect.stringMatching(
          new RegExp(
            '8 leftover temporary files .*interrupted writes: ' +
              'harmless; `fole-backup prune` removes those older than an hour',
          ),
        ),
      }),
    );
  });

  it('older than an hour are removed by prune, a recent one is kept; a dry run only counts them', async () => {
    plant();
    let repo = await fx.open();
    const dry = await prune(repo, { dryRun: true });
    await repo.close();
    expect(dry.tempFilesRemoved).toBe(OLD.length);
    for (const rel of OLD) expect(existsSync(join(fx.repoDir, rel))).toBe(true);

    repo = await fx.open();
    const done = await prune(repo);
    await repo.close();
    expect(done.tempFilesRemoved).toBe(OLD.length);
    for (const rel of OLD) expect(existsSync(join(fx.repoDir, rel))).toBe(false);
    expect(existsSync(join(fx.repoDir, FRESH))).toBe(true);

    repo = await fx.open();
    const after = await checkRepository(repo, { readData: true });
    await repo.close();
    expect(after.ok).toBe(true);
    expect(after.counts.tempFiles).toBe(1);
  });

  it('are said by the CLI: check says how many and exits 0, prune says how many it removed', async () => {
    plant();
    const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
    const check = await runCli(['check', '--repo', fx.repoDir], env);
    expect(check.stdout).toMatch(/repository .*: OK/);
    expect(check.stdout).toMatch(
      /8 leftover temporary files \(800 B\): harmless; prune removes those older than an hour/,
    );
    expect(check.code).toBe(0);
    const pruned = await runCli(['prune', '--repo', fx.repoDir], env);
    expect(pruned.stdout).toMatch(/7 leftover temporary files removed/);
    expect(pruned.code).toBe(0);
  });
});
