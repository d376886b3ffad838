/**
 * The approval step of a gated operation, between its plan and its execution
 * (plan → authorize → approve → execute): without a request, store one for the
 * plan and STOP (APPROVAL_REQUIRED, with the request id and what a human runs);
 * with one, run only if it is this caller's, approved as the policy demands,
 * unexpired, unused, and its plan is exactly the plan computed now — then mark
 * it used before any work.
 */
import { StopError } from '../errors.js';
import { consumeRequest, createRequest, loadRequest, requestStatus } from './approvals-store.js';
import { planDigestOf } from './approvals.js';
import { checkClock } from './clock.js';
import type { CanonicalValue } from './canonical.js';
import type { Credentials, TrustContext } from './gate.js';
import type { SealedObjects } from '../repository/slices.js';

/** A gated operation at its approval step. */
export interface ApprovalStep {
  op: string;
  /** The canonical plan computed now: what an approval binds. */
  plan: CanonicalValue;
  /** What an approver is shown. */
  summary: string[];
  /** `--request`: the approved request to run. */
  requestId?: string;
  /** The command line to give again with `--request` (shown in the STOP). */
  rerun: string;
  expiresInMs?: number;
  now?: Date;
}

/**
 * Pass the approval step, or STOP. Returns the request id that was consumed and who approved it, or undefined
 * when the operation needs no approval. STOPs: APPROVAL_REQUIRED (a new request stored; or the request given is
 * not approved, denied, expired, used, not this caller's or for another plan), CLOCK_SKEW.
 */
export async function passApprovals(
  repo: SealedObjects & { readonly config: { readonly id: string } },
  trust: TrustContext,
  credentials: Credentials,
  step: ApprovalStep,
): Promise<{ requestId: string; approvers: string[] } | undefined> {
  const required = trust.approvalsRequired;
  if (required === 0 || trust.registry === undefined) return undefined;
  const now = step.now ?? new Date();
  await checkClock(repo, now);
  if (step.requestId === undefined) {
    if (credentials.signer === undefined)
      throw new StopError('PERMISSION_DENIED', 'an approval request is signed by its requester');
    const request = await createRequest(repo, trust, credentials.signer, {
      op: step.op,
      plan: step.plan,
      summary: step.summary,
      required,
      ...(step.expiresInMs === undefined ? {} : { expiresInMs: step.expiresInMs }),
      now,
    });
    trust.approvalsUsed.push(request.id);
    throw new StopError(
      'APPROVAL_REQUIRED',
      `${step.op} by ${trust.principal.name} (${trust.principal.kind}) needs ${required} human approval` +
        `${required === 1 ? '' : 's'}: request ${request.id} stored, open until ${request.expiresAt}`,
      {
        hint:
          `a human with backup.approve reviews and approves it: fole-backup approve ${request.id}; then run ` +
          `${step.rerun} --request ${request.id}`,
        details: { requestId: request.id, expiresAt: request.expiresAt, required: String(required) },
      },
    );
  }
  const { request } = await loadRequest(repo, step.requestId, trust.registry);
  trust.approvalsUsed.push(request.id);
  const refuse = (why: string): StopError =>
    new StopError('APPROVAL_REQUIRED', `approval request ${request.id}: ${why}`, {
      hint:
        'run the command without --request to ask again; ' +
        `\`fole-backup approvals show ${request.id}\` says where it stands`,
      details: { requestId: request.id },
    });
  if (request.requester !== trust.principal.name) throw refuse(`it was made by ${request.requester}, not by you`);
  if (request.op !== step.op) throw refuse(`it is a request for ${request.op}, not ${step.op}`);
  const { status, verdict, denials } = await requestStatus(repo, request, trust.registry, now);
  if (status === 'used') throw refuse('it has already been used');
  if (status === 'denied') throw refuse(`denied by ${denials.join(', ')}`);
  if (status === 'expired') throw refuse(`it expired at ${request.expiresAt}`);
  if (!verdict.ok) throw refuse(`not approved: ${verdict.reasons.join('; ')}`);
  if (planDigestOf(step.plan) !== request.planDigest) {
    throw refuse('the plan computed now differs from the one approved (the backup, the options or the target changed)');
  }
  await consumeRequest(repo, request, trust.principal.name);
  return { requestId: request.id, approvers: verdict.approvers };
}
