import type { Command } from 'commander';
import type { MigrationRollbackResult } from '../../restore/migration-rollback.js';
import type { Repository } from '../../repository/repository.js';
import { approvalStep } from '../approval-step.js';
import type { RestorePlan } from '../../restore/plan.js';
import type { RestoreResult } from '../../restore/execute.js';
import { UsageError } from '../output.js';
import type { Context, Runner } from '../context.js';
import { describePlan, describeRestore, parseModules } from './restore.js';

/**
 * An agent's migration rollback: the rollback's plan (the backup it chose, as a restore plan) is approved by a
 * human, then exactly that backup is restored, with the target checked before and under the lock.
 */
async function approvedRollback(
  ctx: Context,
  repo: Repository,
  migrationId: string,
  opts: { target: string; foleVersion: string | undefined; modules: string[] | undefined },
  requestId: string | undefined,
): Promise<MigrationRollbackResult> {
  const common = {
    target: opts.target,
    ...(opts.foleVersion === undefined ? {} : { foleVersion: opts.foleVersion }),
    ...(opts.modules === undefined ? {} : { modules: opts.modules }),
    reporter: ctx.reporter,
  };
  const { assertTargetAsApproved, rollbackApprovalPlan } = await import('../../restore/approval-plan.js');
  const { restore } = await import('../../restore/restore.js');
  const { plan, summary, passedOver } = await rollbackApprovalPlan(repo, migrationId, common);
  await approvalStep(ctx, repo, 'migration-rollback', { plan, summary }, requestId);
  const restored = await restore(repo, plan.backupId, {
    ...common,
    target: plan.target,
    confirm: plan.backupId,
    dryRun: false,
    signal: ctx.interruptible(),
    onSwap: () => ctx.finishing('the swap of the restored tree into place'),
    beforeLock: () => assertTargetAsApproved(plan, false),
    underLock: () => assertTargetAsApproved(plan, true),
  });
  return { migrationId, backupId: plan.backupId, passedOver, restore: restored };
}

export function registerMigrationRollback(program: Command, run: Runner): void {
  program
    .command('migration-rollback')
    .argument('<migrationId>', 'the migration to roll back (its backups are tagged pre-migration:<migrationId>)')
    .description('restore the newest verified backup tagged pre-migration:<id>, with the normal restore protocol')
    .requiredOption('-t, --target <dir>', 'the STORAGE_ROOT to roll back')
    .option('--confirm <backupId>', 'approve the restore: the full id of the backup the rollback chose (it tells you)')
    .option(
      '--fole-version <version>',
      'FOLE version (MAJOR.MINOR.PATCH[-PRERELEASE]) that will run on the rolled-back tree (default: ' +
        '$FOLE_VERSION); required',
    )
    .option('--modules <a,b,…>', "the target FOLE's modules (default: the target's modules/ directories)")
    .option('-n, --dry-run', 'verify, choose and plan; change nothing')
    .option('--request <id>', "run the approved request <id>: an agent's rollback runs once a human approved it")
    .addHelpText(
      'after',
      `
Take the backup before migrating:
  fole-backup backup --storage-root /srv/fole --fole-version 2.3.1 --tag pre-migration:42
Roll back if the migration fails (first without --confirm: it names the backup):
  fole-backup migration-rollback 42 --target /srv/fole --fole-version 2.3.1 --dry-run
  fole-backup migration-rollback 42 --target /srv/fole --fole-version 2.3.1 --confirm <backupId>

The newest backup with the tag that passes \`verify --read-data\` now is used; newer
ones that fail are passed over and named. Then the restore protocol runs as for
\`fole-backup restore\`, with every STOP.`,
    )
    .action(function (this: Command, migrationId: string) {
      const flags = this.opts<{
        target: string;
        confirm?: string;
        foleVersion?: string;
        modules?: string;
        dryRun?: boolean;
        request?: string;
      }>();
      return run(async (ctx) => {
        if (flags.target === '') throw new UsageError('--target is empty');
        const { givenFoleVersion } = await import('../../snapshot/fields.js');
        const foleVersion = givenFoleVersion(flags.foleVersion, process.env.FOLE_VERSION);
        const { migrationRollback, migrationTag } = await import('../../restore/migration-rollback.js');
        const repo = await ctx.openRepo(flags.dryRun === true ? 'restore-preview' : 'migration-rollback');
        try {
          const modules = parseModules(flags.modules);
          const r =
            flags.dryRun !== true && ctx.trust().approvalsRequired > 0
              ? await approvedRollback(
                  ctx,
                  repo,
                  migrationId,
                  { target: flags.target, foleVersion, modules },
                  flags.request,
                )
              : await migrationRollback(repo, migrationId, {
                  target: flags.target,
                  confirm: flags.confirm,
                  foleVersion,
                  modules,
                  dryRun: flags.dryRun === true,
                  reporter: ctx.reporter,
                });
          ctx.reporter.stop();
          ctx.out[flags.dryRun === true ? 'result' : 'report'](r, () => {
            const head = [
              `migration ${migrationId}: newest verified backup tagged ${migrationTag(migrationId)} is ${r.backupId}`,
            ];
            for (const p of r.passedOver) head.push(`  passed over ${p.backupId} (${p.createdAt}): ${p.problem}`);
            const body =
              flags.dryRun === true
                ? describePlan(r.restore as RestorePlan, { foleVersion: flags.foleVersion, modules: flags.modules })
                : describeRestore(r.restore as RestoreResult);
            return [...head, body].join('\n');
          });
        } finally {
          ctx.reporter.stop();
          await repo.close();
        }
      });
    });
}
