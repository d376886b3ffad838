/**
 * A prune as an approval binds it (src/trust/approval-flow.ts): the packs it
 * deletes and rewrites, by name, and what that choice rests on — the backups
 * whose data it keeps and the digest of every blob they use. An approved prune
 * recomputes its plan under the exclusive lock and deletes nothing unless that
 * plan is still exactly the approved one: a backup made, forgotten or rewritten
 * since, or a pack that came of age, means a new plan and a new approval.
 */
import { sha256Hex } from '../crypto/hash.js';
import { FoleBackupError, StopError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { prune, type PlannedPrune, type PruneOptions } from './prune.js';

/** The plan an approval signs. */
export interface PruneApprovalPlan {
  op: 'prune';
  repository: string;
  /** The options as given (null: the default); the threshold in parts per million (a plan holds integers). */
  repackThresholdPpm: number | null;
  minPackAgeMs: number | null;
  /** The backups whose data it keeps, by id, sorted. */
  backups: string[];
  /** SHA-256 of the sorted ids of every blob those backups use, one per line. */
  used: string;
  /** Packs it deletes, sorted (repacked ones included). */
  remove: string[];
  /** Packs whose used blobs it copies out first, with the SHA-256 of those blob ids (sorted, one per line). */
  repack: { pack: string; blobs: string }[];
}

type PlanOptions = Pick<PruneOptions, 'repackThreshold' | 'minPackAgeMs'>;

/** The options a stored plan was made with. */
export function pruneOptionsOf(p: PruneApprovalPlan): PlanOptions {
  return {
    ...(p.repackThresholdPpm === null ? {} : { repackThreshold: p.repackThresholdPpm / 1e6 }),
    ...(p.minPackAgeMs === null ? {} : { minPackAgeMs: p.minPackAgeMs }),
  };
}

function digestOfIds(ids: Iterable<string>): string {
  return sha256Hex(Buffer.from([...ids].sort().join('\n'), 'utf8'));
}

function approvalPlanOf(repo: Repository, planned: PlannedPrune, opts: PlanOptions): PruneApprovalPlan {
  return {
    op: 'prune',
    repository: repo.config.id,
    repackThresholdPpm: opts.repackThreshold === undefined ? null : Math.round(opts.repackThreshold * 1e6),
    minPackAgeMs: opts.minPackAgeMs ?? null,
    backups: [...planned.backups].sort(),
    used: digestOfIds(planned.used),
    remove: [...planned.plan.remove].sort(),
    repack: planned.plan.repack
      .map((r) => ({ pack: r.pack, blobs: digestOfIds(r.blobs) }))
      .sort((a, b) => (a.pack < b.pack ? -1 : 1)),
  };
}

/** Plan a prune as `prune --dry-run` does, and describe it as an approval binds and shows it. */
export async function pruneApprovalPlan(
  repo: Repository,
  opts: PlanOptions,
): Promise<{ plan: PruneApprovalPlan; summary: string[] }> {
  let planned: PlannedPrune | undefined;
  await prune(repo, {
    ...opts,
    dryRun: true,
    onPlan: (p) => {
      planned = p;
    },
  });
  const p = planned as PlannedPrune;
  if (p.plan.remove.length === 0) {
    throw new FoleBackupError('USAGE', 'this prune deletes no pack: there is nothing to approve');
  }
  const s = p.plan.stats;
  const summary = [
    `prune: delete ${p.plan.remove.length} of ${s.packs} packs (${p.plan.repack.length} of them repacked first, ` +
      `${s.repackBytes} bytes copied into new packs), freeing ${s.freedBytes} bytes`,
    `keeps every blob the ${p.backups.length} backups in the repository use (${s.usedBlobs} blobs); ` +
      `deletes ${s.unusedBlobs} blobs no backup uses`,
    'no backup is removed: forget chose those earlier',
  ];
  return { plan: approvalPlanOf(repo, p, opts), summary };
}

/**
 * The check an approved prune makes under the exclusive lock (PruneOptions.onPlan): the plan computed there must
 * be the approved one, else STOP APPROVAL_REQUIRED and nothing is deleted.
 */
export function requireApprovedPrune(
  repo: Repository,
  approved: PruneApprovalPlan,
  opts: PlanOptions,
): (planned: PlannedPrune) => void {
  return (planned) => {
    if (JSON.stringify(approvalPlanOf(repo, planned, opts)) === JSON.stringify(approved)) return;
    throw new StopError('APPROVAL_REQUIRED', 'the repository changed since this prune was approved', {
      hint: 'nothing was deleted; plan the prune again (--dry-run) and ask for a new approval',
    });
  };
}
