/**
 * `copy` carries the source's audit log and actor registry through the real CLI: carried and verified on the
 * target, then only the new entries, then read and verified from the target alone once the source is gone; the
 * source's actors (and an approval one of them would give) count for nothing in the target; a source whose log
 * was rewritten since the last copy is a STOP that carries nothing.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backedUpFoleTree } from './restore-helpers.js';
import { runCli, type CliResult } from './cli-helpers.js';
import { expectStop, makeTrustWorld, type TrustWorld } from './trust-world.js';
import { TEST_PASSWORD } from './repo-helpers.js';

const B_PASSWORD = 'the offsite password';

interface Trail {
  origin: string;
  registryEntries: { carried: number; total: number };
  auditEntries: { carried: number; total: number };
}

/** The source world: alice (sysadmin in both repositories, one key), carol (a sysadmin of the source only). */
let w: TrustWorld;
let repoB: string;

const onB = (args: string[], who = 'alice', extra: Record<string, string> = {}): Promise<CliResult> =>
  w.cli([...args, ...w.as(who)], { FOLE_BACKUP_PASSWORD: B_PASSWORD, ...extra }, repoB);

async function copy(): Promise<Trail> {
  const r = await runCli(['copy', '--from-repo', w.repoDir, '--to-repo', repoB, '--json', ...w.as('alice')], {
    ...w.env(),
    FOLE_BACKUP_PASSWORD: B_PASSWORD,
    FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD,
  });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { trail: Trail }).trail;
}

beforeAll(async () => {
  w = await makeTrustWorld('fole-copy-trail-', ['carol', 'bot']);
  await w.add('carol', 'human', 'sysadmin');
  repoB = join(w.dir, 'offsite');
  const env = { ...w.env(), FOLE_BACKUP_PASSWORD: B_PASSWORD };
  const made = await runCli(['init', '--repo', repoB, '--from-repo', w.repoDir], env);
  expect(made.code, made.stderr).toBe(0);
  const boot = await w.cli(
    ['actor', 'bootstrap', '--admin', 'alice', '--admin-public-key', `${w.key('alice')}.pub`],
    { FOLE_BACKUP_PASSWORD: B_PASSWORD },
    repoB,
  );
  expect(boot.code, boot.stderr).toBe(0);
  const bot = await onB([
    'actor',
    'add',
    'bot',
    '--kind',
    'agent',
    '--role',
    'operator',
    '--public-key',
    `${w.key('bot')}.pub`,
  ]);
  expect(bot.code, bot.stderr).toBe(0);
  expect((await onB(['actor', 'grant', 'bot', 'backup.restore'])).code).toBe(0);
}, 120_000);

afterAll(() => w.cleanup());

describe('copy carries the audit trail', () => {
  it('carries it, then only what is new, and it verifies from the target alone once the source is gone', async () => {
    const first = await copy();
    expect(first.registryEntries).toEqual({ carried: 2, total: 2 });
    expect(first.auditEntries.carried).toBe(first.auditEntries.total);
    expect(first.auditEntries.total).toBeGreaterThan(1);

    // three more commands on the source, a checkpoint of its log in a witness last; the next copy brings exactly
    // their entries
    const witness = join(w.dir, 'witness');
    const witnessEnv = { FOLE_BACKUP_WITNESS_PASSWORD: 'the witness password' };
    const made = await runCli(['init', '--repo', witness], { FOLE_BACKUP_PASSWORD: 'the witness password' });
    expect(made.code, made.stderr).toBe(0);
    const backup = ['backup', '--storage-root', w.storageRoot, '--fole-version', '2.3.1'];
    for (const args of [backup, ['verify', 'latest'], ['audit', 'checkpoint', '--witness', witness]]) {
      const r = await w.cli([...args, ...w.as('alice')], witnessEnv);
      expect(r.code, r.stderr).toBe(0);
    }
    const second = await copy();
    expect(second.origin).toBe(first.origin);
    expect(second.auditEntries).toEqual({ carried: 3, total: first.auditEntries.total + 3 });
    expect(second.registryEntries).toEqual({ carried: 0, total: 2 });
    expect((await copy()).auditEntries).toEqual({ carried: 0, total: second.auditEntries.total });

    rmSync(w.repoDir, { recursive: true, force: true });
    // the backup's STORAGE_ROOT came along as a disclosure; redacted here, the chain still verifies
    const backups = await onB(['audit', 'log', '--origin', first.origin, '--op', 'backup', '--json']);
    const [made1] = JSON.parse(backups.stdout).entries as { seq: number; disclosed: Record<string, string> }[];
    expect(made1?.disclosed.storageRoot).toBe(w.storageRoot);
    const redacted = await onB([
      'audit',
      'redact',
      String(made1?.seq),
      '--field',
      'storageRoot',
      '--origin',
      first.origin,
    ]);
    expect(redacted.code, redacted.stderr).toBe(0);
    const after = await onB(['audit', 'log', '--origin', first.origin, '--op', 'backup', '--json']);
    expect(JSON.parse(after.stdout).entries[0].disclosed).toEqual({});
    const verify = await onB(['audit', 'verify', '--origin', first.origin.slice(0, 8), '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    const v = JSON.parse(verify.stdout);
    // every entry but the bootstrap's, which nobody registered could sign yet, is signed by alice's key
    expect([v.ok, v.origin, v.entries, v.signed]).toEqual([
      true,
      first.origin,
      second.auditEntries.total,
      second.auditEntries.total - 1,
    ]);
    const human = await onB(['audit', 'verify', '--origin', first.origin]);
    expect(human.stdout).toContain(`audit log of ${first.origin} (carried here) OK`);
    const log = await onB(['audit', 'log', '--origin', first.origin, '--op', 'actor-add', '--json']);
    expect(log.code, log.stderr).toBe(0);
    const added = JSON.parse(log.stdout).entries as { log: string; signedBy: string; args: unknown[] }[];
    expect(added.map((e) => [e.log, e.signedBy, e.args[2]])).toEqual([[first.origin, 'alice', 'carol']]);
    // the target's own log is its own: the copies are in it, under its id
    const own = JSON.parse((await onB(['audit', 'log', '--op', 'copy-to', '--json'])).stdout).entries;
    expect(own).toHaveLength(3);
    expect(own.every((e: { log: string }) => e.log !== first.origin)).toBe(true);

    // the witness agrees with the carried log; cut back before the checkpointed entry, the witness catches it
    const witnessed = await onB(
      ['audit', 'verify', '--origin', first.origin, '--witness', witness, '--json'],
      'alice',
      witnessEnv,
    );
    expect(witnessed.code, witnessed.stderr).toBe(0);
    expect(JSON.parse(witnessed.stdout).witness.checkpoints).toBe(1);
    const checkpointed = first.auditEntries.total + 1;
    for (const f of readdirSync(join(repoB, 'witness'))) {
      const m = /\.audit\.(\d{10})/.exec(f);
      if (f.startsWith(first.origin) && m !== null && Number(m[1]) >= checkpointed) rmSync(join(repoB, 'witness', f));
    }
    expect((await onB(['audit', 'verify', '--origin', first.origin])).code).toBe(0);
    expectStop(
      await onB(['audit', 'verify', '--origin', first.origin, '--witness', witness], 'alice', witnessEnv),
      'TRUST_BROKEN',
      new RegExp(`truncated: the witness saw entry ${checkpointed}`),
    );

    const unknown = await onB(['audit', 'log', '--origin', 'ffffffff-0000']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`it holds the trails of: ${first.origin}`);
  }, 180_000);

  it("gives the source's actors nothing in the target: carol can neither act nor approve there", async () => {
    const target = join(w.dir, 'restored');
    const asked = await onB([...w.restoreArgs(target), '--json'], 'bot');
    expect(asked.code, asked.stderr).toBe(3);
    const requestId = JSON.parse(asked.stdout).stop.requestId as string;
    expectStop(await onB(['approve', requestId], 'carol'), 'PERMISSION_DENIED', /carol is not a registered actor/);
    expectStop(await onB(['actor', 'list'], 'carol'), 'PERMISSION_DENIED', /carol is not a registered actor/);
    expectStop(
      await onB([...w.restoreArgs(target), '--request', requestId], 'bot'),
      'APPROVAL_REQUIRED',
      /not approved/,
    );
    const actors = JSON.parse((await onB(['actor', 'list', '--json'])).stdout);
    expect(JSON.stringify(actors)).not.toContain('carol');
  }, 120_000);
});

describe('a source whose log was rewritten', () => {
  it('is a STOP that carries nothing and copies nothing', async () => {
    const dir = join(w.dir, 'rewritten');
    const a = await backedUpFoleTree(join(dir, 'work'));
    const b = join(dir, 'b');
    const env = { FOLE_BACKUP_PASSWORD: B_PASSWORD, FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD, ...stateOf(dir) };
    expect((await runCli(['init', '--repo', b, '--from-repo', a.repoDir], env)).code).toBe(0);
    const onA = { ...env, FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
    // the source's log so far: two commands run on it (the backup was made through the library)
    for (let i = 0; i < 2; i++) expect((await runCli(['list', '--repo', a.repoDir], onA)).code).toBe(0);
    const copyA = (): Promise<CliResult> => runCli(['copy', '--from-repo', a.repoDir, '--to-repo', b, '--json'], env);
    const first = await copyA();
    expect(first.code, first.stderr).toBe(0);
    const carried = readdirSync(join(b, 'witness')).sort();
    expect(carried.filter((n) => /\.audit\.\d{10}$/.test(n))).toHaveLength(2);

    // whoever holds the source's password removes its newest entry; the next command writes another in its place
    const audit = join(a.repoDir, 'audit');
    const newest = readdirSync(audit)
      .filter((f) => /^\d{10}$/.test(f))
      .sort()
      .at(-1) as string;
    for (const f of readdirSync(audit).filter((n) => n.startsWith(newest))) rmSync(join(audit, f));
    const listed = await runCli(['list', '--repo', a.repoDir], onA);
    expect(listed.code, listed.stderr).toBe(0);
    const second = await runCli(
      ['backup', '--repo', a.repoDir, '--storage-root', join(dir, 'work', 'src'), '--fole-version', '2.3.1'],
      onA,
    );
    expect(second.code, second.stderr).toBe(0);

    const refused = await copyA();
    expectStop(refused, 'TRUST_BROKEN', /audit entry \d+ of the source differs from the one carried \(rewritten\)/);
    expect(readdirSync(join(b, 'witness')).sort()).toEqual(carried);
    const snaps = readdirSync(join(b, 'snapshots'));
    expect(snaps).toEqual([a.backupId]);
  }, 180_000);
});

function stateOf(dir: string): Record<string, string> {
  return { FOLE_BACKUP_STATE_DIR: join(dir, 'state') };
}
