/**
 * Replay is what decides who is registered: every entry that breaks a rule must be refused, and named, so a
 * forged, reordered, spliced or rule-breaking registry is never half-believed. The entries here are real
 * envelopes signed with real keys; each refusal test changes one thing from a chain that replays.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { caught, registered, type TestActor, testActor } from '../../test/trust-helpers.js';
import type { ActorSigner } from './actor-key.js';
import type { CanonicalValue } from './canonical.js';
import { type Envelope, PAYLOAD_TYPE, pae, payloadDigest, signEnvelope } from './envelope.js';
import {
  activeSysadmins,
  applyEntry,
  RegistryError,
  type NewActor,
  type RegistryAction,
  type RegistryState,
  replayRegistry,
} from './registry.js';

const TIME = '2026-03-01T12:00:00.000Z';
const REPO_ID = '6f1c2f0e-8a55-4a4e-9d2a-6a8f0b1c2d3e';

const alice = testActor('alice');
const bob = testActor('bob');
const opr = testActor('opr');
const bot = testActor('bot');
const carol = testActor('carol');

type Body = Record<string, CanonicalValue>;

/** A registry chain under construction: each entry names the one before it and the chain's trust id. */
class Chain {
  readonly envelopes: Envelope[] = [];
  readonly trustId = randomBytes(16).toString('hex');

  /** The genesis entry registering `admin` as the first human sysadmin (unsigned, as createRegistry makes it). */
  genesis(admin: TestActor, patch: Body = {}): this {
    const body = {
      ...this.base(0, null, admin.name),
      action: { op: 'genesis', repositoryId: REPO_ID, actor: { ...registered(admin, 'human', 'sysadmin') } },
      ...patch,
    };
    this.envelopes.push(signEnvelope(PAYLOAD_TYPE.registryEntry, body, []));
    return this;
  }

  /** The next entry doing `action`, signed by `by` (or by `signers`), not yet appended. */
  next(action: RegistryAction | Body, by: TestActor, patch: Body = {}, signers: ActorSigner[] = [by.signer]): Envelope {
    const last = this.envelopes[this.envelopes.length - 1];
    const prev = last === undefined ? null : payloadDigest(last);
    const body = { ...this.base(this.envelopes.length, prev, by.name), action: action as Body, ...patch };
    return signEnvelope(PAYLOAD_TYPE.registryEntry, body, signers);
  }

  add(action: RegistryAction | Body, by: TestActor, patch: Body = {}): this {
    this.envelopes.push(this.next(action, by, patch));
    return this;
  }

  replay(): RegistryState {
    return replayRegistry(this.envelopes);
  }

  /** The error replaying the chain plus `extra` throws. */
  async refusal(...extra: Envelope[]): Promise<RegistryError> {
    const err = await caught(() => replayRegistry([...this.envelopes, ...extra]));
    if (!(err instanceof RegistryError)) throw err;
    return err;
  }

  private base(seq: number, prev: string | null, signer: string): Body {
    return { v: 1, trustId: this.trustId, seq, prev, time: TIME, signer };
  }
}

/** Alice (genesis), bob a second human sysadmin, opr an operator, bot an agent with role sysadmin. */
function team(): Chain {
  return new Chain()
    .genesis(alice)
    .add({ op: 'add', actor: registered(bob, 'human', 'sysadmin') }, alice)
    .add({ op: 'add', actor: registered(opr, 'human', 'operator') }, alice)
    .add({ op: 'add', actor: registered(bot, 'agent', 'sysadmin') }, bob);
}

async function expectRefused(p: Promise<RegistryError>, seq: number, reason: string | RegExp): Promise<void> {
  const err = await p;
  expect(err.seq).toBe(seq);
  if (typeof reason === 'string') expect(err.reason).toBe(reason);
  else expect(err.reason).toMatch(reason);
  expect(err.message).toBe(`registry entry ${seq}: ${err.reason}`);
}

describe('replaying a valid registry', () => {
  it('gives the actors, their grants and removals, the head and every digest', () => {
    const chain = team()
      .add({ op: 'grant', name: 'bot', permission: 'backup.restore', project: 'P1' }, alice)
      .add({ op: 'grant', name: 'opr', permission: 'backup.forget' }, alice)
      .add({ op: 'revoke', name: 'opr', permission: 'backup.forget' }, bob)
      .add({ op: 'remove', name: 'bob' }, alice);
    const state = chain.replay();
    expect(state.trustId).toBe(chain.trustId);
    expect(state.repositoryId).toBe(REPO_ID);
    expect(state.digests).toEqual(chain.envelopes.map(payloadDigest));
    expect(state.head).toEqual({ seq: 7, digest: payloadDigest(chain.envelopes[7] as Envelope) });
    expect([...state.actors.keys()]).toEqual(['alice', 'bob', 'opr', 'bot']);
    expect(state.actors.get('alice')).toEqual({
      name: 'alice',
      kind: 'human',
      role: 'sysadmin',
      publicKey: alice.signer.publicKey,
      fingerprint: alice.signer.fingerprint,
      grants: [],
      addedSeq: 0,
      addedBy: 'alice',
      addedAt: TIME,
    });
    expect(state.actors.get('bot')).toMatchObject({
      kind: 'agent',
      addedSeq: 3,
      addedBy: 'bob',
      grants: [{ permission: 'backup.restore', project: 'P1' }],
    });
    expect(state.actors.get('opr')?.grants).toEqual([]);
    expect(state.actors.get('bob')?.removedSeq).toBe(7);
    expect(state.actors.get('alice')?.removedSeq).toBeUndefined();
    expect(activeSysadmins(state).map((a) => a.name)).toEqual(['alice']);
  });

  it('applyEntry leaves the state it is given unchanged', () => {
    const chain = team();
    const before = chain.replay();
    const snapshot = structuredClone(before);
    const grant = chain.next({ op: 'grant', name: 'opr', permission: 'backup.restore', project: 'P1' }, alice);
    const after = applyEntry(before, grant, 4);
    expect(after.actors.get('opr')?.grants).toHaveLength(1);
    expect(before).toEqual(snapshot);
    const remove = chain.next({ op: 'remove', name: 'opr' }, alice);
    applyEntry(before, remove, 4);
    expect(before.actors.get('opr')?.removedSeq).toBeUndefined();
  });

  it('refuses an empty registry', async () => {
    await expectRefused(caught(() => replayRegistry([])) as Promise<RegistryError>, 0, 'the registry is empty');
  });
});

describe('who may sign an entry', () => {
  it('refuses an entry signed by an operator', async () => {
    const chain = team();
    await expectRefused(chain.refusal(chain.next(withCarolAction(), opr)), 4, 'signer opr is not a human sysadmin');
  });

  it('refuses an entry signed by an agent, even one with role sysadmin', async () => {
    const chain = team();
    await expectRefused(chain.refusal(chain.next(withCarolAction(), bot)), 4, 'signer bot is not a human sysadmin');
  });

  it('refuses an entry signed by a removed sysadmin, and by a name never registered', async () => {
    const chain = team().add({ op: 'remove', name: 'bob' }, alice);
    await expectRefused(
      chain.refusal(chain.next(withCarolAction(), bob)),
      5,
      'signer bob is not a registered actor at this point',
    );
    await expectRefused(
      chain.refusal(chain.next(withCarolAction(), carol)),
      5,
      /^signer carol is not a registered actor/,
    );
  });

  it('refuses an entry naming one sysadmin as signer but signed with another key, or not signed', async () => {
    const chain = team();
    const forged = chain.next(withCarolAction(), alice, {}, [bob.signer]);
    await expectRefused(chain.refusal(forged), 4, 'bad signature by alice');
    await expectRefused(chain.refusal(chain.next(withCarolAction(), alice, {}, [])), 4, 'bad signature by alice');
  });

  it('accepts an entry signed by the signer among others', () => {
    const chain = team();
    chain.envelopes.push(chain.next(withCarolAction(), alice, {}, [bob.signer, alice.signer]));
    expect(chain.replay().actors.has('carol')).toBe(true);
  });

  it('refuses an entry whose signature is for another payload type', async () => {
    const chain = team();
    const env = chain.next(withCarolAction(), alice);
    await expectRefused(chain.refusal({ ...env, payloadType: PAYLOAD_TYPE.request }), 4, 'not a signed registry entry');
    // re-signed by alice as a request: right key, wrong type
    const bytes = Buffer.from(env.payload, 'base64');
    const asRequest = alice.signer.sign(pae(PAYLOAD_TYPE.request, bytes)).toString('base64');
    const relabelled = { ...env, signatures: [{ keyid: alice.signer.fingerprint, sig: asRequest }] };
    await expectRefused(chain.refusal(relabelled), 4, 'bad signature by alice');
  });
});

describe('the chain', () => {
  it('refuses an entry whose prev is not the digest of the entry before', async () => {
    const chain = team();
    const wrong = chain.next(withCarolAction(), alice, { prev: payloadDigest(chain.envelopes[1] as Envelope) });
    await expectRefused(chain.refusal(wrong), 4, 'it does not follow entry 3 (prev digest differs)');
    const none = chain.next(withCarolAction(), alice, { prev: null });
    await expectRefused(chain.refusal(none), 4, 'it does not follow entry 3 (prev digest differs)');
  });

  it('refuses reordered entries, naming the first out of place', async () => {
    const chain = team();
    const [g, e1, e2, e3] = chain.envelopes as [Envelope, Envelope, Envelope, Envelope];
    await expectRefused(
      caught(() => replayRegistry([g, e2, e1, e3])) as Promise<RegistryError>,
      1,
      'it says it is entry 2',
    );
  });

  it('refuses a duplicated entry, and a second entry claiming the same seq', async () => {
    const chain = team();
    await expectRefused(chain.refusal(chain.envelopes[3] as Envelope), 4, 'it says it is entry 3');
    // another entry 3, linked to entry 3 and validly signed, appended after it
    const rival = chain.next(withCarolAction(), alice, { seq: 3 });
    await expectRefused(chain.refusal(rival), 4, 'it says it is entry 3');
  });

  it('refuses an entry of another registry (another trust id), even correctly linked and signed', async () => {
    const chain = team();
    const foreign = chain.next(withCarolAction(), alice, { trustId: randomBytes(16).toString('hex') });
    await expectRefused(chain.refusal(foreign), 4, 'it belongs to another registry (trust id differs)');
  });

  it('refuses an entry signed earlier than the entry before it', async () => {
    const chain = new Chain().genesis(alice);
    await expectRefused(
      chain.refusal(
        chain.next({ op: 'add', actor: registered(bob, 'human', 'sysadmin') }, alice, {
          time: '2026-02-28T12:00:00.000Z',
        }),
      ),
      1,
      /^it was signed at 2026-02-28T12:00:00.000Z, before entry 0 \(2026-03-01T12:00:00.000Z\)/,
    );
    chain.add({ op: 'add', actor: registered(bob, 'human', 'sysadmin') }, alice, { time: TIME });
    expect(chain.replay().headTime).toBe(TIME);
  });

  it('refuses a second genesis entry', async () => {
    const chain = team();
    const again = chain.next(
      { op: 'genesis', repositoryId: REPO_ID, actor: registered(carol, 'human', 'sysadmin') },
      alice,
    );
    await expectRefused(chain.refusal(again), 4, 'a second genesis entry');
  });

  it('refuses a chain whose first entry is not a genesis entry', async () => {
    const chain = new Chain();
    const add = chain.next({ op: 'add', actor: registered(alice, 'human', 'sysadmin') }, alice);
    await expectRefused(chain.refusal(add), 0, 'the first entry is not a genesis entry');
    await expectRefused(
      caught(() => replayRegistry([team().envelopes[1]])) as Promise<RegistryError>,
      0,
      /^it says it is entry 1$/,
    );
  });

  it('refuses a genesis entry that links back, registers no human sysadmin, or names another signer', async () => {
    const prev = 'ab'.repeat(32);
    await expectRefused(
      new Chain().genesis(alice, { prev }).refusal(),
      0,
      'the genesis entry names an entry before it',
    );
    for (const [kind, role] of [
      ['agent', 'sysadmin'],
      ['human', 'operator'],
    ] as const) {
      const action = { op: 'genesis', repositoryId: REPO_ID, actor: { ...registered(alice, kind, role) } };
      await expectRefused(
        new Chain().genesis(alice, { action }).refusal(),
        0,
        'the first actor is not a human sysadmin',
      );
    }
    await expectRefused(
      new Chain().genesis(alice, { signer: 'bob' }).refusal(),
      0,
      'the genesis entry names another signer than the actor it registers',
    );
  });
});

function withCarolAction(): RegistryAction {
  return { op: 'add', actor: registered(carol, 'human', 'auditor') };
}

describe('the rules an entry must keep', () => {
  it('refuses removing the last human sysadmin, counting neither removed ones nor agents', async () => {
    const chain = team();
    chain.add({ op: 'remove', name: 'alice' }, bob);
    await expectRefused(chain.refusal(chain.next({ op: 'remove', name: 'bob' }, bob)), 5, 'bob is the last sysadmin');
    const solo = new Chain().genesis(alice);
    await expectRefused(
      solo.refusal(solo.next({ op: 'remove', name: 'alice' }, alice)),
      1,
      'alice is the last sysadmin',
    );
  });

  it('refuses removing an actor twice, or one never registered', async () => {
    const chain = team().add({ op: 'remove', name: 'opr' }, alice);
    await expectRefused(chain.refusal(chain.next({ op: 'remove', name: 'opr' }, alice)), 5, 'no registered actor opr');
    await expectRefused(chain.refusal(chain.next({ op: 'remove', name: 'zed' }, alice)), 5, 'no registered actor zed');
  });

  it('refuses reusing a name, even the name of a removed actor', async () => {
    const chain = team();
    const taken = { op: 'add', actor: { ...registered(carol, 'human', 'auditor'), name: 'opr' } };
    await expectRefused(
      chain.refusal(chain.next(taken, alice)),
      4,
      'the name opr is already taken (names are never reused)',
    );
    chain.add(withCarolAction(), alice).add({ op: 'remove', name: 'carol' }, alice);
    // the same name with a new key, after carol was removed
    const back = { op: 'add', actor: { ...registered(testActor('x'), 'human', 'auditor'), name: 'carol' } };
    await expectRefused(
      chain.refusal(chain.next(back, alice)),
      6,
      'the name carol is already taken (names are never reused)',
    );
  });

  it('refuses a public key another actor has, removed or not', async () => {
    const chain = team();
    const shared = { op: 'add', actor: { ...registered(carol, 'human', 'auditor'), publicKey: opr.signer.publicKey } };
    await expectRefused(chain.refusal(chain.next(shared, alice)), 4, 'opr already has that public key');
    chain.add({ op: 'remove', name: 'opr' }, alice);
    await expectRefused(chain.refusal(chain.next(shared, alice)), 5, 'opr already has that public key');
  });

  it('refuses granting an agent sysadmin actors.admin, backup.approve, backup.keys or audit.redact', async () => {
    const chain = team();
    for (const permission of ['actors.admin', 'backup.approve', 'backup.keys', 'audit.redact'] as const) {
      const grant = chain.next({ op: 'grant', name: 'bot', permission }, alice);
      await expectRefused(chain.refusal(grant), 4, `an agent may never be granted ${permission}`);
    }
    // the same grants to a human are fine
    chain.add({ op: 'grant', name: 'opr', permission: 'backup.approve' }, alice);
    expect(chain.replay().actors.get('opr')?.grants).toEqual([{ permission: 'backup.approve' }]);
  });

  it('refuses a project-scoped grant of a permission that cannot be scoped', async () => {
    const chain = team();
    for (const permission of ['backup.create', 'backup.forget', 'audit.read'] as const) {
      const grant = chain.next({ op: 'grant', name: 'opr', permission, project: 'P1' }, alice);
      await expectRefused(chain.refusal(grant), 4, new RegExp(`^${permission.replace('.', '\\.')} cannot be limited`));
    }
  });

  it('refuses a grant already held and a revoke of a grant not held (the project is part of the grant)', async () => {
    const chain = team().add({ op: 'grant', name: 'opr', permission: 'backup.restore', project: 'P1' }, alice);
    const twice = chain.next({ op: 'grant', name: 'opr', permission: 'backup.restore', project: 'P1' }, alice);
    await expectRefused(chain.refusal(twice), 5, 'opr already holds backup.restore on project P1');
    const elsewhere = chain.next({ op: 'revoke', name: 'opr', permission: 'backup.restore', project: 'P2' }, alice);
    await expectRefused(chain.refusal(elsewhere), 5, 'opr holds no grant backup.restore on project P2');
    const unscoped = chain.next({ op: 'revoke', name: 'opr', permission: 'backup.restore' }, alice);
    await expectRefused(chain.refusal(unscoped), 5, 'opr holds no grant backup.restore');
    // a permission the role gives is not a grant that can be revoked
    const byRole = chain.next({ op: 'revoke', name: 'opr', permission: 'backup.create' }, alice);
    await expectRefused(chain.refusal(byRole), 5, 'opr holds no grant backup.create');
    const removed = team().add({ op: 'remove', name: 'opr' }, alice);
    const toRemoved = removed.next({ op: 'grant', name: 'opr', permission: 'backup.read' }, alice);
    await expectRefused(removed.refusal(toRemoved), 5, 'no registered actor opr');
  });
});

describe('the shape of an entry', () => {
  it('refuses an unknown op and an unknown permission', async () => {
    const chain = team();
    await expectRefused(chain.refusal(chain.next({ op: 'promote', name: 'opr' }, alice)), 4, 'unknown action promote');
    await expectRefused(
      chain.refusal(chain.next({ op: 'grant', name: 'opr', permission: 'root' }, alice)),
      4,
      'unknown permission root',
    );
  });

  it('refuses unknown fields (in the body, the action, the actor) and bad values of each field', async () => {
    const chain = team();
    const c = (a: TestActor, kind: string, role: string) => ({ ...registered(a, 'human', 'auditor'), kind, role });
    const cases: [Envelope, string][] = [
      [chain.next(withCarolAction(), alice, { note: 'hi' }), 'unknown fields'],
      [chain.next({ op: 'remove', name: 'opr', also: 'bob' }, alice), 'unknown fields in the action'],
      [chain.next({ op: 'add', actor: { ...registered(carol, 'human', 'auditor'), admin: true } }, alice), 'bad actor'],
      [chain.next(withCarolAction(), alice, { v: 2 }), 'version 2 is not one this build reads'],
      [chain.next(withCarolAction(), alice, { trustId: chain.trustId.toUpperCase() }), 'bad trust id'],
      [chain.next(withCarolAction(), alice, { seq: -1 }), 'bad seq'],
      [chain.next(withCarolAction(), alice, { seq: '4' }), 'bad seq'],
      [chain.next(withCarolAction(), alice, { prev: 'ab' }), 'bad prev digest'],
      [chain.next(withCarolAction(), alice, { time: '2026-03-01 12:00:00Z' }), 'bad time'],
      [chain.next(withCarolAction(), alice, { time: '2026-13-45T12:00:00Z' }), 'bad time'],
      [chain.next(withCarolAction(), alice, { signer: '../alice' }), 'bad signer name'],
      [chain.next({ op: 'add', actor: c(carol, 'robot', 'auditor') }, alice), 'bad actor kind'],
      [chain.next({ op: 'add', actor: c(carol, 'human', 'root') }, alice), 'bad role'],
      [
        chain.next({ op: 'add', actor: { ...registered(carol, 'human', 'auditor'), name: 'a b' } }, alice),
        'bad actor name',
      ],
      [chain.next({ op: 'grant', name: 'opr', permission: 'backup.read', project: '../P1' }, alice), 'bad project id'],
      [chain.next({ op: 'remove' }, alice), 'bad actor name'],
      [chain.next(withCarolAction(), alice, { action: null }), 'no action'],
    ];
    for (const [env, reason] of cases) await expectRefused(chain.refusal(env), 4, reason);
  });

  it('refuses an actor whose public key is not a canonical Ed25519 key', async () => {
    const chain = team();
    const key = carol.signer.publicKey;
    // the same DER with the base64 padding bits set: a second spelling would give the key a second fingerprint
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const alias = `${key.slice(0, 58)}${B64[B64.indexOf(key[58] as string) ^ 1]}=`;
    expect(Buffer.from(alias, 'base64')).toEqual(Buffer.from(key, 'base64'));
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    for (const publicKey of [key.slice(0, -4), alias, x25519, '']) {
      const add = { op: 'add', actor: { ...registered(carol, 'human', 'auditor'), publicKey } };
      await expectRefused(chain.refusal(chain.next(add, alice)), 4, 'bad public key');
    }
  });

  it('refuses a correctly signed payload that is not canonical JSON', async () => {
    const chain = team();
    const canonical = Buffer.from(chain.next(withCarolAction(), alice).payload, 'base64').toString('utf8');
    for (const text of [canonical.replace('{', '{ '), `${canonical}\n`, reorder(canonical)]) {
      const bytes = Buffer.from(text, 'utf8');
      const env: Envelope = {
        payloadType: PAYLOAD_TYPE.registryEntry,
        payload: bytes.toString('base64'),
        signatures: [
          {
            keyid: alice.signer.fingerprint,
            sig: alice.signer.sign(pae(PAYLOAD_TYPE.registryEntry, bytes)).toString('base64'),
          },
        ],
      };
      await expectRefused(chain.refusal(env), 4, 'not a registry entry');
    }
  });

  it('refuses what is not an envelope', async () => {
    const chain = team();
    for (const v of [null, 'entry', {}, { ...chain.envelopes[1], signatures: 'x' }] as unknown as Envelope[])
      await expectRefused(chain.refusal(v), 4, 'not a signed registry entry');
  });
});

/** The same JSON object with its first two keys swapped: still valid JSON, no longer canonical. */
function reorder(json: string): string {
  const v = JSON.parse(json) as Record<string, unknown>;
  const [k0, k1, ...rest] = Object.keys(v) as [string, string, ...string[]];
  const out: Record<string, unknown> = { [k1]: v[k1], [k0]: v[k0] };
  for (const k of rest) out[k] = v[k];
  return JSON.stringify(out);
}

describe('leaving registry mode, and coming back', () => {
  const dan = testActor('dan');

  it('leaves only with the signature of every sysadmin active then, and removes every actor', async () => {
    const chain = team();
    // alice and bob are the sysadmins; the agent bot (role sysadmin) is not one who signs
    await expectRefused(
      chain.refusal(chain.next({ op: 'leave' }, alice)),
      4,
      "leaving registry mode needs every sysadmin's signature: bob did not sign",
    );
    await expectRefused(
      chain.refusal(chain.next({ op: 'leave' }, alice, {}, [alice.signer, opr.signer])),
      4,
      /bob did not sign/,
    );
    chain.envelopes.push(chain.next({ op: 'leave' }, alice, {}, [alice.signer, bob.signer]));
    const state = chain.replay();
    expect(state.leftAt).toBe(4);
    expect(activeSysadmins(state)).toEqual([]);
    expect([...state.actors.values()].every((a) => a.removedSeq === 4)).toBe(true);
  });

  it('lets a lone sysadmin leave alone, not counting sysadmins removed before', () => {
    const chain = team().add({ op: 'remove', name: 'bob' }, alice);
    chain.envelopes.push(chain.next({ op: 'leave' }, alice));
    expect(chain.replay().leftAt).toBe(5);
  });

  it('takes after a leave only a reopen, by a new human sysadmin with a name and key never used', async () => {
    const chain = new Chain().genesis(alice);
    chain.envelopes.push(chain.next({ op: 'leave' }, alice));
    await expectRefused(
      chain.refusal(chain.next({ op: 'add', actor: registered(dan, 'human', 'operator') }, alice)),
      2,
      'the registry was left at entry 1: only a reopen entry may follow',
    );
    const reopen = (actor: NewActor, by: TestActor = dan): Envelope => chain.next({ op: 'reopen', actor }, by, {}, []);
    await expectRefused(chain.refusal(reopen(registered(alice, 'human', 'sysadmin'), alice)), 2, /name alice/);
    await expectRefused(
      chain.refusal(
        reopen({
          ...registered(dan, 'human', 'sysadmin'),
          publicKey: registered(alice, 'human', 'sysadmin').publicKey,
        }),
      ),
      2,
      'alice already had that public key (keys are never reused)',
    );
    await expectRefused(chain.refusal(reopen(registered(dan, 'agent', 'sysadmin'))), 2, /not a human sysadmin/);
    await expectRefused(chain.refusal(reopen(registered(dan, 'human', 'sysadmin'), carol)), 2, /another signer/);
    chain.envelopes.push(reopen(registered(dan, 'human', 'sysadmin')));
    const state = chain.replay();
    expect(state.leftAt).toBeUndefined();
    expect(activeSysadmins(state).map((a) => a.name)).toEqual(['dan']);
    // registry mode again: the next entry is signed by dan, and alice (removed by the leave) signs nothing
    await expectRefused(
      chain.refusal(chain.next({ op: 'add', actor: registered(carol, 'human', 'operator') }, alice)),
      3,
      'signer alice is not a registered actor at this point',
    );
    chain.add({ op: 'add', actor: registered(carol, 'human', 'operator') }, dan);
    expect(chain.replay().actors.get('carol')?.addedBy).toBe('dan');
  });

  it('refuses a reopen that does not follow a leave', async () => {
    const chain = new Chain().genesis(alice);
    await expectRefused(
      chain.refusal(chain.next({ op: 'reopen', actor: registered(dan, 'human', 'sysadmin') }, dan, {}, [])),
      1,
      'a reopen entry follows only a leave entry',
    );
  });
});
