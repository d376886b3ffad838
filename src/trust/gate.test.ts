/**
 * The gate is the one path every entry point takes: without a registry the caller is the single operator; with
 * one, the caller must prove a registered, current identity with a fresh request signed for this operation on
 * this registry, and then hold the operation's permission on its scope.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST_KDF, TEST_PASSWORD } from '../../test/repo-helpers.js';
import { caught, registered, type TestActor, testActor } from '../../test/trust-helpers.js';
import { MemoryBackend } from '../backend/memory.js';
import { StopError } from '../errors.js';
import { currentUser } from '../host/current-user.js';
import { Repository } from '../repository/repository.js';
import { PAYLOAD_TYPE, pae, signEnvelope } from './envelope.js';
import { authenticate, openGate, REQUEST_WINDOW_MS, requirePermission, signRequest } from './gate.js';
import { RequestNonces } from './request-nonces.js';
import type { OperationName } from './operations.js';
import type { Scope } from './permissions.js';
import { entryValue, type RegistryState } from './registry.js';
import { appendRegistry, createRegistry, registryObjectName } from './registry-store.js';

const alice = testActor('alice');
const opr = testActor('opr');
const aud = testActor('aud');
const bot = testActor('bot');
const owner = testActor('owner');
const gone = testActor('gone');
const NOW = new Date('2026-03-01T12:00:00.000Z');

let stateDir: string;
let repo: Repository;
let registry: RegistryState;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'fole-gate-'));
  repo = await Repository.init(new MemoryBackend(), TEST_PASSWORD, { kdf: FAST_KDF });
  let s = await createRegistry(repo, { name: 'alice', publicKey: alice.signer.publicKey }, NOW);
  const add = async (a: TestActor, kind: 'human' | 'agent', role: 'sysadmin' | 'operator' | 'auditor' | 'none') => {
    s = await appendRegistry(repo, s, { op: 'add', actor: registered(a, kind, role) }, alice, NOW);
  };
  await add(opr, 'human', 'operator');
  await add(aud, 'human', 'auditor');
  await add(bot, 'agent', 'sysadmin');
  await add(owner, 'human', 'none');
  await add(gone, 'human', 'operator');
  s = await appendRegistry(
    repo,
    s,
    { op: 'grant', name: 'owner', permission: 'backup.restore', project: 'P1' },
    alice,
    NOW,
  );
  s = await appendRegistry(repo, s, { op: 'remove', name: 'gone' }, alice, NOW);
  registry = s;
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

const gate = (a: TestActor | undefined, op: OperationName, scope: Scope = {}, now = NOW) =>
  openGate(repo, a === undefined ? {} : { actor: a.name, signer: a.signer }, op, scope, { stateDir, now });

async function denied(p: () => Promise<unknown> | unknown, code = 'PERMISSION_DENIED'): Promise<StopError> {
  const err = await caught(p);
  if (!(err instanceof StopError)) throw err;
  expect(err.code).toBe(code);
  return err;
}

describe('single-operator mode (no registry)', () => {
  it('lets the caller in as an unauthenticated sysadmin, named as they say or as user@host', async () => {
    const plain = await Repository.init(new MemoryBackend(), TEST_PASSWORD, { kdf: FAST_KDF });
    const ctx = await openGate(plain, {}, 'forget', {}, { stateDir });
    expect([ctx.mode, ctx.registry, ctx.request]).toEqual(['single-operator', undefined, undefined]);
    const who = `${currentUser()}@${hostname()}`;
    expect(ctx.principal).toEqual({ name: who, kind: 'human', role: 'sysadmin', grants: [], authenticated: false });
    const named = await openGate(plain, { actor: 'ops' }, 'key-add', {}, { stateDir });
    expect(named.principal).toMatchObject({ name: 'ops', role: 'sysadmin', authenticated: false });
  });
});

describe('registry mode', () => {
  it('lets a registered actor in with a request it signed, authenticated', async () => {
    const ctx = await gate(opr, 'backup');
    expect(ctx.mode).toBe('registry');
    expect(ctx.registry?.head).toEqual(registry.head);
    expect(ctx.principal).toEqual({ name: 'opr', kind: 'human', role: 'operator', grants: [], authenticated: true });
    // the request kept for the audit log verifies on its own
    expect(authenticate(registry, ctx.request, 'backup', NOW).name).toBe('opr');
  });

  it('refuses a caller without credentials, or with a name but no key', async () => {
    const err = await denied(() => gate(undefined, 'list'));
    expect(err.message).toBe('this repository has an actor registry: listing backups needs a registered actor');
    await denied(() => openGate(repo, { actor: 'alice' }, 'list', {}, { stateDir, now: NOW }));
    await denied(() => openGate(repo, { signer: alice.signer }, 'list', {}, { stateDir, now: NOW }));
  });

  it('refuses a registered name with another key', async () => {
    const err = await denied(() =>
      openGate(repo, { actor: 'alice', signer: opr.signer }, 'list', {}, { stateDir, now: NOW }),
    );
    expect(err.message).toBe('cannot prove who is asking: alice is not a registered actor with the key given');
    // a key nobody registered
    await denied(() =>
      openGate(repo, { actor: 'opr', signer: testActor('x').signer }, 'list', {}, { stateDir, now: NOW }),
    );
  });

  it('refuses an unknown actor and a removed one alike', async () => {
    const unknown = await denied(() => gate(testActor('zed'), 'list'));
    expect(unknown.message).toBe('cannot prove who is asking: zed is not a registered actor with the key given');
    const removed = await denied(() => gate(gone, 'list'));
    expect(removed.message).toBe('cannot prove who is asking: gone is not a registered actor with the key given');
  });

  it('refuses an operator forget, naming the permission and who can grant it', async () => {
    const err = await denied(() => gate(opr, 'forget'));
    expect(err.message).toBe(
      'forgetting backups needs permission backup.forget: opr (role operator) does not hold backup.forget',
    );
    expect(err.hint).toBe('a sysadmin (alice) can grant it: fole-backup actor grant opr backup.forget');
    for (const op of ['prune', 'unlock'] as const) await denied(() => gate(opr, op));
  });

  it('refuses an auditor a backup, and lets it verify', async () => {
    const err = await denied(() => gate(aud, 'backup'));
    expect(err.message).toBe('a backup needs permission backup.create: aud (role auditor) does not hold backup.create');
    await expect(gate(aud, 'verify')).resolves.toMatchObject({ principal: { name: 'aud', role: 'auditor' } });
  });

  it('refuses an agent, even a sysadmin one, what only a human may do', async () => {
    for (const op of ['key-add', 'actor-add', 'actor-grant'] as const) {
      const err = await denied(() => gate(bot, op));
      expect(err.message).toMatch(/: an agent may never hold (backup\.keys|actors\.admin)$/);
      expect(err.hint).toBe('only a human can do this');
    }
    // removing locks is a human decision: the agent may not do it at all
    const unlock = await denied(() => gate(bot, 'unlock'), 'AMBIGUOUS_INTENT');
    expect(unlock.message).toBe('removing locks is a human decision: bot is an agent');
    await expect(gate(bot, 'prune-preview')).resolves.toMatchObject({ approvalsRequired: 0 });
    // pruning, forgetting and restoring go through a human's approval of the exact plan
    await expect(gate(bot, 'prune')).resolves.toMatchObject({ approvalsRequired: 1 });
    await expect(gate(bot, 'forget')).resolves.toMatchObject({ principal: { kind: 'agent' }, approvalsRequired: 1 });
    await expect(gate(bot, 'restore')).resolves.toMatchObject({ approvalsRequired: 1 });
  });

  it('holds a project grant to its project: never the whole repository, nor another project', async () => {
    await expect(gate(owner, 'restore', { project: 'P1' })).resolves.toMatchObject({ principal: { name: 'owner' } });
    const whole = await denied(() => gate(owner, 'restore'));
    expect(whole.message).toBe(
      'a restore needs permission backup.restore: owner holds backup.restore only on project P1, not on the whole ' +
        'repository',
    );
    const other = await denied(() => gate(owner, 'restore', { project: 'P2' }));
    expect(other.message).toMatch(/not on project P2$/);
    await denied(() => gate(owner, 'list', { project: 'P1' }));
  });

  it('refuses a registry whose genesis names another repository', async () => {
    const other = await Repository.init(new MemoryBackend(), TEST_PASSWORD, { kdf: FAST_KDF });
    const body = {
      v: 1 as const,
      trustId: 'ab'.repeat(16),
      seq: 0,
      prev: null,
      time: NOW.toISOString(),
      signer: 'alice',
      action: {
        op: 'genesis' as const,
        repositoryId: repo.config.id,
        actor: registered(alice, 'human', 'sysadmin'),
      },
    };
    const name = registryObjectName(0);
    const env = signEnvelope(PAYLOAD_TYPE.registryEntry, entryValue(body), []);
    await other.createJson('registry', name, env, Buffer.from(`fole-registry:${name}`));
    const err = await caught(() => openGate(other, { actor: 'alice', signer: alice.signer }, 'list', {}, { stateDir }));
    expect((err as StopError).code).toBe('TRUST_BROKEN');
    expect(err.message).toBe('the actor registry belongs to another repository (its repository id differs)');
  });
});

describe('authenticating a request', () => {
  it('accepts a request up to 5 minutes either side of now, and refuses one beyond', () => {
    for (const off of [0, REQUEST_WINDOW_MS, -REQUEST_WINDOW_MS, 60_000]) {
      const req = signRequest(opr.signer, registry.trustId, 'opr', 'list', new Date(NOW.getTime() + off));
      expect(authenticate(registry, req, 'list', NOW).name, String(off)).toBe('opr');
    }
    for (const off of [10 * 60_000, -10 * 60_000, REQUEST_WINDOW_MS + 1, -REQUEST_WINDOW_MS - 1]) {
      const req = signRequest(opr.signer, registry.trustId, 'opr', 'list', new Date(NOW.getTime() + off));
      const err = (() => {
        try {
          authenticate(registry, req, 'list', NOW);
        } catch (e) {
          return e as StopError;
        }
        throw new Error(`accepted a request ${off} ms off`);
      })();
      expect(err.code).toBe('PERMISSION_DENIED');
      expect(err.message).toBe(
        'cannot prove who is asking: the request is not fresh (signed more than 5 minutes from now)',
      );
    }
  });

  it('refuses a request signed for another operation or another registry', async () => {
    const forList = signRequest(opr.signer, registry.trustId, 'opr', 'list', NOW);
    const err = await denied(() => authenticate(registry, forList, 'backup', NOW));
    expect(err.message).toBe('cannot prove who is asking: the request was signed for list, not backup');
    const foreign = signRequest(opr.signer, 'cd'.repeat(16), 'opr', 'list', NOW);
    expect((await denied(() => authenticate(registry, foreign, 'list', NOW))).message).toMatch(
      /for another repository$/,
    );
  });

  it('holds a request to the scope it was signed for: not another project, nor the whole repository', async () => {
    const forP1 = signRequest(opr.signer, registry.trustId, 'opr', 'restore', NOW, { project: 'P1' });
    expect(authenticate(registry, forP1, 'restore', NOW, { project: 'P1' }).name).toBe('opr');
    expect((await denied(() => authenticate(registry, forP1, 'restore', NOW, { project: 'P2' }))).message).toBe(
      'cannot prove who is asking: the request was signed for project P1',
    );
    expect((await denied(() => authenticate(registry, forP1, 'restore', NOW))).message).toMatch(/for project P1$/);
    const whole = signRequest(opr.signer, registry.trustId, 'opr', 'restore', NOW);
    expect((await denied(() => authenticate(registry, whole, 'restore', NOW, { project: 'P1' }))).message).toMatch(
      /signed for the whole repository$/,
    );
  });

  it('refuses a request whose actor was changed after signing, or that is not a signed request', async () => {
    const req = signRequest(opr.signer, registry.trustId, 'opr', 'list', NOW);
    const body = JSON.parse(Buffer.from(req.payload, 'base64').toString('utf8')) as Record<string, string>;
    const claimed = signEnvelope(PAYLOAD_TYPE.request, { ...body, actor: 'alice' }, []);
    const swapped = { ...claimed, signatures: req.signatures };
    expect((await denied(() => authenticate(registry, swapped, 'list', NOW))).message).toMatch(
      /alice is not a registered actor with the key given/,
    );
    const asEntry = { ...req, payloadType: PAYLOAD_TYPE.registryEntry };
    expect((await denied(() => authenticate(registry, asEntry, 'list', NOW))).message).toMatch(/not a signed request$/);
    expect((await denied(() => authenticate(registry, null, 'list', NOW))).message).toMatch(/not a signed request$/);
    // validly signed, but not canonical JSON
    const text = Buffer.from(`${JSON.stringify(body, null, 1)}`);
    const loose = {
      payloadType: PAYLOAD_TYPE.request,
      payload: text.toString('base64'),
      signatures: [
        { keyid: opr.signer.fingerprint, sig: opr.signer.sign(pae(PAYLOAD_TYPE.request, text)).toString('base64') },
      ],
    };
    expect((await denied(() => authenticate(registry, loose, 'list', NOW))).message).toMatch(/a malformed request$/);
  });

  it('refuses a request a second time when given the nonces seen, and forgets them once stale', async () => {
    const nonces = new RequestNonces(REQUEST_WINDOW_MS);
    const req = signRequest(opr.signer, registry.trustId, 'opr', 'list', NOW);
    expect(authenticate(registry, req, 'list', NOW, {}, nonces).name).toBe('opr');
    const replay = await denied(() =>
      authenticate(registry, req, 'list', new Date(NOW.getTime() + 60_000), {}, nonces),
    );
    expect(replay.message).toMatch(/the request was used before \(a replay\)/);
    // another request of the same actor is another nonce; without the cache the replay is not caught
    expect(
      authenticate(registry, signRequest(opr.signer, registry.trustId, 'opr', 'list', NOW), 'list', NOW, {}, nonces)
        .name,
    ).toBe('opr');
    expect(authenticate(registry, req, 'list', NOW).name).toBe('opr');
    expect(nonces.size).toBe(2);
  });

  it('refuses new requests once the nonces of one window fill it, rather than forget one early', async () => {
    const nonces = new RequestNonces(REQUEST_WINDOW_MS, 2);
    for (let i = 0; i < 2; i++) {
      authenticate(registry, signRequest(opr.signer, registry.trustId, 'opr', 'list', NOW), 'list', NOW, {}, nonces);
    }
    const third = signRequest(opr.signer, registry.trustId, 'opr', 'list', NOW);
    expect((await denied(() => authenticate(registry, third, 'list', NOW, {}, nonces))).message).toMatch(
      /too many requests/,
    );
    // once the first two can no longer be fresh they are forgotten, and room is made
    const later = new Date(NOW.getTime() + REQUEST_WINDOW_MS + 1);
    const fourth = signRequest(opr.signer, registry.trustId, 'opr', 'list', later);
    expect(authenticate(registry, fourth, 'list', later, {}, nonces).name).toBe('opr');
    expect(nonces.size).toBe(1);
  });
});

describe('requirePermission', () => {
  it('lets anyone through an operation that needs no permission (making the registry)', async () => {
    const ctx = await gate(aud, 'verify');
    expect(() => requirePermission(ctx, 'actor-bootstrap')).not.toThrow();
    expect(() => requirePermission(ctx, 'key-list')).toThrow(/listing keys needs permission backup\.keys/);
  });
});
