/**
 * A restore as an approval binds it (src/trust/approval-flow.ts): the content,
 * not the names. The canonical plan holds the repository, the backup id and the
 * SHA-256 of its stored snapshot object (which names the tree, and through it
 * every path and every file's SHA-256 the restore will write), every option,
 * and a fingerprint of the target as it is now. A rewritten snapshot, another
 * option or a target that changed gives another digest, and the approval no
 * longer applies.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../crypto/hash.js';
import { errnoCode, fsError, StopError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { restore, type RestoreOptions } from './restore.js';
import type { RestorePlan } from './plan.js';
import { migrationRollback, migrationTag, type MigrationRollbackResult } from './migration-rollback.js';

/** The plan an approval signs, as plain canonical data. */
export interface RestoreApprovalPlan {
  [key: string]: string | number | boolean | null | readonly string[] | Record<string, string | number | null>;
  /** A restore, or a migration rollback (which restores the backup it chose: migrationId says which). */
  op: 'restore' | 'migration-rollback';
  repository: string;
  backupId: string;
  /** SHA-256 of the snapshot object as stored. */
  snapshot: string;
  target: string;
  foleVersion: string | null;
  modules: readonly string[] | null;
  mode: 'replace' | 'fill';
  /** targetFingerprint of the target when planned, and the same without core/core.db and its side files (where
   * the restore's own Global Storage Lock row is written). */
  targetState: string;
  targetStateOutsideCore: string;
}

/** The database that holds the Global Storage Lock, and its side files: taking the lock writes to them. */
const LOCK_DB_FILES = new Set(['core/core.db', 'core/core.db-wal', 'core/core.db-shm', 'core/core.db-journal']);

/**
 * SHA-256 over every entry under `dir` (path, type, size, modification time, mode; sorted; symlinks not
 * followed), or "absent". Any change a writer can make to the tree changes it.
 */
async function targetFingerprint(dir: string, opts: { outsideCore?: boolean } = {}): Promise<string> {
  try {
    await lstat(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return 'absent';
    throw fsError('read', dir, err);
  }
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    if (opts.outsideCore === true && LOCK_DB_FILES.has(rel)) return;
    const abs = rel === '' ? dir : join(dir, rel);
    const st = await lstat(abs);
    const type = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : 'o';
    lines.push(`${rel}\0${type}\0${st.isDirectory() ? 0 : st.size}\0${st.mtimeMs}\0${st.mode}`);
    if (!st.isDirectory()) return;
    let entries: Dirent[];
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (err) {
      throw fsError('read', abs, err);
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      await walk(rel === '' ? e.name : join(rel, e.name));
    }
  };
  await walk('');
  return sha256Hex(Buffer.from(lines.join('\n')));
}

/**
 * Plan a migration rollback as `migration-rollback --dry-run` does (the newest tagged backup that verifies now),
 * then as a restore of that backup: what an approval of the rollback binds.
 */
export async function rollbackApprovalPlan(
  repo: Repository,
  migrationId: string,
  opts: Pick<RestoreOptions, 'target' | 'foleVersion' | 'modules' | 'reporter' | 'include' | 'exclude'>,
): Promise<{ plan: RestoreApprovalPlan; summary: string[]; passedOver: MigrationRollbackResult['passedOver'] }> {
  const chosen = await migrationRollback(repo, migrationId, { ...opts, dryRun: true });
  const { plan, summary } = await restoreApprovalPlan(repo, chosen.backupId, opts);
  return {
    plan: { ...plan, op: 'migration-rollback', migrationId },
    summary: [
      `roll back migration ${migrationId} to the newest verified backup tagged ${migrationTag(migrationId)}`,
      ...chosen.passedOver.map((p) => `passes over ${p.backupId} (${p.createdAt}): ${p.problem}`),
      ...summary,
    ],
    passedOver: chosen.passedOver,
  };
}

/** Plan a restore as `restore --dry-run` does, and describe it as an approval binds and shows it. */
export async function restoreApprovalPlan(
  repo: Repository,
  backupRef: string,
  opts: Pick<RestoreOptions, 'target' | 'foleVersion' | 'modules' | 'reporter' | 'include' | 'exclude'>,
): Promise<{ plan: RestoreApprovalPlan; summary: string[]; restorePlan: RestorePlan }> {
  const rp = await restore(repo, backupRef, { ...opts, dryRun: true });
  const stored = await repo.backend.load({ type: 'snapshots', name: rp.backupId });
  const plan: RestoreApprovalPlan = {
    op: 'restore',
    repository: repo.config.id,
    backupId: rp.backupId,
    snapshot: sha256Hex(stored),
    target: rp.target.path,
    foleVersion: opts.foleVersion ?? null,
    modules: opts.modules === undefined ? null : [...opts.modules].sort(),
    mode: rp.mode,
    targetState: await targetFingerprint(rp.target.path),
    targetStateOutsideCore: await targetFingerprint(rp.target.path, { outsideCore: true }),
    // a partial restore's patterns are bound too; a whole restore's plan keeps the form it always had
    ...(rp.selection === null ? {} : { include: rp.selection.include, exclude: rp.selection.exclude }),
  };
  const w = rp.write;
  const summary = [
    `restore backup ${rp.backupId} (${rp.backup.type}, ${rp.backup.createdAt}, by ${rp.backup.createdBy}, FOLE ` +
      `${rp.backup.foleVersion}) into ${rp.target.path}`,
    rp.mode === 'replace'
      ? `replaces what the target holds now: ${rp.target.holds} (kept aside as ${rp.previousTree ?? '?'})`
      : 'fills an absent or empty target: nothing is replaced',
    `writes ${w.files} files, ${w.dirs} directories, ${w.databases} databases, ${w.bytes} bytes`,
    `modules: ${rp.backup.modules.join(', ') || 'none'}; projects in the target now: ${rp.target.projects}`,
  ];
  return { plan, summary, restorePlan: rp };
}

/**
 * Throws STOP UNCLEAR_RESTORE_TARGET when the target no longer has the fingerprint the approved plan holds:
 * the whole tree before the Global Storage Lock is taken, everything but the lock's database once it is held.
 */
export async function assertTargetAsApproved(plan: RestoreApprovalPlan, underLock: boolean): Promise<void> {
  const now = await targetFingerprint(plan.target, { outsideCore: underLock });
  if (now === (underLock ? plan.targetStateOutsideCore : plan.targetState)) return;
  throw new StopError(
    'UNCLEAR_RESTORE_TARGET',
    `restore target ${plan.target} changed since the restore was approved`,
    {
      path: plan.target,
      hint: 'nothing was changed; plan the restore again and ask for a new approval',
    },
  );
}
