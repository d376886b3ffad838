/** The approval step of a CLI command (src/trust/approval-flow.ts), with the command line to run again. */
import type { Repository } from '../repository/repository.js';
import type { CanonicalValue } from '../trust/canonical.js';
import type { Context } from './context.js';

/** This command line again, to be run with --request once its request is approved (nothing in it is secret). */
function rerunCommand(): string {
  const args = process.argv.slice(2).filter((a, i, all) => a !== '--request' && all[i - 1] !== '--request');
  const sh = (a: string): string => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['fole-backup', ...args.map(sh)].join(' ');
}

/** Pass the approval step for `op` with this plan: STOP APPROVAL_REQUIRED (a request stored) or run it. */
export async function approvalStep(
  ctx: Context,
  repo: Repository,
  op: string,
  planned: { plan: object; summary: string[] },
  requestId: string | undefined,
): Promise<void> {
  const { passApprovals } = await import('../trust/approval-flow.js');
  await passApprovals(repo, ctx.trust(), await ctx.credentials(), {
    op,
    plan: planned.plan as CanonicalValue,
    summary: planned.summary,
    ...(requestId === undefined ? {} : { requestId }),
    rerun: rerunCommand(),
  });
}
