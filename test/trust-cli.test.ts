/**
 * Actors and permissions end to end through the real CLI: keys made by
 * `actor keygen`, a registry made by `init --admin`, every refusal a real
 * command meets (no identity, a wrong key, a missing permission, an agent's
 * destructive command, a forged or rolled-back registry) with its exit code,
 * STOP code and message; each machine's pin kept in a directory of the test's own.
 */
import { chmodSync, cpSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signerFromPem } from '../src/trust/actor-key.js';
import { PAYLOAD_TYPE, signEnvelope } from '../src/trust/envelope.js';
import { entryValue } from '../src/trust/registry.js';
import { readRegistry } from '../src/trust/registry-store.js';
import { runCli, type CliResult } from './cli-helpers.js';
import { expectStop, makeTrustWorld, type TrustWorld } from './trust-world.js';

let w: TrustWorld;
let dir: string;
let repoDir: string;
let backupId: string;
const env = (): Record<string, string> => w.env();
const key = (name: string): string => w.key(name);
const as = (name: string, keyOf = name): string[] => ['--actor', name, '--actor-key', key(keyOf)];
const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => w.cli(args, extra);

beforeAll(async () => {
  // a repository with one backup, then given a registry with alice as its first sysadmin
  w = await makeTrustWorld('fole-trust-cli-', ['bob', 'bot', 'olga', 'pat']);
  ({ dir, repoDir, backupId } = w);
  await w.add('bob', 'human', 'sysadmin');
  await w.add('bot', 'agent', 'operator');
  await w.add('olga', 'human', 'operator');
  await w.add('pat', 'human', 'none');
}, 120_000);

afterAll(() => w.cleanup());

describe('actor keygen', () => {
  it('writes a private key only its owner can read and a public key beside it, never over a file', async () => {
    expect(statSync(key('alice')).mode & 0o777).toBe(0o600);
    expect(statSync(`${key('alice')}.pub`).mode & 0o777).toBe(0o644);
    const again = await runCli(['actor', 'keygen', '--out', key('alice')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
  });

  it('encrypts a key with a passphrase, and that key needs it', async () => {
    const out = join(dir, 'enc.key');
    const r = await runCli(['actor', 'keygen', '--out', out, '--passphrase'], {
      FOLE_BACKUP_ACTOR_KEY_PASSPHRASE: 'pass phrase',
    });
    expect(r.code, r.stderr).toBe(0);
    // no passphrase: a usage error, not a hang waiting on a terminal
    const none = await cli(['list', '--actor', 'x', '--actor-key', out]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/passphrase-protected/);
    const wrong = await cli(['list', '--actor', 'x', '--actor-key', out], { FOLE_BACKUP_ACTOR_KEY_PASSPHRASE: 'nope' });
    expectStop(wrong, 'PERMISSION_DENIED', /wrong passphrase/);
  });
});

describe('who is asking', () => {
  it('refuses a command without an identity once the repository has a registry', async () => {
    const r = await cli(['list']);
    expectStop(r, 'PERMISSION_DENIED', /has an actor registry: listing backups needs a registered actor/);
  });

  it('refuses a name with another actor’s key, an unknown name and a key others can read', async () => {
    expectStop(
      await cli(['list', ...as('alice', 'bot')]),
      'PERMISSION_DENIED',
      /alice is not a registered actor with the key given/,
    );
    expectStop(await cli(['list', ...as('mallory', 'bot')]), 'PERMISSION_DENIED', /mallory is not a registered actor/);
    const loose = join(dir, 'loose.key');
    cpSync(key('olga'), loose);
    chmodSync(loose, 0o644);
    const r = await cli(['list', '--actor', 'olga', '--actor-key', loose]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lets others read it/);
  });

  it('takes the identity from the environment as well', async () => {
    const r = await cli(['list', '--json'], { FOLE_BACKUP_ACTOR: 'olga', FOLE_BACKUP_ACTOR_KEY: key('olga') });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(1);
  });

  it('has no --actor-kind any more: the kind comes from the registry', async () => {
    const r = await cli(['backup', '--actor-kind', 'human', ...as('olga')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--actor-kind'/);
  });
});

describe('permissions', () => {
  it('an operator lists and verifies, but may not forget, prune or manage keys', async () => {
    expect((await cli(['verify', backupId, ...as('olga')])).code).toBe(0);
    expectStop(await cli(['prune', ...as('olga')]), 'PERMISSION_DENIED', /pruning needs permission backup\.forget/);
    const f = await cli(['forget', backupId, ...as('olga')]);
    expectStop(f, 'PERMISSION_DENIED', /backup\.forget/);
    expect(f.stderr).toMatch(/a sysadmin \(alice, bob\) can grant it: fole-backup actor grant olga backup\.forget/);
    expectStop(await cli(['key', 'list', ...as('olga')]), 'PERMISSION_DENIED', /backup\.keys/);
    expectStop(
      await cli([
        'actor',
        'add',
        'eve',
        '--kind',
        'human',
        '--role',
        'sysadmin',
        '--public-key',
        `${key('pat')}.pub`,
        ...as('olga'),
      ]),
      'PERMISSION_DENIED',
      /actors\.admin/,
    );
  });

  it('a grant scoped to one project does not allow the whole repository', async () => {
    const g = await cli(['actor', 'grant', 'pat', 'backup.read', '--project', 'p1', ...as('alice')]);
    expect(g.code, g.stderr).toBe(0);
    expectStop(
      await cli(['list', ...as('pat')]),
      'PERMISSION_DENIED',
      /pat holds backup\.read only on project p1, not on the whole repository/,
    );
    // a global grant does, and revoking it takes it back
    expect((await cli(['actor', 'grant', 'pat', 'backup.read', ...as('bob')])).code).toBe(0);
    expect((await cli(['list', ...as('pat')])).code).toBe(0);
    expect((await cli(['actor', 'revoke', 'pat', 'backup.read', ...as('bob')])).code).toBe(0);
    expectStop(await cli(['list', ...as('pat')]), 'PERMISSION_DENIED', /backup\.read/);
  });

  it('an agent never receives approve, keys or actor admin, and may not make a destructive decision', async () => {
    for (const p of ['backup.approve', 'backup.keys', 'actors.admin']) {
      const r = await cli(['actor', 'grant', 'bot', p, ...as('alice')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`an agent may never be granted ${p}`);
    }
    expect((await cli(['actor', 'grant', 'bot', 'backup.restore', ...as('alice')])).code).toBe(0);
    expect((await cli(['actor', 'grant', 'bot', 'backup.forget', ...as('alice')])).code).toBe(0);
    const target = join(dir, 'restored');
    expectStop(
      await cli([...w.restoreArgs(target), ...as('bot')]),
      'APPROVAL_REQUIRED',
      /restore by bot \(agent\) needs 1 human approval/,
    );
    expect(readdirSync(dir)).not.toContain('restored');
    expectStop(
      await cli(['forget', backupId, '--allow-remove-all', ...as('bot')]),
      'APPROVAL_REQUIRED',
      /forget by bot \(agent\)/,
    );
    // nothing is old enough to delete yet: there is no plan to approve
    const prune = await cli(['prune', ...as('bot')]);
    expect(prune.code, prune.stderr).toBe(2);
    expect(prune.stderr).toContain('this prune deletes no pack: there is nothing to approve');
    expectStop(await cli(['unlock', ...as('bot')]), 'AMBIGUOUS_INTENT', /removing locks is a human decision/);
    // correcting a damaged repository too (spec §10); seeing what a repair would do is not
    expectStop(await cli(['repair', ...as('bot')]), 'AMBIGUOUS_INTENT', /a repair is a human decision/);
    const preview = await cli(['repair', '--dry-run', ...as('bot')]);
    expect(preview.code, preview.stderr).toBe(0);
    expect(preview.stdout).toContain('nothing to repair');
    // a dry run only reads: allowed
    const dry = await cli(['forget', backupId, '--dry-run', '--allow-remove-all', ...as('bot')]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(readdirSync(join(repoDir, 'snapshots'))).toHaveLength(1);
  });

  it('a backup records the registered actor and its kind, not what the caller claims', async () => {
    const { root } = { root: join(dir, 'work', 'src') };
    const r = await cli(['backup', '--storage-root', root, '--fole-version', '2.3.1', '--json', ...as('bot')]);
    expect(r.code, r.stderr).toBe(0);
    const id = (JSON.parse(r.stdout) as { backupId: string }).backupId;
    const m = await cli(['manifest', id, ...as('olga')]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toMatch(/"createdBy": "bot"/);
  });
});

describe('the registry itself', () => {
  it('keeps the last sysadmin, and reuses no name or key', async () => {
    expect((await cli(['actor', 'remove', 'bob', ...as('alice')])).code).toBe(0);
    const last = await cli(['actor', 'remove', 'alice', ...as('alice')]);
    expect(last.code).toBe(2);
    expect(last.stderr).toMatch(/alice is the last sysadmin/);
    // bob was removed: his key proves nothing now, and his name is not given out again
    expectStop(await cli(['list', ...as('bob')]), 'PERMISSION_DENIED', /bob is not a registered actor/);
    const reuse = await cli([
      'actor',
      'add',
      'bob',
      '--kind',
      'human',
      '--role',
      'auditor',
      '--public-key',
      `${key('pat')}.pub`,
      ...as('alice'),
    ]);
    expect(reuse.stderr).toMatch(/name bob is already taken/);
    const sameKey = await cli([
      'actor',
      'add',
      'carol',
      '--kind',
      'human',
      '--role',
      'auditor',
      '--public-key',
      `${key('bob')}.pub`,
      ...as('alice'),
    ]);
    expect(sameKey.stderr).toMatch(/bob already has that public key/);
    const list = await cli(['actor', 'list', '--json', ...as('olga')]);
    const l = JSON.parse(list.stdout) as { actors: { name: string; removed: boolean }[]; sysadmins: string[] };
    expect(l.actors.map((a) => [a.name, a.removed])).toEqual([
      ['alice', false],
      ['bob', true],
      ['bot', false],
      ['olga', false],
      ['pat', false],
    ]);
    expect(l.sysadmins).toEqual(['alice']);
  });

  it('refuses a second bootstrap', async () => {
    const r = await cli(['actor', 'bootstrap', '--admin', 'pat', '--admin-public-key', `${key('pat')}.pub`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already has an actor registry/);
  });

  it('refuses an entry a non-sysadmin signed, even one holding the repository password', async () => {
    const repo = await w.openRepo();
    try {
      const state = await readRegistry(repo);
      if (state === undefined) throw new Error('no registry');
      const olga = signerFromPem(await readFile(key('olga'), 'utf8'), 'olga');
      const seq = state.head.seq + 1;
      const name = String(seq).padStart(10, '0');
      // well-formed and in its place, but signed by an operator
      const forged = entryValue({
        ...{ v: 1, trustId: state.trustId, seq, prev: state.head.digest, time: new Date().toISOString() },
        ...{ signer: 'olga', action: { op: 'grant', name: 'olga', permission: 'backup.forget' } },
      });
      const aad = Buffer.from(`fole-registry:${name}`);
      await repo.createJson('registry', name, signEnvelope(PAYLOAD_TYPE.registryEntry, forged, [olga]), aad);
      const r = await cli(['list', ...as('olga')]);
      expectStop(r, 'TRUST_BROKEN', new RegExp(`registry entry ${seq}: signer olga is not a human sysadmin`));
      await repo.backend.remove({ type: 'registry', name });
    } finally {
      await repo.close();
    }
  });

  it('never falls back to single-operator mode or an older registry on a machine that saw a newer one', async () => {
    const saved = join(dir, 'registry-saved');
    cpSync(join(repoDir, 'registry'), saved, { recursive: true });
    const entries = readdirSync(saved).sort();
    try {
      rmSync(join(repoDir, 'registry'), { recursive: true });
      expectStop(await cli(['list']), 'TRUST_ROLLBACK', /is gone, but this machine verified one/);
      expectStop(
        await cli(['actor', 'bootstrap', '--admin', 'pat', '--admin-public-key', `${key('pat')}.pub`]),
        'TRUST_ROLLBACK',
        /is gone/,
      );
      // an older prefix: bob not yet removed, and his key would work again
      rmSync(join(repoDir, 'registry'), { recursive: true, force: true });
      cpSync(saved, join(repoDir, 'registry'), { recursive: true });
      rmSync(join(repoDir, 'registry', entries.at(-1) as string));
      expectStop(await cli(['list', ...as('olga')]), 'TRUST_ROLLBACK', /fewer than the \d+ verified here/);
      // another machine (a fresh state directory) has nothing pinned: it accepts what it is shown
      const fresh = await cli(['list', ...as('olga')], { FOLE_BACKUP_STATE_DIR: join(dir, 'other-machine') });
      expect(fresh.code, fresh.stderr).toBe(0);
    } finally {
      rmSync(join(repoDir, 'registry'), { recursive: true, force: true });
      cpSync(saved, join(repoDir, 'registry'), { recursive: true });
    }
    expect((await cli(['list', ...as('olga')])).code).toBe(0);
  });
});

describe('init --admin', () => {
  it('makes a repository with a registry in one step; the key holder alone can no longer act', async () => {
    const fresh = join(dir, 'fresh-repo');
    const r = await runCli(
      ['init', '--repo', fresh, '--admin', 'alice', '--admin-public-key', `${key('alice')}.pub`, '--json'],
      env(),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ sysadmin: 'alice', trustId: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expectStop(await runCli(['list', '--repo', fresh], env()), 'PERMISSION_DENIED', /registered actor/);
    expect((await runCli(['list', '--repo', fresh, ...as('alice')], env())).code).toBe(0);
    // the making of the repository and of its registry is the first entry of its audit log
    const log = await runCli(['audit', 'log', '--json', '--repo', fresh, ...as('alice')], env());
    const first = (JSON.parse(log.stdout) as { entries: { op: string; registryHead: unknown }[] }).entries[0];
    expect(first).toMatchObject({ op: 'init', registryHead: { seq: 0 } });
    const half = await runCli(['init', '--repo', join(dir, 'half'), '--admin', 'alice'], env());
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/--admin and --admin-public-key go together/);
  });
});
