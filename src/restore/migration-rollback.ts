/**
 * Migration rollback, by FOLE's rule "rollback procedure uses previous
 * validated backup". Backups taken before a migration carry the tag
 * `pre-migration:<migrationId>`. A rollback picks the NEWEST such backup that
 * passes a full `verify --read-data` now (an older one only if every newer one
 * fails, and the result says why each was passed over), then runs the normal
 * restore protocol with it — same STOPs, same confirmation: the operator
 * confirms the exact backup id the rollback chose.
 */
import { FoleBackupError, StopError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { describeDamaged, scanSnapshots } from '../snapshot/store.js';
import { labelProblem } from '../snapshot/fields.js';
import { printablePath } from '../snapshot/validate.js';
import { verifyBackup, verifyVerdict } from '../verify/verify-backup.js';
import { restore, type RestoreOptions } from './restore.js';
import type { RestorePlan } from './plan.js';
import type { RestoreResult } from './execute.js';

/** The tag of the backup FOLE takes before running migration `migrationId`. */
export const migrationTag = (migrationId: string): string => `pre-migration:${migrationId}`;

/** The backup a migration rollback chose and what restoring it did (or would do, on a dry run). */
export interface MigrationRollbackResult {
  migrationId: string;
  backupId: string;
  /** Newer tagged backups that failed verification, with why. */
  passedOver: { backupId: string; createdAt: string; problem: string }[];
  restore: RestoreResult | RestorePlan;
}

/** Roll a STORAGE_ROOT back to the backup taken before FOLE migration `migrationId` (tagged by migrationTag),
 * with the same checks and STOPs as a restore. */
export async function migrationRollback(
  repo: Repository,
  migrationId: string,
  opts: RestoreOptions,
): Promise<MigrationRollbackResult> {
  // the id becomes a tag (pre-migration:<id>): it must be one a backup could carry
  const problem = /\s/.test(migrationId) ? 'it contains white space' : labelProblem(migrationTag(migrationId));
  if (problem !== undefined) {
    throw new FoleBackupError('USAGE', `invalid migration id ${printablePath(migrationId.slice(0, 60))}: ${problem}`, {
      hint: 'the id of the migration, as in the tag pre-migration:<id> of the backup taken before it',
    });
  }
  const tag = migrationTag(migrationId);
  const { snapshots, damaged } = await scanSnapshots(repo);
  // a damaged backup's tags cannot be read: it may have been the one to roll back to
  if (damaged.length > 0)
    opts.reporter?.warn(
      describeDamaged(damaged, `any of them may have been tagged ${tag}; only readable backups are considered`),
    );
  const candidates = snapshots.filter((s) => s.tags.includes(tag)).reverse();
  if (candidates.length === 0) {
    throw new StopError('MISSING_MANIFEST', `no backup is tagged ${tag}`, {
      hint:
        `backups before a migration are taken with \`fole-backup backup --tag ${tag}` +
        `\`; list them with \`fole-backup list\` and restore one explicitly if you must`,
    });
  }
  const reporter = opts.reporter;
  const passedOver: MigrationRollbackResult['passedOver'] = [];
  for (const snap of candidates) {
    reporter?.phase(`verify ${snap.backupId.slice(0, 8)}`);
    const report = await verifyBackup(repo, snap.backupId, { readData: true, reporter });
    const verdict = verifyVerdict(report);
    if (verdict !== undefined) {
      // an I/O problem, not a damaged backup: do not pass it over silently
      if (!(verdict instanceof StopError)) throw verdict;
      passedOver.push({ backupId: snap.backupId, createdAt: snap.createdAt, problem: verdict.message });
      reporter?.warn(
        `backup ${snap.backupId} (tagged ${tag}) failed verification and is passed over: ${verdict.message}`,
      );
      continue;
    }
    if (opts.dryRun !== true && opts.confirm !== snap.backupId) {
      throw new StopError(
        'AMBIGUOUS_INTENT',
        `migration rollback ${migrationId} would restore backup ${snap.backupId} (taken ${snap.createdAt}` +
          `, the newest verified backup tagged ${tag}` +
          `${passedOver.length > 0 ? `; ${passedOver.length} newer ones failed verification` : ''})`,
        { hint: `to confirm, re-run with --confirm ${snap.backupId} (add --dry-run first to see what would change)` },
      );
    }
    const result = await restore(repo, snap.backupId, { ...opts, confirm: snap.backupId });
    return { migrationId, backupId: snap.backupId, passedOver, restore: result };
  }
  throw new StopError('CHECKSUM_MISMATCH', `every backup tagged ${tag} failed verification (${candidates.length})`, {
    hint:
      'nothing was restored; run `fole-backup check --read-data` and decide with a human which backup, if ' +
      'any, to restore',
  });
}
