import type { Command } from 'commander';
import type { PruneResult } from '../../prune/prune.js';
import { approvalStep } from '../approval-step.js';
import { formatBytes, formatDuration, UsageError } from '../output.js';
import type { Runner } from '../context.js';
import { parsePercentage } from '../numbers.js';

export function parseThreshold(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  return parsePercentage('--repack-threshold', v);
}

/**
 * `--min-pack-age <hours>` in milliseconds (plain decimal digits, as every number on the command line); undefined when
 * not given.
 */
export function parseMinPackAge(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const h = /^\d+(?:\.\d+)?$/.test(v) && v.length <= 20 ? Number(v) : NaN;
  if (!(h >= 0 && h <= 8760)) {
    throw new UsageError(
      `--min-pack-age must be a number of hours from 0 to 8760, not ${JSON.stringify(v)}`,
      'write it in plain decimal digits, e.g. 4 or 0.5',
    );
  }
  return Math.round(h * 3_600_000);
}

export function describePrune(r: PruneResult): string {
  const p = r.plan;
  return [
    `${r.dryRun ? 'dry run, nothing was changed: prune plan' : 'pruned'}: ${p.packs} packs ` +
      `(${p.orphanPacks} orphaned), ${p.usedBlobs} used / ${p.unusedBlobs} unused blobs`,
    `  ${p.removePacks} packs ${r.dryRun ? 'to remove' : 'removed'} (${p.repackPacks}` +
      ` repacked, ${formatBytes(p.repackBytes)} rewritten), ${p.keepPacks} kept`,
    `  ${formatBytes(p.freedBytes)} ${r.dryRun ? 'would be freed' : 'freed'}; ${formatBytes(p.unusedBytesKept)}` +
      ` unused data left in kept packs` +
      (r.dryRun ? '' : ` — ${formatDuration(r.durationMs)}`),
    ...(r.tempFilesRemoved > 0
      ? [
          `  ${r.tempFilesRemoved} leftover temporary files ${r.dryRun ? 'to remove' : 'removed'}` +
            ` (left by interrupted writes, untouched for over an hour)`,
        ]
      : []),
    ...(p.youngPacks > 0 ? [`  ${p.youngPacks} packs younger than the safety margin (--min-pack-age) left alone`] : []),
  ].join('\n');
}

export function registerPrune(program: Command, run: Runner): void {
  program
    .command('prune')
    .description('delete data no backup references (after `forget`), repacking partly used packs')
    .option('--repack-threshold <percent>', 'repack a pack when at least this much of it is unused (default 20%)')
    .option('--min-pack-age <hours>', 'never delete or repack a pack written less than this many hours ago (default 4)')
    .option('-n, --dry-run', 'show what would be removed; change nothing')
    .option('--request <id>', "run the approved request <id>: an agent's prune runs once a human approved it")
    .addHelpText(
      'after',
      `
Prune takes the exclusive repository lock (no backup or restore may run meanwhile)
and is safe to kill at any instant: new packs and index files are written before
anything old is deleted, so every remaining backup stays restorable. Packs written
in the last --min-pack-age hours are left alone: they may belong to a backup that
is still running. It also removes the temporary files (.tmp-*) interrupted writes
left, once untouched for an hour (a younger one may belong to a writer still at work).
Deleting data is a human decision: an agent's prune stores an approval request
(exit 3, APPROVAL_REQUIRED) and runs with --request once a human approved exactly
which packs go; it deletes nothing if the repository changed since.`,
    )
    .action(function (this: Command) {
      const flags = this.opts<{ repackThreshold?: string; minPackAge?: string; dryRun?: boolean; request?: string }>();
      return run(async (ctx) => {
        const threshold = parseThreshold(flags.repackThreshold);
        const minPackAgeMs = parseMinPackAge(flags.minPackAge);
        const { prune } = await import('../../prune/prune.js');
        const { pruneApprovalPlan, requireApprovedPrune } = await import('../../prune/approval-plan.js');
        const repo = await ctx.openRepo(flags.dryRun === true ? 'prune-preview' : 'prune');
        try {
          const chosen = { repackThreshold: threshold, minPackAgeMs };
          let onPlan: ReturnType<typeof requireApprovedPrune> | undefined;
          if (flags.dryRun !== true && ctx.trust().approvalsRequired > 0) {
            // an agent's prune: a human approves exactly which packs go, and it deletes those or nothing
            const planned = await pruneApprovalPlan(repo, chosen);
            await approvalStep(ctx, repo, 'prune', planned, flags.request);
            onPlan = requireApprovedPrune(repo, planned.plan, chosen);
          }
          const r = await prune(repo, {
            ...chosen,
            dryRun: flags.dryRun,
            reporter: ctx.reporter,
            ...(onPlan === undefined ? {} : { onPlan }),
          });
          ctx.reporter.stop();
          ctx.out[r.dryRun ? 'result' : 'report'](r, () => describePrune(r));
        } finally {
          await repo.close();
        }
      });
    });
}
