/**
 * The approval rule as a pure function: which approvals count for a request,
 * with real signatures over real registries. Each refusal is asserted with its
 * reason, so a rule that stops being checked fails here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backend/memory.js';
import { Repository } from '../repository/repository.js';
import { FAST_KDF, TEST_PASSWORD } from '../../test/repo-helpers.js';
import {
  newTeam,
  registered,
  T0,
  teamRegistry,
  testActor,
  type Team,
  type TestActor,
} from '../../test/trust-helpers.js';
import {
  evaluateApprovals,
  planDigestOf,
  requiredApprovals,
  type ApprovalBody,
  type ApprovalRequestBody,
} from './approvals.js';
import type { CanonicalValue } from './canonical.js';
import { PAYLOAD_TYPE, signEnvelope } from './envelope.js';
import type { RegistryState } from './registry.js';
import { appendRegistry } from './registry-store.js';

let team: Team;
let bot: TestActor;
let late: TestActor;
let registry: RegistryState;
let atRequest: RegistryState;

beforeAll(async () => {
  const repo = await Repository.init(new MemoryBackend(), TEST_PASSWORD, { kdf: FAST_KDF });
  team = newTeam();
  bot = testActor('bot');
  late = testActor('late');
  registry = await teamRegistry(repo, team);
  registry = await appendRegistry(
    repo,
    registry,
    { op: 'add', actor: registered(bot, 'agent', 'operator') },
    team.alice,
    T0,
  );
  registry = await appendRegistry(
    repo,
    registry,
    { op: 'grant', name: 'opr', permission: 'backup.approve' },
    team.alice,
    T0,
  );
  atRequest = registry;
  // registered after the request below was made
  registry = await appendRegistry(
    repo,
    registry,
    { op: 'add', actor: registered(late, 'human', 'sysadmin') },
    team.bob,
    T0,
  );
});

const CREATED = new Date('2026-03-02T10:00:00.000Z');
const plan = { op: 'restore', backupId: 'b1', target: '/srv/fole' };

function request(over: Partial<ApprovalRequestBody> = {}): ApprovalRequestBody {
  return {
    v: 1,
    id: 'a'.repeat(32),
    trustId: registry.trustId,
    nonce: 'n'.repeat(32),
    op: 'restore',
    requester: 'bot',
    requesterKind: 'agent',
    createdAt: CREATED.toISOString(),
    expiresAt: new Date(CREATED.getTime() + 3_600_000).toISOString(),
    required: 1,
    registryHead: atRequest.head,
    planDigest: planDigestOf(plan),
    plan,
    summary: ['restore b1'],
    ...over,
  };
}

function approval(by: TestActor, r: ApprovalRequestBody, over: Partial<ApprovalBody> = {}, signer = by.signer) {
  const body: ApprovalBody = {
    v: 1,
    requestId: r.id,
    trustId: r.trustId,
    planDigest: r.planDigest,
    approver: by.name,
    time: new Date(CREATED.getTime() + 60_000).toISOString(),
    ...over,
  };
  return signEnvelope(PAYLOAD_TYPE.approval, body as unknown as CanonicalValue, [signer]);
}

const NOW = new Date(CREATED.getTime() + 120_000);

describe('requiredApprovals', () => {
  it('asks one human for an agent’s destructive operation, two for a two-person one, none otherwise', () => {
    expect(requiredApprovals({ op: 'restore', requesterKind: 'agent' })).toBe(1);
    expect(requiredApprovals({ op: 'forget', requesterKind: 'agent' })).toBe(1);
    expect(requiredApprovals({ op: 'restore', requesterKind: 'human' })).toBe(0);
    expect(requiredApprovals({ op: 'backup', requesterKind: 'agent' })).toBe(0);
    expect(requiredApprovals({ op: 'restore', requesterKind: 'agent', twoPerson: true })).toBe(2);
    // a human requester counts as one of the two
    expect(requiredApprovals({ op: 'restore', requesterKind: 'human', twoPerson: true })).toBe(1);
  });
});

describe('evaluateApprovals', () => {
  it('counts a registered human holding backup.approve, once however often they sign', () => {
    const r = request();
    expect(evaluateApprovals(r, [approval(team.alice, r)], registry, NOW)).toEqual({ ok: true, approvers: ['alice'] });
    const twice = evaluateApprovals(r, [approval(team.bob, r), approval(team.bob, r)], registry, NOW);
    expect(twice).toEqual({ ok: true, approvers: ['bob'] });
    // two are needed: the same human twice is still one
    const two = request({ required: 2 });
    const v = evaluateApprovals(two, [approval(team.bob, two), approval(team.bob, two)], registry, NOW);
    expect(v).toEqual({ ok: false, reasons: ['1 of 2 required human approvals (bob)'] });
    expect(evaluateApprovals(two, [approval(team.bob, two), approval(team.opr, two)], registry, NOW).ok).toBe(true);
  });

  const refused: [string, () => [ApprovalRequestBody, unknown], RegExp][] = [
    ['an agent', () => [request(), approval(bot, request())], /bot is an agent: an agent's approval never counts/],
    [
      'the requester',
      () => {
        const r = request({ requester: 'alice', requesterKind: 'human' });
        return [r, approval(team.alice, r)];
      },
      /alice asked for it/,
    ],
    [
      'a key not in the registry',
      () => [request(), approval(team.alice, request(), {}, testActor('x').signer)],
      /not signed by a registered key of alice/,
    ],
    [
      'someone registered after the request',
      () => [request(), approval(late, request())],
      /late was registered after the request/,
    ],
    [
      'another request',
      () => [request(), approval(team.alice, request(), { requestId: 'b'.repeat(32) })],
      /for another request/,
    ],
    [
      'another plan',
      () => [request(), approval(team.alice, request(), { planDigest: '0'.repeat(64) })],
      /approved another plan/,
    ],
    [
      'another registry',
      () => [request(), approval(team.alice, request(), { trustId: 'c'.repeat(32) })],
      /another registry/,
    ],
    [
      'an approval made before the request',
      () => [request(), approval(team.alice, request(), { time: new Date(CREATED.getTime() - 1000).toISOString() })],
      /not made while the request was open/,
    ],
    [
      'not an approval',
      () => [request(), signEnvelope(PAYLOAD_TYPE.request, { approver: 'alice' }, [team.alice.signer])],
      /not an approval/,
    ],
  ];
  for (const [what, make, reason] of refused) {
    it(`does not count ${what}`, () => {
      const [r, a] = make();
      const v = evaluateApprovals(r, [a], registry, NOW);
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.reasons.join('; ')).toMatch(reason);
    });
  }

  it('refuses every approval of an expired request, or of one whose lifetime exceeds a day', () => {
    const r = request();
    const late = new Date(Date.parse(r.expiresAt));
    expect(evaluateApprovals(r, [approval(team.alice, r)], registry, late)).toMatchObject({
      ok: false,
      reasons: [`the request expired at ${r.expiresAt}`],
    });
    const long = request({ expiresAt: new Date(CREATED.getTime() + 25 * 3_600_000).toISOString() });
    expect(evaluateApprovals(long, [approval(team.alice, long)], registry, NOW).ok).toBe(false);
  });

  it('refuses a request whose plan was changed after it was made', () => {
    const r = { ...request(), plan: { ...plan, target: '/elsewhere' } };
    const v = evaluateApprovals(r, [approval(team.alice, r)], registry, NOW);
    expect(v).toMatchObject({ ok: false, reasons: ["the request's plan does not match its digest"] });
  });
});
