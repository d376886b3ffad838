/**
 * Approvals, the pure part: who must approve what, and whether the approvals
 * an operation presents are enough. Learned from Vault control groups (the
 * stored request runs once enough identities approved it, with a capped TTL)
 * and Veeam's four-eyes rule (another administrator approves; an unanswered
 * request expires): a request stores the operation's canonical plan, and an
 * approval is a signature over that plan's digest, so it approves exactly that
 * content and nothing else.
 */
import { sha256Hex } from '../crypto/hash.js';
import { canonicalBytes, type CanonicalValue } from './canonical.js';
import { hasValidSignature, isEnvelope, parsePayload, PAYLOAD_TYPE, type Envelope } from './envelope.js';
import { authorize, type ActorKind } from './permissions.js';
import { isActive, type ChainHead, type RegistryState } from './registry.js';

/** How long a request waits for approvals by default. */
export const DEFAULT_EXPIRY_MS = 60 * 60 * 1000;
/** How long a request may wait for approvals at most. */
export const MAX_EXPIRY_MS = 24 * 60 * 60 * 1000;

/** A stored request: the plan an actor wants to run and what it takes to run it. */
export interface ApprovalRequestBody {
  v: 1;
  /** 32 hex characters, random. */
  id: string;
  trustId: string;
  /** Random: two requests for the same plan are still two requests. */
  nonce: string;
  op: string;
  requester: string;
  requesterKind: ActorKind;
  createdAt: string;
  expiresAt: string;
  /** Distinct human approvals needed (a human requester of a two-person operation counts as one). */
  required: number;
  /** The registry head when the request was made: an approver must be registered by then. */
  registryHead: ChainHead;
  /** SHA-256 of the canonical plan. */
  planDigest: string;
  plan: CanonicalValue;
  /** What an approver is shown: what will be replaced, how many files and databases, which projects. */
  summary: string[];
}

/** A signed approval of one request's plan. */
export interface ApprovalBody {
  v: 1;
  requestId: string;
  trustId: string;
  planDigest: string;
  approver: string;
  time: string;
  /** The newest audit entry when the approval was made (null for an empty log). */
  auditHead?: ChainHead | null;
}

/** What an operation is, for the approval rule. */
export interface GatedOperation {
  op: string;
  requesterKind: ActorKind;
  /** A merge restore or an import that overwrites: two distinct humans. */
  twoPerson?: boolean;
}

/** Operations an agent may run only with a human's approval. */
const AGENT_GATED = ['restore', 'migration-rollback', 'forget', 'prune', 'import', 'key-remove'];

/**
 * Distinct human approvals an operation needs: two for a two-person operation (a human requester counts as one
 * of them), one for a gated operation an agent runs, none otherwise.
 */
export function requiredApprovals(g: GatedOperation): number {
  if (g.twoPerson === true) return g.requesterKind === 'human' ? 1 : 2;
  if (g.requesterKind === 'agent' && AGENT_GATED.includes(g.op)) return 1;
  return 0;
}

/** The digest that binds a plan: SHA-256 over its canonical JSON. */
export function planDigestOf(plan: CanonicalValue): string {
  return sha256Hex(canonicalBytes(plan));
}

/** Why approvals are not enough, or who approved. */
export type ApprovalVerdict = { ok: true; approvers: string[] } | { ok: false; reasons: string[] };

/**
 * Whether `approvals` (envelopes as stored) approve `request` at time `now`. Counted only: an approval that
 * verifies against the approver's registered key; for this request, this registry and this plan digest; made
 * while the request was open; by a human who is registered and not removed, holds backup.approve, was
 * registered before the request was made, by a sysadmin other than the requester, and is not the requester.
 * Each approver counts once. Every approval that does not count is given a reason.
 */
export function evaluateApprovals(
  request: ApprovalRequestBody,
  approvals: readonly unknown[],
  registry: RegistryState,
  now: Date,
): ApprovalVerdict {
  const reasons: string[] = [];
  const created = Date.parse(request.createdAt);
  const expires = Date.parse(request.expiresAt);
  if (!(expires > created) || expires - created > MAX_EXPIRY_MS) reasons.push('the request has an invalid lifetime');
  if (now.getTime() >= expires) reasons.push(`the request expired at ${request.expiresAt}`);
  if (request.trustId !== registry.trustId) reasons.push('the request was made for another registry');
  if (planDigestOf(request.plan) !== request.planDigest) reasons.push("the request's plan does not match its digest");
  const approvers = new Set<string>();
  for (const env of approvals) {
    const why = approvalProblem(env, request, registry, created, expires);
    if (why !== undefined) reasons.push(why);
    else approvers.add((parsePayload(env as Envelope) as ApprovalBody).approver);
  }
  if (reasons.some((r) => r.startsWith('the request'))) return { ok: false, reasons };
  if (approvers.size < request.required) {
    reasons.push(
      `${approvers.size} of ${request.required} required human approval${request.required === 1 ? '' : 's'}` +
        (approvers.size > 0 ? ` (${[...approvers].join(', ')})` : ''),
    );
    return { ok: false, reasons };
  }
  return { ok: true, approvers: [...approvers].sort() };
}

function approvalProblem(
  env: unknown,
  request: ApprovalRequestBody,
  registry: RegistryState,
  created: number,
  expires: number,
): string | undefined {
  if (!isEnvelope(env) || env.payloadType !== PAYLOAD_TYPE.approval) return 'an object that is not an approval';
  const b = parsePayload(env) as Partial<ApprovalBody> | undefined;
  if (b === undefined || b.v !== 1 || typeof b.approver !== 'string') return 'a malformed approval';
  const who = b.approver;
  if (b.requestId !== request.id) return `${who}'s approval is for another request`;
  if (b.trustId !== request.trustId) return `${who}'s approval is for another registry`;
  if (b.planDigest !== request.planDigest) return `${who} approved another plan`;
  const a = registry.actors.get(who);
  if (a === undefined || !hasValidSignature(env, a.fingerprint, a.publicKey)) {
    return `${who}'s approval is not signed by a registered key of ${who}`;
  }
  if (!isActive(a)) return `${who} has been removed`;
  if (a.kind !== 'human') return `${who} is an agent: an agent's approval never counts`;
  if (who === request.requester) return `${who} asked for it: approving your own request does not count`;
  if (!authorize(a, 'backup.approve').allowed) return `${who} does not hold backup.approve`;
  if (a.addedSeq > request.registryHead.seq) return `${who} was registered after the request was made`;
  if (a.addedBy === request.requester) return `${who} was registered by the requester`;
  const t = typeof b.time === 'string' ? Date.parse(b.time) : Number.NaN;
  if (!(t >= created && t < expires)) return `${who}'s approval was not made while the request was open`;
  return undefined;
}

/** Parse a stored request envelope; undefined if it is not one (the caller says it is damaged). */
export function parseRequest(env: unknown): ApprovalRequestBody | undefined {
  if (!isEnvelope(env) || env.payloadType !== PAYLOAD_TYPE.approvalRequest) return undefined;
  const b = parsePayload(env) as Partial<ApprovalRequestBody> | undefined;
  if (
    b === undefined ||
    b.v !== 1 ||
    typeof b.id !== 'string' ||
    !/^[0-9a-f]{32}$/.test(b.id) ||
    typeof b.op !== 'string' ||
    typeof b.requester !== 'string' ||
    (b.requesterKind !== 'human' && b.requesterKind !== 'agent') ||
    typeof b.createdAt !== 'string' ||
    typeof b.expiresAt !== 'string' ||
    !Number.isSafeInteger(b.required) ||
    typeof b.planDigest !== 'string' ||
    typeof b.registryHead !== 'object' ||
    !Array.isArray(b.summary)
  ) {
    return undefined;
  }
  return b as ApprovalRequestBody;
}

/** The request's requester signed it (with the key registered for them). */
export function requestSignedByRequester(
  env: Envelope,
  request: ApprovalRequestBody,
  registry: RegistryState,
): boolean {
  const a = registry.actors.get(request.requester);
  return a !== undefined && hasValidSignature(env, a.fingerprint, a.publicKey);
}
