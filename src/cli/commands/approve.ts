import type { Command } from 'commander';
import { FoleBackupError, StopError } from '../../errors.js';
import type { Repository } from '../../repository/repository.js';
import type { RestoreApprovalPlan } from '../../restore/approval-plan.js';
import type { ForgetApprovalPlan } from '../../retention/approval-plan.js';
import type { PruneApprovalPlan } from '../../prune/approval-plan.js';
import type { ApprovalRequestBody } from '../../trust/approvals.js';
import type { CanonicalValue } from '../../trust/canonical.js';
import type { Context, Runner } from '../context.js';
import type { RegistryState } from '../../trust/registry.js';

/**
 * The plan of a stored request, computed again from the repository and the target as they are now: what an
 * approver approves must be what will run. Each gated operation that can be approved has its planner here.
 */
async function replan(repo: Repository, request: ApprovalRequestBody): Promise<CanonicalValue> {
  if (request.op === 'restore' || request.op === 'migration-rollback') {
    const { restoreApprovalPlan, rollbackApprovalPlan } = await import('../../restore/approval-plan.js');
    const p = request.plan as unknown as RestoreApprovalPlan;
    const opts = {
      target: p.target,
      ...(p.foleVersion === null ? {} : { foleVersion: p.foleVersion }),
      ...(p.modules === null ? {} : { modules: [...p.modules] }),
    };
    const { plan } =
      request.op === 'restore'
        ? await restoreApprovalPlan(repo, p.backupId, opts)
        : await rollbackApprovalPlan(repo, String(p.migrationId), opts);
    return plan;
  }
  if (request.op === 'forget') {
    const { forgetApprovalPlan } = await import('../../retention/approval-plan.js');
    const p = request.plan as unknown as ForgetApprovalPlan;
    const { plan } = await forgetApprovalPlan(repo, {
      ...(p.policy === null ? {} : { policy: p.policy }),
      ...(p.ids === null ? {} : { ids: p.ids }),
      allowRemoveAll: p.allowRemoveAll,
    });
    return plan as unknown as CanonicalValue;
  }
  if (request.op === 'prune') {
    const { pruneApprovalPlan, pruneOptionsOf } = await import('../../prune/approval-plan.js');
    const p = request.plan as unknown as PruneApprovalPlan;
    const { plan } = await pruneApprovalPlan(repo, pruneOptionsOf(p));
    return plan as unknown as CanonicalValue;
  }
  throw new FoleBackupError('USAGE', `requests for ${request.op} cannot be approved by this version`);
}

function registryOf(ctx: Context) {
  const registry = ctx.trust().registry;
  if (registry === undefined || ctx.trust().mode !== 'registry') {
    throw new FoleBackupError('USAGE', 'this repository has no actor registry: nothing needs approving', {
      hint: 'approvals exist in registry mode (docs/TRUST.md)',
    });
  }
  return registry;
}

/** Open the repository for `op`, load request `id`, run `fn`, close. The request is named in the audit entry. */
async function withRequest(
  ctx: Context,
  op: 'approve' | 'approvals-list' | 'approvals-deny',
  id: string,
  fn: (repo: Repository, registry: RegistryState, request: ApprovalRequestBody) => Promise<void>,
): Promise<void> {
  const { loadRequest } = await import('../../trust/approvals-store.js');
  const repo = await ctx.openRepo(op);
  try {
    const registry = registryOf(ctx);
    const { request } = await loadRequest(repo, id, registry);
    ctx.trust().approvalsUsed.push(request.id);
    await fn(repo, registry, request);
  } finally {
    await repo.close();
  }
}

function describeRequest(r: ApprovalRequestBody, status: string, extra: string[] = []): string {
  return [
    `request ${r.id}: ${r.op} by ${r.requester} (${r.requesterKind}), ${status}`,
    `  made ${r.createdAt}, open until ${r.expiresAt}; needs ${r.required} human approval` +
      (r.required === 1 ? '' : 's'),
    ...r.summary.map((l) => `  ${l}`),
    ...extra.map((l) => `  ${l}`),
  ].join('\n');
}

export function registerApprove(program: Command, run: Runner): void {
  program
    .command('approve')
    .argument('<request>', 'the request id a STOP APPROVAL_REQUIRED printed')
    .description("approve another actor's request: its plan is computed again now and must be the one requested")
    .addHelpText(
      'after',
      `
Run it as a human holding backup.approve, on the machine where the operation
will run (a restore's plan includes the target's current state). The request
names exactly what will happen; your signature approves that content only. An
agent's approval never counts, nor the requester's own, nor that of an actor
registered after the request was made.`,
    )
    .action((id: string) =>
      run((ctx) =>
        withRequest(ctx, 'approve', id, async (repo, registry, request) => {
          const me = ctx.trust().principal;
          if (me.name === request.requester) {
            throw new StopError('PERMISSION_DENIED', 'you cannot approve your own request', {
              hint: 'another human with backup.approve approves it',
            });
          }
          const { approveRequest, requestStatus } = await import('../../trust/approvals-store.js');
          const { planDigestOf } = await import('../../trust/approvals.js');
          const { status } = await requestStatus(repo, request, registry);
          if (status === 'used' || status === 'denied' || status === 'expired') {
            throw new StopError(
              'APPROVAL_REQUIRED',
              `request ${request.id} is ${status}: it can no longer be approved`,
              {
                hint: 'the requester runs the command again without --request to ask anew',
              },
            );
          }
          if (planDigestOf(await replan(repo, request)) !== request.planDigest) {
            throw new StopError(
              'APPROVAL_REQUIRED',
              `request ${request.id}: its plan differs from the plan computed now`,
              {
                hint:
                  'the backup, the options or the target changed since it was requested; nothing was approved — the ' +
                  'requester asks again',
              },
            );
          }
          const signer = (await ctx.credentials()).signer;
          if (signer === undefined)
            throw new StopError('PERMISSION_DENIED', 'an approval is signed with your actor key');
          await approveRequest(repo, request, { name: me.name, signer });
          const after = await requestStatus(repo, request, registry);
          ctx.out.report({ approved: request.id, status: after.status, plan: request.plan }, () =>
            describeRequest(request, `approved by you: now ${after.status}`, [
              after.status === 'approved'
                ? `${request.requester} may now run it once with --request ${request.id}`
                : `still needed: ${after.verdict.ok ? '' : after.verdict.reasons.at(-1)}`,
            ]),
          );
        }),
      ),
    );

  const approvals = program.command('approvals').description('approval requests: list, show, deny');
  approvals
    .command('list')
    .description('list approval requests, newest last, with where each stands')
    .action(() =>
      run(async (ctx) => {
        const { listRequestIds, loadRequest, requestStatus } = await import('../../trust/approvals-store.js');
        const repo = await ctx.openRepo('approvals-list');
        try {
          const registry = registryOf(ctx);
          const rows: {
            id: string;
            op: string;
            requester: string;
            status: string;
            createdAt: string;
            expiresAt: string;
            required: number;
            approvers: string[];
          }[] = [];
          for (const id of await listRequestIds(repo)) {
            const { request } = await loadRequest(repo, id, registry);
            const { status, verdict } = await requestStatus(repo, request, registry);
            rows.push({
              id,
              op: request.op,
              requester: request.requester,
              status,
              createdAt: request.createdAt,
              expiresAt: request.expiresAt,
              required: request.required,
              approvers: verdict.ok ? verdict.approvers : [],
            });
          }
          rows.sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
          ctx.out.result(rows, () =>
            rows.length === 0
              ? 'no approval requests'
              : rows
                  .map((r) => `${r.id}  ${r.status.padEnd(8)} ${r.op} by ${r.requester}, made ${r.createdAt}`)
                  .join('\n'),
          );
        } finally {
          await repo.close();
        }
      }),
    );
  approvals
    .command('show')
    .argument('<request>', 'the request id')
    .description('show a request: its plan, its summary, its approvals and where it stands')
    .action((id: string) =>
      run((ctx) =>
        withRequest(ctx, 'approvals-list', id, async (repo, registry, request) => {
          const { requestStatus } = await import('../../trust/approvals-store.js');
          const s = await requestStatus(repo, request, registry);
          ctx.out.result({ ...request, status: s.status, verdict: s.verdict, deniedBy: s.denials }, () =>
            describeRequest(request, s.status, [
              ...(s.verdict.ok ? [`approved by ${s.verdict.approvers.join(', ')}`] : s.verdict.reasons),
              ...(s.denials.length > 0 ? [`denied by ${s.denials.join(', ')}`] : []),
            ]),
          );
        }),
      ),
    );
  approvals
    .command('deny')
    .argument('<request>', 'the request id')
    .description('deny a request: it can no longer run, whatever approvals it has')
    .action((id: string) =>
      run((ctx) =>
        withRequest(ctx, 'approvals-deny', id, async (repo, registry, request) => {
          const me = registry.actors.get(ctx.trust().principal.name);
          if (me === undefined) throw new FoleBackupError('INTERNAL', 'the principal is not in the registry');
          const { denyRequest } = await import('../../trust/approvals-store.js');
          await denyRequest(repo, request, { name: me.name, fingerprint: me.fingerprint });
          ctx.out.report({ denied: request.id }, () => `denied request ${request.id}: it can no longer run`);
        }),
      ),
    );
}
