/**
 * The recovery rule, as a table over (journal state, what is on disk), and
 * recover() over hand-built layouts of target / staging / previous tree:
 * it rolls back, completes, or refuses without changing anything.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JournalState, RestoreJournal } from './journal.js';
import { journalPathOf, stagingPathOf } from './names.js';
import { selfIdentity } from '../host/process-identity.js';
import { decideRecovery, recover, type Presence } from './recover.js';
import { canRun } from '../../test/needs.js';

const ID = '3f2a9c1e-5b7d-4e0f-8a21-0c9d8e7f6a5b';

type Row = [JournalState, 'replace' | 'fill', Presence, 'roll-back' | 'complete' | 'refuse', boolean?];
const P = (target: boolean, staging: boolean, previous: boolean): Presence => ({ target, staging, previous });

const rows: Row[] = [
  ['staging', 'replace', P(true, true, false), 'roll-back'],
  ['staging', 'replace', P(true, false, false), 'roll-back'],
  ['staging', 'fill', P(false, true, false), 'roll-back'],
  ['staged', 'replace', P(true, true, false), 'roll-back'],
  ['staged', 'replace', P(false, true, true), 'complete', true],
  ['staged', 'replace', P(true, false, true), 'refuse'],
  ['staged', 'replace', P(false, false, true), 'refuse'],
  ['staged', 'replace', P(true, true, true), 'refuse'],
  ['live-moved-aside', 'replace', P(false, true, true), 'complete', true],
  ['live-moved-aside', 'replace', P(true, false, true), 'complete', false],
  ['live-moved-aside', 'replace', P(true, true, false), 'refuse'],
  ['live-moved-aside', 'replace', P(false, false, true), 'refuse'],
  ['live-moved-aside', 'replace', P(true, false, false), 'refuse'],
  ['staging-moved-in', 'replace', P(true, false, true), 'complete', false],
  ['staging-moved-in', 'replace', P(true, false, false), 'complete', false],
  ['staging-moved-in', 'replace', P(false, true, true), 'refuse'],
  ['done', 'replace', P(true, false, true), 'complete', false],
  ['staged', 'fill', P(false, true, false), 'roll-back'],
  ['staged', 'fill', P(true, true, false), 'roll-back'],
  ['staged', 'fill', P(true, false, false), 'complete', false],
  ['staged', 'fill', P(false, false, false), 'refuse'],
  ['staging-moved-in', 'fill', P(true, false, false), 'complete', false],
  ['staging-moved-in', 'fill', P(false, true, false), 'refuse'],
];

describe('decideRecovery', () => {
  it.each(rows)('journal %s (%s) with %o: %s', (state, mode, on, action, moveIn) => {
    const d = decideRecovery({ state, mode }, on);
    expect(d.action).toBe(action);
    if (d.action === 'complete') expect(d.moveStagingIn).toBe(moveIn);
  });
});

describe('recover', () => {
  let work: string;
  let target: string;
  let staging: string;
  let previous: string;
  let deadPid: number;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'fole-recover-'));
    target = join(work, 'fole');
    // a pid that surely belongs to no process any more
    deadPid = spawnSync(process.execPath, ['-e', '0']).pid as number;
    staging = stagingPathOf(target, ID, deadPid);
    previous = `${target}.pre-restore-20261126T051200Z`;
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  function tree(dir: string, marker: string): void {
    mkdirSync(join(dir, 'projects'), { recursive: true });
    writeFileSync(join(dir, 'projects', 'marker'), marker);
  }

  function journal(state: JournalState, over: Partial<RestoreJournal> = {}): void {
    const j: RestoreJournal = {
      version: 1,
      backupId: ID,
      target,
      staging,
      previousTree: previous,
      mode: 'replace',
      state,
      pid: deadPid,
      host: hostname(),
      lockOwner: `fole-backup restore 3f2a9c1e:test@${hostname()}:${deadPid}`,
      keep: [],
      startedAt: '2026-11-26T05:12:00.000Z',
      updatedAt: '2026-11-26T05:12:01.000Z',
      ...over,
    };
    writeFileSync(journalPathOf(target), JSON.stringify(j));
  }

  const marker = (dir: string): string => readFileSync(join(dir, 'projects', 'marker'), 'utf8');

  it('does nothing when there is no journal', async () => {
    tree(target, 'old');
    const r = await recover(target);
    expect(r.action).toBe('none');
    expect(marker(target)).toBe('old');
  });

  it('rolls back a restore killed while staging: staging removed, target untouched', async () => {
    tree(target, 'old');
    tree(staging, 'half');
    journal('staging');
    const r = await recover(target);
    expect(r.action).toBe('rolled-back');
    expect(r.detail).toMatch(/not touched|as it was/);
    expect(marker(target)).toBe('old');
    expect(readdirSync(work).sort()).toEqual(['fole']);
  });

  it('completes a restore killed between the two renames', async () => {
    tree(previous, 'old');
    tree(staging, 'new');
    journal('live-moved-aside');
    const r = await recover(target);
    expect(r).toMatchObject({ action: 'completed', previousTree: previous });
    expect(marker(target)).toBe('new');
    expect(marker(previous)).toBe('old');
    expect(readdirSync(work).sort()).toEqual(['fole', 'fole.pre-restore-20261126T051200Z']);
  });

  it('completes a fill restore whose journal was not updated after the rename', async () => {
    tree(target, 'new');
    journal('staged', { mode: 'fill', previousTree: null });
    expect((await recover(target)).action).toBe('completed');
    expect(readdirSync(work)).toEqual(['fole']);
  });

  it('refuses, changing nothing, when the disk does not match the journal', async () => {
    tree(target, 'someone');
    tree(staging, 'new');
    tree(previous, 'old');
    journal('live-moved-aside');
    const before = readdirSync(work).sort();
    await expect(recover(target)).rejects.toMatchObject({ code: 'UNCLEAR_RESTORE_TARGET' });
    expect(readdirSync(work).sort()).toEqual(before);
    expect(marker(target)).toBe('someone');
  });

  it('refuses a journal that names a directory it would not have made', async () => {
    tree(target, 'old');
    tree(join(work, 'precious'), 'keep me');
    journal('staging', { staging: join(work, 'precious') });
    await expect(recover(target)).rejects.toMatchObject({
      code: 'UNCLEAR_RESTORE_TARGET',
      message: expect.stringMatching(/damaged: bad staging/),
    });
    expect(marker(join(work, 'precious'))).toBe('keep me');
  });

  it('refuses a journal that is not JSON', async () => {
    tree(target, 'old');
    writeFileSync(journalPathOf(target), '{"version":1,');
    await expect(recover(target)).rejects.toMatchObject({ code: 'UNCLEAR_RESTORE_TARGET' });
    expect(existsSync(journalPathOf(target))).toBe(true);
  });

  it('leaves the journal of a restore that is still running alone', async () => {
    tree(target, 'old');
    tree(staging, 'half');
    journal('staging', { pid: process.ppid });
    await expect(recover(target)).rejects.toMatchObject({ code: 'STORAGE_LOCKED' });
    expect(marker(staging)).toBe('half');
  });

  it(
    'leaves the journal of a restore in another PID namespace alone, ' + 'though its pid names no process here',
    async () => {
      tree(target, 'old');
      tree(staging, 'half');
      journal('staging', { ...selfIdentity(), pidNs: 'pid:[1]' });
      await expect(recover(target)).rejects.toMatchObject({
        code: 'STORAGE_LOCKED',
        hint: expect.stringMatching(/PID namespace/),
      });
      expect(marker(staging)).toBe('half');
    },
  );

  it.runIf(canRun(selfIdentity().pidNs !== undefined, 'Linux /proc PID-namespace ids'))(
    'rolls back the journal of a restore provably gone (same boot and PID namespace)',
    async () => {
      tree(target, 'old');
      tree(staging, 'half');
      journal('staging', selfIdentity());
      expect((await recover(target)).action).toBe('rolled-back');
      expect(existsSync(staging)).toBe(false);
    },
  );

  it('removes staging directories of this target left by dead processes without a journal', async () => {
    tree(target, 'old');
    tree(staging, 'orphan');
    const otherTarget = stagingPathOf(join(work, 'other'), ID, deadPid);
    tree(otherTarget, 'not ours');
    const r = await recover(target);
    expect(r.action).toBe('rolled-back');
    expect(r.removed).toEqual([staging]);
    expect(existsSync(otherTarget)).toBe(true);
  });
});
