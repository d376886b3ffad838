/**
 * Approval objects in the repository, all create-only and sealed:
 *
 *   approvals/<id>                the request, signed by its requester
 *   approvals/<id>.a.<key>        an approval, signed by its approver (<key>: 16 hex of the key's fingerprint)
 *   approvals/<id>.d.<key>        a denial: the request can no longer run
 *   approvals/<id>.used           its consumption, written before any work: a request runs once
 *
 * Create-only names make every step race-free: two approvals by one key, two
 * runs of one request, are each one object that the second writer cannot make.
 */
import { randomBytes } from 'node:crypto';
import type { SealedObjects } from '../repository/slices.js';
import { FoleBackupError, StopError } from '../errors.js';
import type { ActorSigner } from './actor-key.js';
import {
  DEFAULT_EXPIRY_MS,
  evaluateApprovals,
  MAX_EXPIRY_MS,
  parseRequest,
  planDigestOf,
  requestSignedByRequester,
  type ApprovalBody,
  type ApprovalRequestBody,
  type ApprovalVerdict,
} from './approvals.js';
import type { CanonicalValue } from './canonical.js';
import { PAYLOAD_TYPE, signEnvelope, type Envelope } from './envelope.js';
import type { TrustContext } from './gate.js';
import type { RegistryState } from './registry.js';
import { auditHead } from './audit-store.js';

const ID_RE = /^[0-9a-f]{32}$/;
const aad = (name: string): Buffer => Buffer.from(`fole-approvals:${name}`);
const keyTag = (fingerprint: string): string => fingerprint.slice(0, 16);

type Repo = SealedObjects & { readonly config: { readonly id: string } };

/** A request read back, its requester's signature checked. */
export interface LoadedRequest {
  request: ApprovalRequestBody;
  envelope: Envelope;
}

/** Where a request stands. */
export type RequestStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'used';

/** Store a request for `plan`, signed by the requester; returns it. */
export async function createRequest(
  repo: Repo,
  trust: TrustContext,
  signer: ActorSigner,
  r: { op: string; plan: CanonicalValue; summary: string[]; required: number; expiresInMs?: number; now?: Date },
): Promise<ApprovalRequestBody> {
  if (trust.registry === undefined) throw new FoleBackupError('INTERNAL', 'an approval request needs a registry');
  const now = r.now ?? new Date();
  const ttl = Math.min(r.expiresInMs ?? DEFAULT_EXPIRY_MS, MAX_EXPIRY_MS);
  const request: ApprovalRequestBody = {
    v: 1,
    id: randomBytes(16).toString('hex'),
    trustId: trust.registry.trustId,
    nonce: randomBytes(16).toString('hex'),
    op: r.op,
    requester: trust.principal.name,
    requesterKind: trust.principal.kind,
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttl).toISOString(),
    required: r.required,
    registryHead: trust.registry.head,
    planDigest: planDigestOf(r.plan),
    plan: r.plan,
    summary: r.summary,
  };
  const env = signEnvelope(PAYLOAD_TYPE.approvalRequest, request as unknown as CanonicalValue, [signer]);
  await repo.createJson('approvals', request.id, env, aad(request.id));
  return request;
}

/** Read a request; NOT_FOUND for an unknown id, TRUST_BROKEN for one that is damaged or not its requester's. */
export async function loadRequest(repo: Repo, id: string, registry: RegistryState): Promise<LoadedRequest> {
  if (!ID_RE.test(id)) {
    throw new FoleBackupError('USAGE', `${JSON.stringify(id.slice(0, 80))} is not a request id (32 hex characters)`);
  }
  let env: unknown;
  try {
    env = await repo.loadJson('approvals', id, aad(id));
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') {
      throw new FoleBackupError('NOT_FOUND', `no approval request ${id} in this repository`, {
        hint: 'see the requests with `fole-backup approvals list`',
      });
    }
    throw broken(id, (err as Error).message);
  }
  const request = parseRequest(env);
  if (request === undefined || request.id !== id) throw broken(id, 'it is not an approval request');
  if (!requestSignedByRequester(env as Envelope, request, registry)) {
    throw broken(id, `it is not signed by its requester ${request.requester}`);
  }
  return { request, envelope: env as Envelope };
}

/** Sign and store `approver`'s approval of the request. ALREADY_EXISTS if that key approved it already. */
export async function approveRequest(
  repo: Repo,
  request: ApprovalRequestBody,
  approver: { name: string; signer: ActorSigner },
  now = new Date(),
): Promise<void> {
  const body: ApprovalBody = {
    v: 1,
    requestId: request.id,
    trustId: request.trustId,
    planDigest: request.planDigest,
    approver: approver.name,
    time: now.toISOString(),
    auditHead: await headOrNull(repo),
  };
  const env = signEnvelope(PAYLOAD_TYPE.approval, body as unknown as CanonicalValue, [approver.signer]);
  const name = `${request.id}.a.${keyTag(approver.signer.fingerprint)}`;
  try {
    await repo.createJson('approvals', name, env, aad(name));
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS') {
      throw new FoleBackupError('ALREADY_EXISTS', `you have already approved request ${request.id}`);
    }
    throw err;
  }
}

/** Store a denial: the request can no longer run. */
export async function denyRequest(repo: Repo, request: ApprovalRequestBody, by: { name: string; fingerprint: string }) {
  const name = `${request.id}.d.${keyTag(by.fingerprint)}`;
  await repo.createJson(
    'approvals',
    name,
    { v: 1, requestId: request.id, by: by.name, time: new Date().toISOString() },
    aad(name),
  );
}

/** The approvals, denials and consumption stored for a request. */
async function partsOf(repo: Repo, id: string): Promise<{ approvals: unknown[]; denials: string[]; used: boolean }> {
  const approvals: unknown[] = [];
  const denials: string[] = [];
  let used = false;
  for await (const o of repo.backend.list('approvals')) {
    if (!o.name.startsWith(`${id}.`)) continue;
    const rest = o.name.slice(id.length + 1);
    if (rest === 'used') used = true;
    else if (rest.startsWith('a.'))
      approvals.push(await repo.loadJson('approvals', o.name, aad(o.name)).catch(() => undefined));
    else if (rest.startsWith('d.')) {
      const d = (await repo.loadJson('approvals', o.name, aad(o.name)).catch(() => undefined)) as
        | { by?: unknown }
        | undefined;
      denials.push(typeof d?.by === 'string' ? d.by : 'someone');
    }
  }
  return { approvals, denials, used };
}

/** A request's status and what its approvals are worth now. */
export async function requestStatus(
  repo: Repo,
  request: ApprovalRequestBody,
  registry: RegistryState,
  now = new Date(),
): Promise<{ status: RequestStatus; verdict: ApprovalVerdict; denials: string[] }> {
  const parts = await partsOf(repo, request.id);
  const verdict = evaluateApprovals(request, parts.approvals, registry, now);
  const status: RequestStatus = parts.used
    ? 'used'
    : parts.denials.length > 0
      ? 'denied'
      : now.getTime() >= Date.parse(request.expiresAt)
        ? 'expired'
        : verdict.ok
          ? 'approved'
          : 'pending';
  return { status, verdict, denials: parts.denials };
}

/** Every request id in the repository. */
export async function listRequestIds(repo: Repo): Promise<string[]> {
  const ids: string[] = [];
  for await (const o of repo.backend.list('approvals')) if (ID_RE.test(o.name)) ids.push(o.name);
  return ids.sort();
}

/**
 * Record that the request is being run, before any work: create-only, so a replay, a second run or a run on a
 * copy that shares this object cannot run it twice. STOP APPROVAL_REQUIRED if it was used already.
 */
export async function consumeRequest(repo: Repo, request: ApprovalRequestBody, by: string): Promise<void> {
  const name = `${request.id}.used`;
  const record = { v: 1, requestId: request.id, by, time: new Date().toISOString(), auditHead: await headOrNull(repo) };
  try {
    await repo.createJson('approvals', name, record, aad(name));
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS') {
      throw new StopError('APPROVAL_REQUIRED', `approval request ${request.id} has already been used`, {
        hint: 'an approved request runs once; run the command without --request to ask again',
      });
    }
    throw err;
  }
}

/** The newest audit entry, recorded in approvals and consumption records (null for an empty log). */
async function headOrNull(repo: Repo): Promise<{ seq: number; digest: string } | null> {
  return (await auditHead(repo)) ?? null;
}

function broken(id: string, why: string): StopError {
  return new StopError('TRUST_BROKEN', `approval request ${id}: ${why}`, {
    hint: 'someone edited or forged approval objects; a sysadmin must investigate',
  });
}
