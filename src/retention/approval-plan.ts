/**
 * A forget as an approval binds it (src/trust/approval-flow.ts): exactly which
 * backups go, each named by its id and the SHA-256 of its stored snapshot
 * object, and the rule that chose them. An approved forget then removes those
 * backups by id and nothing else, whatever the policy would choose by then.
 */
import { sha256Hex } from '../crypto/hash.js';
import { FoleBackupError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { forget, type ForgetOptions } from './forget.js';
import { describePolicy, type RetentionPolicy } from './policy.js';

/** The plan an approval signs. */
export interface ForgetApprovalPlan {
  op: 'forget';
  repository: string;
  /** How they were chosen: a policy, or ids as given (null for the other). */
  policy: RetentionPolicy | null;
  ids: string[] | null;
  allowRemoveAll: boolean;
  /** The backups it removes, by id, with the SHA-256 of each stored snapshot object; sorted by id. */
  remove: { backupId: string; snapshot: string }[];
}

/** Plan a forget as `forget --dry-run` does, and describe it as an approval binds and shows it. */
export async function forgetApprovalPlan(
  repo: Repository,
  opts: Pick<ForgetOptions, 'policy' | 'ids' | 'allowRemoveAll'>,
): Promise<{ plan: ForgetApprovalPlan; summary: string[] }> {
  const r = await forget(repo, { ...opts, dryRun: true });
  const going = r.decisions.filter((d) => !d.keep).sort((a, b) => (a.backupId < b.backupId ? -1 : 1));
  if (going.length === 0) {
    throw new FoleBackupError('USAGE', 'this forget removes no backup: there is nothing to approve');
  }
  const remove = [];
  for (const d of going) {
    const stored = await repo.backend.load({ type: 'snapshots', name: d.backupId });
    remove.push({ backupId: d.backupId, snapshot: sha256Hex(stored) });
  }
  const plan: ForgetApprovalPlan = {
    op: 'forget',
    repository: repo.config.id,
    policy: opts.policy ?? null,
    ids: opts.ids ?? null,
    allowRemoveAll: opts.allowRemoveAll === true,
    remove,
  };
  const summary = [
    `forget ${remove.length} of ${r.decisions.length} backups` +
      (opts.policy === undefined ? ', named by id' : `, by the policy ${describePolicy(opts.policy)}`),
    ...going.slice(0, 20).map((d) => `removes ${d.backupId} (${d.createdAt}, ${d.group})`),
    ...(going.length > 20 ? [`… and ${going.length - 20} more (approvals show --json lists them all)`] : []),
    'the data stays until a human runs prune',
  ];
  return { plan, summary };
}
