/**
 * forget: remove backups (their snapshot objects) chosen by a retention policy
 * or by id, under the exclusive repository lock. The data they alone used stays
 * until `prune`. A retention policy can be stored in the repository
 * (settings/retention-policy) so a scheduler applies the same one every time.
 */
import { FoleBackupError } from '../errors.js';
import { RepositoryLock } from '../repository/lock.js';
import type { SealedObjects } from '../repository/slices.js';
import { resolveBackupId, scanSnapshots, type DamagedSnapshot } from '../snapshot/store.js';
import { printablePath } from '../snapshot/validate.js';
import { applyRetention, validatePolicy, type RetentionDecision, type RetentionPolicy } from './policy.js';

const POLICY = { type: 'settings', name: 'retention-policy' } as const;
const POLICY_AAD = Buffer.from('fole-settings:retention-policy');

/** Store a retention policy in the repository (sealed), for `forget` to apply when none is given. */
export async function saveRetentionPolicy(repo: SealedObjects, policy: RetentionPolicy): Promise<void> {
  validatePolicy(policy);
  await repo.saveJson(POLICY.type, policy, POLICY_AAD, POLICY.name);
}

/** The stored policy, or undefined if none was saved. */
export async function loadRetentionPolicy(repo: SealedObjects): Promise<RetentionPolicy | undefined> {
  try {
    const v = (await repo.loadJson(POLICY.type, POLICY.name, POLICY_AAD)) as RetentionPolicy;
    validatePolicy(v);
    return v;
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}

/** Which backups `forget` removes: a policy or explicit ids, and whether only to show it (dry run). */
export interface ForgetOptions {
  /** Remove backups this policy does not keep. */
  policy?: RetentionPolicy;
  /** Or remove exactly these backups (ids, unique prefixes). */
  ids?: string[];
  dryRun?: boolean;
  /**
   * Store `policy` as the repository's policy, under the same lock, once the run is known to be allowed (not on a dry
   * run).
   */
  savePolicy?: boolean;
  /**
   * Allow a run that removes every backup of a STORAGE_ROOT. Without it such a
   * run is refused (USAGE) before anything is removed: a policy that keeps
   * nothing is almost always a mistake (a typo, an overflowing duration), and
   * a stored one would wipe every later scheduled run too.
   */
  allowRemoveAll?: boolean;
  /** The present, against which a backup stamped in the future is recognised (default: the clock). */
  now?: Date;
}

/** What `forget` kept and removed, and why for each. */
export interface ForgetResult {
  dryRun: boolean;
  decisions: RetentionDecision[];
  removed: string[];
  /** Backups whose manifest cannot be read: a policy neither keeps nor removes them (name them to remove them). */
  damaged: DamagedSnapshot[];
  /** Whether the policy was stored. */
  policySaved: boolean;
}

/** The groups (host:STORAGE_ROOT) in which every backup would be removed. */
function groupsEmptied(decisions: readonly RetentionDecision[]): Map<string, RetentionDecision[]> {
  const byGroup = new Map<string, RetentionDecision[]>();
  for (const d of decisions) byGroup.set(d.group, [...(byGroup.get(d.group) ?? []), d]);
  for (const [g, list] of byGroup) if (list.some((d) => d.keep)) byGroup.delete(g);
  return byGroup;
}

const DAMAGED_GROUP = 'damaged (manifest unreadable)';

/** Remove backups from the repository: those a retention policy does not keep, or the ones named. Never
 * removes every backup of a STORAGE_ROOT unless allowed; packs are freed later by `prune`. */
export async function forget(repo: SealedObjects, opts: ForgetOptions): Promise<ForgetResult> {
  if ((opts.policy === undefined) === (opts.ids === undefined || opts.ids.length === 0)) {
    throw new FoleBackupError('USAGE', 'forget needs either backup ids or a retention policy (not both)', {
      hint: 'e.g. `fole-backup forget --keep-daily 7 --keep-weekly 5` or `fole-backup forget <backupId>`',
    });
  }
  if (opts.savePolicy && opts.policy === undefined)
    throw new FoleBackupError('USAGE', 'saving a policy needs --keep-* rules');
  // a dry run only reads: a shared lock, so it can run beside a backup
  const lock = await RepositoryLock.acquire(repo, { exclusive: opts.dryRun !== true, operation: 'forget' });
  try {
    const { snapshots: snaps, damaged } = await scanSnapshots(repo);
    let decisions: RetentionDecision[];
    if (opts.policy !== undefined) {
      decisions = applyRetention(
        snaps.map((s) => ({
          backupId: s.backupId,
          createdAt: s.createdAt,
          host: s.host,
          storageRoot: s.storageRoot,
          tags: s.tags,
        })),
        opts.policy,
        opts.now ?? new Date(),
      );
    } else {
      const chosen = new Set<string>();
      for (const ref of opts.ids ?? []) chosen.add(await resolveBackupId(repo, ref));
      const decide = (backupId: string, createdAt: string, group: string): RetentionDecision => ({
        backupId,
        createdAt,
        group,
        keep: !chosen.has(backupId),
        reasons: chosen.has(backupId) ? [] : ['not named'],
      });
      decisions = [
        ...[...snaps].reverse().map((s) => decide(s.backupId, s.createdAt, `${s.host}:${s.storageRoot}`)),
        // a damaged backup can be removed by naming it; its time is unknown
        ...damaged.filter((d) => chosen.has(d.backupId)).map((d) => decide(d.backupId, 'unknown', DAMAGED_GROUP)),
      ];
    }
    const emptied = [...groupsEmptied(decisions)].filter(([g]) => g !== DAMAGED_GROUP);
    if (emptied.length > 0 && opts.allowRemoveAll !== true) {
      const what = emptied
        .map(
          ([g, list]) =>
            `${printablePath(g)}: all ${list.length} backup${list.length === 1 ? '' : 's'} (${list
              .slice(0, 3)
              .map((d) => d.backupId)
              .join(', ')}${list.length > 3 ? ', …' : ''})`,
        )
        .join('; ');
      throw new FoleBackupError(
        'USAGE',
        `refused: this forget would remove every backup of ` +
          `${emptied.length === 1 ? 'a STORAGE_ROOT' : `${emptied.length} STORAGE_ROOTs`} — ${what}`,
        {
          hint:
            'check the --keep-* rules (`--dry-run` shows what each keeps); if removing them all is really ' +
            'meant, add --allow-remove-all. Nothing was changed',
        },
      );
    }
    let policySaved = false;
    if (opts.savePolicy && opts.policy !== undefined && !opts.dryRun) {
      await saveRetentionPolicy(repo, opts.policy);
      policySaved = true;
    }
    const removed: string[] = [];
    if (!opts.dryRun) {
      await refuseRetained(
        repo,
        decisions.filter((d) => !d.keep).map((d) => d.backupId),
      );
      for (const d of decisions) {
        if (d.keep) continue;
        await repo.backend.remove({ type: 'snapshots', name: d.backupId });
        removed.push(d.backupId);
      }
    }
    return { dryRun: opts.dryRun === true, decisions, removed, damaged, policySaved };
  } finally {
    await lock.release().catch(() => {});
  }
}

/**
 * Object Lock: a backup whose snapshot is under retention cannot be forgotten before it ends. Refused before
 * anything is removed, naming each and its date, rather than failing half way.
 */
async function refuseRetained(repo: Pick<SealedObjects, 'backend'>, backupIds: readonly string[]): Promise<void> {
  const retainedUntil = repo.backend.retainedUntil?.bind(repo.backend);
  if (retainedUntil === undefined) return;
  const held: string[] = [];
  for (const backupId of backupIds) {
    const until = await retainedUntil({ type: 'snapshots', name: backupId });
    if (until !== undefined) held.push(`${backupId} (until ${new Date(until).toISOString()})`);
  }
  if (held.length === 0) return;
  throw new FoleBackupError(
    'OBJECT_LOCKED',
    `forget refused: ${held.length === 1 ? 'a backup is' : `${held.length} backups are`} under retention ` +
      `(Object Lock): ${held.join(', ')}`,
    { hint: 'forget them after their retention ends, or leave them out of this run; nothing was removed' },
  );
}
