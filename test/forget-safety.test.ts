/**
 * forget's safety net: a run that would remove every backup of a STORAGE_ROOT
 * is refused unless it says --allow-remove-all, whatever made it so (an
 * overflowing duration, a typo in a count, naming every id), and a dry run
 * changes nothing — not even the stored policy.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../src/backup/backup.js';
import { runCli } from './cli-helpers.js';
import { makeTree } from './fixtures/make-tree.js';
import { TEST_PASSWORD, makeLocalRepo } from './repo-helpers.js';

const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
let work: string;
let repoDir: string;
const ids: string[] = [];
const cli = (...args: string[]) => runCli([...args, '--repo', repoDir], env);
const snapshots = (): string[] => readdirSync(join(repoDir, 'snapshots')).filter((n) => !n.startsWith('.'));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-forget-'));
  repoDir = join(work, 'repo');
  const tree = await makeTree(
    { 'core/core.db': { db: ['CREATE TABLE t(x)'] }, 'config/a.json': '{}' },
    { root: join(work, 'storage') },
  );
  const repo = await makeLocalRepo(repoDir);
  try {
    for (let i = 0; i < 3; i++)
      ids.push((await backup(repo, { storageRoot: tree.root, foleVersion: '1.0.0' })).backupId);
  } finally {
    await repo.close();
  }
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('forget refuses to remove every backup of a STORAGE_ROOT', () => {
  it('refuses an overflowing or malformed rule with exit 2 before touching anything', async () => {
    for (const flags of [
      ['--keep-within', '300000y'],
      ['--keep-within', '1y99999999m'],
      ['--keep-within', '9007199254740993d'],
      ['--keep-within', '99999999999999999999h'],
      ['--keep-daily', '1e3'],
      ['--keep-daily', '0x10'],
      ['--keep-last', '-1'],
    ]) {
      const r = await cli('forget', ...flags);
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(snapshots()).toHaveLength(3);
  });

  it('refuses a valid rule that keeps nothing, naming what would go, unless --allow-remove-all', async () => {
    // --keep-tag of a tag no backup has keeps none of them
    const r = await cli('forget', '--keep-tag', 'nothing-has-this', '--save-policy');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/every backup of a STORAGE_ROOT/);
    for (const id of ids) expect(r.stderr + r.stdout).toContain(id.slice(0, 8));
    expect(r.stderr).toMatch(/--allow-remove-all/);
    expect(snapshots()).toHaveLength(3);
    // nothing was stored either: a later scheduled forget has no policy to apply
    const later = await cli('forget');
    expect(later.code).toBe(2);
    expect(later.stderr).toMatch(/no retention policy given and none stored/);

    const byId = await cli('forget', ...ids);
    expect(byId.code).toBe(2);
    expect(snapshots()).toHaveLength(3);
  });

  it('a dry run with --save-policy stores nothing and says so', async () => {
    const r = await cli('forget', '--keep-last', '2', '--save-policy', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/dry run: the retention policy would be stored/);
    expect(readdirSync(join(repoDir, 'settings')).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(snapshots()).toHaveLength(3);
  });

  it('removes everything when told to', async () => {
    const r = await cli('forget', '--keep-tag', 'nothing-has-this', '--allow-remove-all', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { removed: string[] }).removed.sort()).toEqual([...ids].sort());
    expect(snapshots()).toEqual([]);
  });
});
