import type { Command } from 'commander';
import type { ForgetResult } from '../../retention/forget.js';
import { approvalStep } from '../approval-step.js';
import { describePolicy, parseDuration, parseKeepCount, type RetentionPolicy } from '../../retention/policy.js';
import type { PruneResult } from '../../prune/prune.js';
import { formatBytes, UsageError } from '../output.js';
import type { Runner } from '../context.js';
import { describePrune, parseMinPackAge, parseThreshold } from './prune.js';

interface ForgetFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  keepTag?: string[];
  dryRun?: boolean;
  prune?: boolean;
  savePolicy?: boolean;
  repackThreshold?: string;
  minPackAge?: string;
  allowRemoveAll?: boolean;
  request?: string;
}

function count(flag: string, v: string | undefined): number | undefined {
  return v === undefined ? undefined : parseKeepCount(`--keep-${flag}`, v);
}

/** `text` when it is a valid --keep-within duration (kept as text in the policy); a usage error otherwise. */
function checkedDuration(text: string): string {
  parseDuration(text);
  return text;
}

function policyFromFlags(f: ForgetFlags): RetentionPolicy | undefined {
  const p: RetentionPolicy = {
    last: count('last', f.keepLast),
    hourly: count('hourly', f.keepHourly),
    daily: count('daily', f.keepDaily),
    weekly: count('weekly', f.keepWeekly),
    monthly: count('monthly', f.keepMonthly),
    yearly: count('yearly', f.keepYearly),
    within: f.keepWithin === undefined ? undefined : checkedDuration(f.keepWithin),
    tags: f.keepTag,
  };
  const given = Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as RetentionPolicy;
  return Object.keys(given).length > 0 ? given : undefined;
}

/** What prune would free after this forget, and what the pack age margin would hold back for now. */
function describePreview(p: PruneResult): string {
  const young = p.plan.youngPacks > 0 ? ` (${p.plan.youngPacks} packs too young to touch yet are not counted)` : '';
  return `\`fole-backup prune\` would then free ${formatBytes(p.plan.freedBytes)}${young}`;
}

export function registerForget(program: Command, run: Runner): void {
  program
    .command('forget')
    .argument('[backups...]', 'backup ids to remove (instead of a policy)')
    .description('remove backups by retention policy (--keep-*) or by id; --prune also frees their data')
    .option('--keep-last <n>', 'keep the n newest backups')
    .option('--keep-hourly <n>', 'keep the newest backup of each of the last n hours (UTC) that have one')
    .option('--keep-daily <n>', 'keep the newest backup of each of the last n days (UTC)')
    .option('--keep-weekly <n>', 'keep the newest backup of each of the last n ISO weeks (UTC)')
    .option('--keep-monthly <n>', 'keep the newest backup of each of the last n months (UTC)')
    .option('--keep-yearly <n>', 'keep the newest backup of each of the last n years (UTC)')
    .option('--keep-within <duration>', 'keep every backup within this long of the newest one, e.g. 7d, 36h, 1y6m')
    .option('--keep-tag <tag...>', 'keep every backup with this tag, or with <tag>:<anything> (repeatable)')
    .option('--save-policy', 'store this policy in the repository; later `forget` without --keep-* uses it')
    .option('-n, --dry-run', 'show what would be removed; change nothing')
    .option('--allow-remove-all', 'allow a run that removes every backup of a STORAGE_ROOT (refused without it)')
    .option('--prune', 'run prune afterwards to free the space')
    .option(
      '--repack-threshold <percent>',
      'with --prune: repack packs with at least this much unused data (default 20%)',
    )
    .option('--min-pack-age <hours>', 'with --prune: leave packs written in the last this many hours alone (default 4)')
    .option('--request <id>', "run the approved request <id>: an agent's forget runs once a human approved it")
    .addHelpText(
      'after',
      `
Backups are grouped by host and STORAGE_ROOT; the policy applies to each group.
A backup is kept when any rule keeps it; the table says which. A policy with no
rule is refused, and so is any run (by policy or by id) that would remove every
backup of a STORAGE_ROOT, unless --allow-remove-all is given. Counts are plain
whole numbers (at most 1000000); durations are whole numbers with units, at most
10000 years. A backup whose manifest is damaged is never removed by a policy:
\`fole-backup list\` marks it, and naming its id removes it. Removing backups is a
human decision: an agent may only use --dry-run.

Examples:
  fole-backup forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-tag pre-migration --dry-run
  fole-backup forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --save-policy
  fole-backup forget --prune                 # apply the stored policy, then free space`,
    )
    .action(function (this: Command, ids: string[]) {
      const flags = this.opts<ForgetFlags>();
      return run(async (ctx) => {
        const threshold = parseThreshold(flags.repackThreshold);
        const minPackAgeMs = parseMinPackAge(flags.minPackAge);
        const { forget, loadRetentionPolicy } = await import('../../retention/forget.js');
        const { forgetApprovalPlan } = await import('../../retention/approval-plan.js');
        const { describeDamaged } = await import('../../snapshot/store.js');
        const { prune } = await import('../../prune/prune.js');
        const repo = await ctx.openRepo(flags.dryRun === true ? 'forget-preview' : 'forget');
        try {
          let policy = policyFromFlags(flags);
          if (policy !== undefined && ids.length > 0)
            throw new UsageError('give backup ids or --keep-* rules, not both');
          if (flags.savePolicy && policy === undefined) throw new UsageError('--save-policy needs --keep-* rules');
          if (policy === undefined && ids.length === 0) {
            policy = await loadRetentionPolicy(repo);
            if (policy === undefined) {
              throw new UsageError(
                'no retention policy given and none stored in the repository',
                'give --keep-* rules (add --save-policy to store them)',
              );
            }
            ctx.out.info(`using the stored retention policy: ${describePolicy(policy)}`);
          }
          const chosen = { policy, ids: ids.length > 0 ? ids : undefined, allowRemoveAll: flags.allowRemoveAll };
          let r: ForgetResult;
          if (flags.dryRun !== true && ctx.trust().approvalsRequired > 0) {
            // an agent's forget: a human approves exactly which backups go; it removes those and nothing else
            if (flags.savePolicy || flags.prune) {
              throw new UsageError('an approved forget removes backups only: a human stores a policy or prunes');
            }
            const planned = await forgetApprovalPlan(repo, chosen);
            await approvalStep(ctx, repo, 'forget', planned, flags.request);
            const plan = planned.plan;
            r = await forget(repo, { ids: plan.remove.map((x) => x.backupId), allowRemoveAll: plan.allowRemoveAll });
          } else {
            r = await forget(repo, { ...chosen, dryRun: flags.dryRun, savePolicy: flags.savePolicy });
          }
          if (r.policySaved && policy !== undefined) ctx.out.info(`stored retention policy: ${describePolicy(policy)}`);
          else if (flags.savePolicy && policy !== undefined)
            ctx.out.info(`dry run: the retention policy would be stored: ${describePolicy(policy)}`);
          if (r.damaged.length > 0 && ids.length === 0)
            ctx.reporter.warn(describeDamaged(r.damaged, 'a policy neither keeps nor removes them'));
          const pruned =
            flags.prune && !flags.dryRun
              ? await prune(repo, { repackThreshold: threshold, minPackAgeMs, reporter: ctx.reporter })
              : undefined;
          // what prune would free once these backups are gone: planned now, as prune would plan it
          const going = r.decisions.filter((d) => !d.keep).map((d) => d.backupId);
          const preview =
            r.dryRun && going.length > 0
              ? await prune(repo, { dryRun: true, without: new Set(going), repackThreshold: threshold, minPackAgeMs })
              : undefined;
          ctx.reporter.stop();
          ctx.out[r.dryRun ? 'result' : 'report'](
            {
              ...r,
              policy: policy ?? null,
              ...(pruned ? { prune: pruned } : {}),
              ...(preview ? { pruneWouldFree: preview.plan.freedBytes, prunePreview: preview.plan } : {}),
            },
            () => {
              const lines = r.decisions.map(
                (d) =>
                  `${d.keep ? 'keep  ' : r.dryRun ? 'would remove' : 'remove'}  ${d.backupId}  ${d.createdAt}` +
                  `  ${d.reasons.join(', ')}`,
              );
              const removing = r.decisions.filter((d) => !d.keep).length;
              lines.push(
                r.dryRun
                  ? `dry run: ${removing} of ${r.decisions.length} backups would be removed; nothing was changed` +
                      (preview === undefined ? '' : `\n${describePreview(preview)}`)
                  : `${r.removed.length} backups removed, ${r.decisions.length - removing} kept` +
                      (pruned ? '' : ' (run `fole-backup prune` to free their space)'),
              );
              if (pruned) lines.push(describePrune(pruned));
              return lines.join('\n');
            },
          );
        } finally {
          await repo.close();
        }
      });
    });
}
