/**
 * An agent's restore through the real CLI: it STOPs with a stored request, a
 * human approves that exact plan, the agent runs it once. Every way an approval
 * could be abused is refused: run before approval, approved by the agent
 * itself, replayed, after the target or the snapshot object changed, denied,
 * approved by someone registered after the request, on a copy of the
 * repository, with the clock set back.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../src/trust/audit-store.js';
import type { CliResult } from './cli-helpers.js';
import { expectStop, makeTrustWorld, type TrustWorld } from './trust-world.js';

/** alice and bob (human sysadmins), bot (an agent operator granted restore and forget), dave (added later). */
let w: TrustWorld;
let backupId: string;
let dir: string;
let repoDir: string;
const cli = (args: string[], extra: Record<string, string> = {}, repo?: string): Promise<CliResult> =>
  w.cli(args, extra, repo);
const as = (name: string): string[] => w.as(name);
const restoreArgs = (target: string): string[] => w.restoreArgs(target);

/** The agent asks; returns the request id from the STOP's JSON. */
async function ask(target: string, repo?: string): Promise<string> {
  const r = await cli([...restoreArgs(target), '--json', ...as('bot')], {}, repo);
  expect(r.code, r.stderr).toBe(3);
  const stop = (JSON.parse(r.stdout) as { stop: { code: string; requestId: string; hint: string } }).stop;
  expect(stop.code).toBe('APPROVAL_REQUIRED');
  expect(stop.requestId).toMatch(/^[0-9a-f]{32}$/);
  expect(stop.hint).toContain(`fole-backup approve ${stop.requestId}`);
  expect(stop.hint).toContain(`--request ${stop.requestId}`);
  return stop.requestId;
}

const run = (target: string, id: string, repo?: string): Promise<CliResult> =>
  cli([...restoreArgs(target), '--request', id, ...as('bot')], {}, repo);

beforeAll(async () => {
  w = await makeTrustWorld('fole-approvals-cli-', ['bob', 'bot', 'dave']);
  ({ dir, repoDir, backupId } = w);
  await w.add('bob', 'human', 'sysadmin');
  await w.add('bot', 'agent', 'operator');
  for (const p of ['backup.restore', 'backup.forget']) {
    expect((await cli(['actor', 'grant', 'bot', p, ...as('alice')])).code).toBe(0);
  }
}, 120_000);

afterAll(() => w.cleanup());

describe("an agent's restore", () => {
  it('stops with a request, runs once a human approved it, and never twice', async () => {
    const target = join(dir, 'restored-1');
    const id = await ask(target);
    expect(existsSync(target)).toBe(false);
    const listed = await cli(['approvals', 'list', '--json', ...as('alice')]);
    expect(JSON.parse(listed.stdout)).toContainEqual(
      expect.objectContaining({ id, status: 'pending', requester: 'bot' }),
    );
    // not yet approved
    expectStop(await run(target, id), 'APPROVAL_REQUIRED', /not approved: 0 of 1 required human approval/);
    // the agent may not approve, not even its own request
    expectStop(await cli(['approve', id, ...as('bot')]), 'PERMISSION_DENIED', /backup\.approve/);
    const approved = await cli(['approve', id, ...as('alice')]);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(/bot may now run it once with --request/);
    expect(approved.stdout).toMatch(new RegExp(`restore backup ${backupId}`));
    const again = await cli(['approve', id, ...as('alice')]);
    expect(again.stderr).toMatch(/already approved/);
    const r = await run(target, id);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(target, 'core', 'core.db'))).toBe(true);
    // a replay is refused: consumed before any work
    expectStop(await run(join(dir, 'restored-1b'), id), 'APPROVAL_REQUIRED', /./);
    expectStop(await run(target, id), 'APPROVAL_REQUIRED', /has already been used|differs/);
    // the audit log names the request on the run that used it
    const log = await cli(['audit', 'log', '--json', '--op', 'restore', ...as('alice')]);
    const entries = (JSON.parse(log.stdout) as { entries: { result: { status: string }; approvals: string[] }[] })
      .entries;
    expect(entries.filter((e) => e.result.status === 'ok').map((e) => e.approvals)).toEqual([[id]]);
  });

  it('refuses an approved plan once the target changed, and a plan approved for another target', async () => {
    // a live STORAGE_ROOT to replace: a copy of the tree that was backed up
    const target = join(dir, 'live-2');
    cpSync(join(dir, 'work', 'src'), target, { recursive: true });
    const id = await ask(target);
    expect((await cli(['approve', id, ...as('bob')])).code).toBe(0);
    writeFileSync(join(target, 'projects', 'p1', 'project.json'), '{"id":"p1","changed":true}');
    expectStop(await run(target, id), 'APPROVAL_REQUIRED', /plan computed now differs from the one approved/);
    // and once the target changed, a human cannot approve the old plan either
    const other = await ask(target);
    writeFileSync(join(target, 'projects', 'p1', 'project.json'), '{"id":"p1","changed":2}');
    expectStop(
      await cli(['approve', other, ...as('bob')]),
      'APPROVAL_REQUIRED',
      /its plan differs from the plan computed now/,
    );
    // the request names its target: running it against another one is another plan
    const elsewhere = await ask(join(dir, 'restored-2'));
    expect((await cli(['approve', elsewhere, ...as('alice')])).code).toBe(0);
    expectStop(await run(join(dir, 'restored-2-other'), elsewhere), 'APPROVAL_REQUIRED', /plan computed now differs/);
    expect(existsSync(join(dir, 'restored-2-other'))).toBe(false);
  });

  it('refuses an approved plan once the snapshot object was rewritten', async () => {
    const target = join(dir, 'restored-3');
    const id = await ask(target);
    expect((await cli(['approve', id, ...as('alice')])).code).toBe(0);
    const repo = await w.openRepo();
    try {
      // same content, sealed again: other bytes, so another SHA-256 than the approved plan's
      const aad = Buffer.from(`fole-snapshot:${backupId}`);
      await repo.saveJson('snapshots', await repo.loadJson('snapshots', backupId, aad), aad, backupId);
    } finally {
      await repo.close();
    }
    expectStop(await run(target, id), 'APPROVAL_REQUIRED', /plan computed now differs/);
  });

  it('refuses a denied request, and an approval by someone registered after the request', async () => {
    const target = join(dir, 'restored-4');
    const id = await ask(target);
    await w.add('dave', 'human', 'sysadmin');
    expect((await cli(['approve', id, ...as('dave')])).code).toBe(0);
    expectStop(await run(target, id), 'APPROVAL_REQUIRED', /dave was registered after the request was made/);
    const denied = await cli(['approvals', 'deny', id, ...as('bob')]);
    expect(denied.code, denied.stderr).toBe(0);
    expectStop(await run(target, id), 'APPROVAL_REQUIRED', /denied by bob/);
    const show = await cli(['approvals', 'show', id, '--json', ...as('alice')]);
    expect(JSON.parse(show.stdout)).toMatchObject({ id, status: 'denied', deniedBy: ['bob'] });
  });

  it('runs an approved request on one repository only: a copy is a rollback on this machine', async () => {
    const target = join(dir, 'restored-5');
    const id = await ask(target);
    expect((await cli(['approve', id, ...as('alice')])).code).toBe(0);
    const copy = join(dir, 'repo-copy');
    cpSync(repoDir, copy, { recursive: true });
    expect((await run(target, id)).code).toBe(0);
    // the copy shares the repository id: this machine has seen a longer audit log for it
    const r = await run(join(dir, 'restored-5b'), id, copy);
    expectStop(r, 'TRUST_ROLLBACK', /audit log/);
  });

  it("runs an agent's approved migration rollback: the backup it chose, once a human approved it", async () => {
    const tagged = await cli([
      'backup',
      '--storage-root',
      w.storageRoot,
      '--fole-version',
      '2.3.1',
      '--tag',
      'pre-migration:7',
      '--json',
      ...as('alice'),
    ]);
    expect(tagged.code, tagged.stderr).toBe(0);
    const taggedId = (JSON.parse(tagged.stdout) as { backupId: string }).backupId;
    const target = join(dir, 'rolled-back');
    const args = ['migration-rollback', '7', '--target', target, '--fole-version', '2.3.1', '--json', ...as('bot')];
    const asked = await cli(args);
    expect(asked.code, asked.stderr).toBe(3);
    const id = (JSON.parse(asked.stdout) as { stop: { code: string; requestId: string } }).stop.requestId;
    const show = await cli(['approvals', 'show', id, '--json', ...as('alice')]);
    expect(JSON.parse(show.stdout)).toMatchObject({
      op: 'migration-rollback',
      plan: { backupId: taggedId, migrationId: '7' },
    });
    expect((await cli(['approve', id, ...as('alice')])).code).toBe(0);
    const done = await cli([...args, '--request', id]);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ migrationId: '7', backupId: taggedId });
    expect(existsSync(join(target, 'core', 'core.db'))).toBe(true);
  });

  it("runs an agent's approved forget: exactly the backups approved, by id", async () => {
    const args = ['forget', backupId, '--allow-remove-all', '--json', ...as('bot')];
    const asked = await cli(args);
    expect(asked.code, asked.stderr).toBe(3);
    expect(asked.stderr).toContain('STOP APPROVAL_REQUIRED');
    const id = (JSON.parse(asked.stdout) as { stop: { requestId: string } }).stop.requestId;
    const show = await cli(['approvals', 'show', id, '--json', ...as('bob')]);
    expect(JSON.parse(show.stdout)).toMatchObject({ op: 'forget', plan: { remove: [{ backupId }] } });
    // an agent may not store a policy or prune under an approval
    const prune = await cli([...args.filter((a) => a !== '--json'), '--prune', '--request', id]);
    expect(prune.code).toBe(2);
    expect((await cli(['approve', id, ...as('bob')])).code).toBe(0);
    const done = await cli([...args, '--request', id]);
    expect(done.code, done.stderr).toBe(0);
    expect((JSON.parse(done.stdout) as { removed: string[] }).removed).toEqual([backupId]);
    expect(existsSync(join(repoDir, 'snapshots', backupId))).toBe(false);
  });

  it("runs an agent's approved prune: the packs approved, and only while its plan still holds", async () => {
    // data only one forgotten backup used (the default safety margin would keep its minutes-old packs)
    const extra = join(w.storageRoot, 'projects', 'p-prune');
    mkdirSync(extra, { recursive: true });
    writeFileSync(join(extra, 'only-here.bin'), randomBytes(200_000));
    const made = await cli([
      'backup',
      '--storage-root',
      w.storageRoot,
      '--fole-version',
      '2.3.1',
      '--json',
      ...as('alice'),
    ]);
    expect(made.code, made.stderr).toBe(0);
    rmSync(extra, { recursive: true });
    const madeId = (JSON.parse(made.stdout) as { backupId: string }).backupId;
    expect((await cli(['forget', madeId, ...as('alice')])).code).toBe(0);
    const args = ['prune', '--min-pack-age', '0', '--json', ...as('bot')];
    const asked = await cli(args);
    expectStop(asked, 'APPROVAL_REQUIRED', /prune by bot \(agent\) needs 1 human approval/);
    const id = (JSON.parse(asked.stdout) as { stop: { requestId: string } }).stop.requestId;
    const show = await cli(['approvals', 'show', id, '--json', ...as('bob')]);
    const plan = (JSON.parse(show.stdout) as { plan: { op: string; remove: string[]; backups: string[] } }).plan;
    expect(plan.op).toBe('prune');
    expect(plan.backups).not.toContain(madeId);
    expect(plan.remove.length).toBeGreaterThan(0);
    const approved = await cli(['approve', id, ...as('bob')]);
    expect(approved.code, approved.stderr).toBe(0);
    // other options are another plan
    const other = await cli([...args, '--repack-threshold', '50', '--request', id]);
    expectStop(other, 'APPROVAL_REQUIRED', /the plan computed now differs from the one approved/);
    const id2 = (JSON.parse((await cli(args)).stdout) as { stop: { requestId: string } }).stop.requestId;
    expect((await cli(['approve', id2, ...as('alice')])).code).toBe(0);
    const done = await cli([...args, '--request', id2]);
    expect(done.code, done.stderr).toBe(0);
    expect((JSON.parse(done.stdout) as { plan: { removePacks: number } }).plan.removePacks).toBe(plan.remove.length);
    // run again, it finds nothing left to delete, before it would find the request used
    const again = await cli([...args, '--request', id2]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('nothing to approve');
  });

  it('refuses to run when the clock is earlier than the newest audit entry', async () => {
    const repo = await w.openRepo();
    try {
      await appendAudit(
        repo,
        {
          time: new Date(Date.now() + 3_600_000).toISOString(),
          actor: { name: 'clock-test', kind: 'human', authenticated: false },
          host: 'test',
          op: 'list',
          args: [],
          commitments: {},
          result: { status: 'ok' },
          backupIds: [],
          counts: {},
          durationMs: 0,
          registryHead: null,
          approvals: [],
        },
        [],
        undefined,
      );
    } finally {
      await repo.close();
    }
    const r = await cli([...restoreArgs(join(dir, 'restored-6')), ...as('bot')], {
      FOLE_BACKUP_STATE_DIR: join(dir, 'state-clock'),
    });
    expectStop(r, 'CLOCK_SKEW', /earlier than the newest audit entry/);
  });
});
