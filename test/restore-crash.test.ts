/**
 * Crash safety of restore: a real `fole-backup restore` process is killed with
 * SIGKILL at every durable step of the swap (a preload module, written here,
 * wraps fs.promises.rename and kills the process right before or after the Nth
 * rename beside the target) and at instants spread over its whole run. Then
 * `fole-backup recover --target` (or the library's recover) must leave the
 * target entirely old or entirely new — as the recovery rule says for that
 * point — with no staging, journal or lock row left; and a following restore works.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recover } from '../src/restore/recover.js';
import { readStorageLock } from '../src/storage/global-lock.js';
import { type CliResult, runCli, spawnCli, waitExit } from './cli-helpers.js';
import { type KillPoints, killAfter, timeUndisturbedRun } from './crash-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree, makeFoleTree, treeHash, workingFiles, type HashOptions } from './restore-helpers.js';

/** Kills its own process with SIGKILL around the KILL_AT-th rename whose paths contain KILL_MATCH. */
const PRELOAD = `
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
const at = Number(process.env.KILL_AT);
const when = process.env.KILL_WHEN;
const match = process.env.KILL_MATCH;
let n = 0;
const rename = fsp.rename;
fsp.rename = async function (from, to) {
  const counted = String(from).includes(match) || String(to).includes(match);
  if (counted) n++;
  if (counted && n === at && when === 'before') process.kill(process.pid, 'SIGKILL');
  const r = await rename.call(this, from, to);
  if (counted && n === at && when === 'after') process.kill(process.pid, 'SIGKILL');
  return r;
};
syncBuiltinESMExports();
`;

let work: string;
let site: string;
let live: string;
let repoDir: string;
let backupId: string;
let preload: string;
let oldHash: string;
let newHash: string;
let points: KillPoints;
const env = (): Record<string, string> => ({ FOLE_BACKUP_PASSWORD: TEST_PASSWORD, FOLE_BACKUP_REPO: repoDir });
/**
 * The lock bookkeeping writes core.db (and so core/) in both trees, and the root's mode comes from the target: leave
 * those out.
 */
const HASH: HashOptions = { ignoreRoot: true, ignoreContent: ['core', 'core/core.db'] };

function restoreArgs(): string[] {
  return ['restore', backupId, '--target', live, '--confirm', backupId, '--fole-version', '2.3.1'];
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-restore-crash-'));
  site = join(work, 'site');
  live = join(site, 'fole');
  repoDir = join(work, 'repo');
  preload = join(work, 'kill-at-rename.mjs');
  writeFileSync(preload, PRELOAD);
  // the backup ("new") and a different live tree ("old")
  ({ backupId } = await backedUpFoleTree(work, {
    prepare: (root) => {
      for (let i = 0; i < 60; i++)
        writeFileSync(join(root, 'projects', 'p1', 'files', `u${i}.bin`), Buffer.alloc(30_000 + i, i));
    },
  }));
  makeFoleTree(live, { bigBytes: 4000 }).core.db.close();
  writeFileSync(join(live, 'projects', 'p1', 'files', 'OLD'), 'the tree before the restore');
  oldHash = treeHash(live, HASH);
  // an undisturbed restore elsewhere: what "new" looks like, and where to kill one
  mkdirSync(join(work, 'ref'));
  let ref: CliResult;
  ({ result: ref, points } = await timeUndisturbedRun(() =>
    runCli(
      ['restore', backupId, '--target', join(work, 'ref', 'fole'), '--confirm', backupId, '--fole-version', '2.3.1'],
      env(),
    ),
  ));
  expect(ref.code, ref.stderr).toBe(0);
  newHash = treeHash(join(work, 'ref', 'fole'), HASH);
  expect(newHash).not.toBe(oldHash);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

function previousTrees(): string[] {
  return readdirSync(site).filter((n) => n.startsWith('fole.pre-restore-'));
}

/** Recover (through the CLI or the library), check old-or-new, and put the old tree back for the next round. */
async function recoverAndCheck(viaCli: boolean): Promise<{ action: string; state: 'old' | 'new' }> {
  let action: string;
  if (viaCli) {
    const r = await runCli(['recover', '--target', live, '--json'], env());
    expect(r.code, r.stderr).toBe(0);
    action = (JSON.parse(r.stdout) as { action: string }).action;
  } else {
    action = (await recover(live)).action;
  }
  const h = treeHash(live, HASH);
  expect([oldHash, newHash]).toContain(h);
  expect(workingFiles(site)).toEqual([]);
  expect(readStorageLock(live)).toBeUndefined();
  const state = h === newHash ? 'new' : 'old';
  const prev = previousTrees();
  if (state === 'new') {
    // the old tree is kept, whole, beside it; put it back for the next round
    expect(prev).toHaveLength(1);
    const p = join(site, prev[0] as string);
    expect(treeHash(p, HASH)).toBe(oldHash);
    expect(readStorageLock(p)).toBeUndefined();
    rmSync(live, { recursive: true, force: true });
    renameSync(p, live);
  } else {
    expect(prev).toEqual([]);
  }
  return { action, state };
}

describe('restore killed with SIGKILL', () => {
  it('at every step of the swap: recovery rolls back before the live tree moved, completes after', async () => {
    // `locked`: where the Global Storage Lock row is when the process dies. It is taken in the
    // live tree and goes aside with it; the restored tree moves in without one (byte for byte the backup)
    const points: [
      when: 'before' | 'after',
      at: number,
      expected: 'old' | 'new',
      action: string,
      locked: 'target' | 'previous tree',
    ][] = [
      ['before', 1, 'old', 'rolled-back', 'target'], // staged and verified, lock held; journal still "staging"
      ['after', 1, 'old', 'rolled-back', 'target'], // journal "staged"; the live tree not moved yet
      ['after', 2, 'new', 'completed', 'previous tree'], // live tree moved aside, journal not yet updated
      ['after', 3, 'new', 'completed', 'previous tree'], // journal "live-moved-aside"
      ['after', 4, 'new', 'completed', 'previous tree'], // new tree moved in, journal not yet updated
      ['after', 5, 'new', 'completed', 'previous tree'], // journal "staging-moved-in": only the clean-up was left
    ];
    for (const [i, [when, at, expected, action, locked]] of points.entries()) {
      const child = spawnCli(restoreArgs(), {
        ...env(),
        NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`,
        KILL_AT: String(at),
        KILL_WHEN: when,
        KILL_MATCH: `${site}/`,
      });
      const how = await waitExit(child);
      expect(how.signal, `killed ${when} rename ${at}`).toBe('SIGKILL');
      const restore = /^fole-backup restore /;
      if (locked === 'target')
        expect(readStorageLock(live)?.owner, `lock at the target, killed ${when} rename ${at}`).toMatch(restore);
      else {
        const prev = previousTrees();
        expect(prev, `previous tree, killed ${when} rename ${at}`).toHaveLength(1);
        expect(
          readStorageLock(join(site, prev[0] as string))?.owner,
          `lock in the previous tree, killed ${when} rename ${at}`,
        ).toMatch(restore);
        if (existsSync(live))
          expect(readStorageLock(live), `no lock in the restored tree, killed ${when} rename ${at}`).toBeUndefined();
        else expect(at).toBeLessThan(4);
      }
      const r = await recoverAndCheck(i % 3 === 0);
      expect(r, `killed ${when} rename ${at}`).toEqual({ action, state: expected });
    }
  }, 120_000);

  it('at instants spread over its run: old or new, never a mix', async () => {
    const kills = 4;
    for (let i = 0; i < kills; i++) {
      const child = spawnCli(restoreArgs(), env());
      const how = await killAfter(child, points.at(i, kills));
      const r = await recoverAndCheck(i % 2 === 1);
      if (r.action === 'rolled-back') expect(r.state).toBe('old');
      if (r.action === 'completed') expect(r.state).toBe('new');
      if (how.code === 0) expect(r).toEqual({ action: 'none', state: 'new' });
    }
  }, 120_000);

  it('leaves nothing in the way of the next restore', async () => {
    // a killed run first, then a plain restore: it recovers and restores
    const child = spawnCli(restoreArgs(), {
      ...env(),
      NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`,
      KILL_AT: '3',
      KILL_WHEN: 'after',
      KILL_MATCH: `${site}/`,
    });
    expect((await waitExit(child)).signal).toBe('SIGKILL');
    const r = await runCli([...restoreArgs(), '--json'], env());
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { recovered: { action: string } | null; previousTree: string };
    expect(out.recovered?.action).toBe('completed');
    expect(treeHash(live, HASH)).toBe(newHash);
    // two previous trees now: the old one (from the recovered run) and the tree the recovered run put in
    expect(previousTrees()).toHaveLength(2);
    expect(existsSync(out.previousTree)).toBe(true);
    expect(workingFiles(site)).toEqual([]);
    expect(readStorageLock(live)).toBeUndefined();
  }, 60_000);
});
