/**
 * forget: remove backups (their snapshot objects) chosen by a retention policy
 * or by id, under the exclusive repository lock. The data they alone used stays
 * until `prune`. A retention policy can be stored in the repository
 * (settings/retention-policy) so a scheduler applies the same one every time.
 */
import { FoleBackupError } from '../errors.js';
import { RepositoryLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots, resolveBackupId } from '../snapshot/store.js';
import { applyRetention, validatePolicy, type RetentionDecision, type RetentionPolicy } from './policy.js';

const POLICY = { type: 'settings', name: 'retention-policy' } as const;
const POLICY_AAD = Buffer.from('fole-settings:retention-policy');

export async function saveRetentionPolicy(repo: Repository, policy: RetentionPolicy): Promise<void> {
  validatePolicy(policy);
  await repo.saveJson(POLICY.type, policy, POLICY_AAD, POLICY.name);
}

/** The stored policy, or undefined if none was saved. */
export async function loadRetentionPolicy(repo: Repository): Promise<RetentionPolicy | undefined> {
  try {
    const v = (await repo.loadJson(POLICY.type, POLICY.name, POLICY_AAD)) as RetentionPolicy;
    validatePolicy(v);
    return v;
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}

export interface ForgetOptions {
  /** Remove backups this policy does not keep. */
  policy?: RetentionPolicy;
  /** Or remove exactly these backups (ids, unique prefixes). */
  ids?: string[];
  dryRun?: boolean;
}

export interface ForgetResult {
  dryRun: boolean;
  decisions: RetentionDecision[];
  removed: string[];
}

export async function forget(repo: Repository, opts: ForgetOptions): Promise<ForgetResult> {
  if ((opts.policy === undefined) === (opts.ids === undefined || opts.ids.length === 0)) {
    throw new FoleBackupError('USAGE', 'forget needs either backup ids or a retention policy (not both)', {
      hint: 'e.g. `fole-backup forget --keep-daily 7 --keep-weekly 5` or `fole-backup forget <backupId>`',
    });
  }
  const lock = await RepositoryLock.acquire(repo, { exclusive: true, operation: 'forget' });
  try {
    const snaps = await listSnapshots(repo);
    let decisions: RetentionDecision[];
    if (opts.policy !== undefined) {
      decisions = applyRetention(
        snaps.map((s) => ({ backupId: s.backupId, createdAt: s.createdAt, host: s.host, storageRoot: s.storageRoot, tags: s.tags })),
        opts.policy,
      );
    } else {
      const chosen = new Set<string>();
      for (const ref of opts.ids ?? []) chosen.add(await resolveBackupId(repo, ref));
      decisions = [...snaps]
        .reverse()
        .map((s) => ({
          backupId: s.backupId, createdAt: s.createdAt, group: `${s.host}:${s.storageRoot}`,
          keep: !chosen.has(s.backupId), reasons: chosen.has(s.backupId) ? [] : ['not named'],
        }));
    }
    const removed: string[] = [];
    if (!opts.dryRun) {
      for (const d of decisions) {
        if (d.keep) continue;
        await repo.backend.remove({ type: 'snapshots', name: d.backupId });
        removed.push(d.backupId);
      }
    }
    return { dryRun: opts.dryRun === true, decisions, removed };
  } finally {
    await lock.release().catch(() => {});
  }
}
