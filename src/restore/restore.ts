/**
 * Full restore, the library entry point (docs/RESTORE.md):
 *
 *   resolve the backup and load its manifest          MISSING_MANIFEST
 *   intent: --confirm is the resolved full id         AMBIGUOUS_INTENT
 *   recover an interrupted earlier restore of the target (not in a dry run)
 *   summarise the target, plan (pure)                 UNCLEAR_RESTORE_TARGET,
 *                                                     VERSION_MISMATCH, MODULE_SET_MISMATCH
 *   dry run: return the plan — nothing was written anywhere
 *   execute: stage + verify, lock, swap, release      CHECKSUM_MISMATCH, DB_INTEGRITY_ERROR
 *
 * Opening the repository (PERMISSION_DENIED on a wrong key) is the caller's.
 */
import { localRealPath } from '../backend/open.js';
import { FoleBackupError, StopError } from '../errors.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import type { Repository } from '../repository/repository.js';
import { describeDamaged, loadSnapshot, resolveBackupId, type DamagedSnapshot } from '../snapshot/store.js';
import { executeRestore, type RestoreResult } from './execute.js';
import { readTree } from '../snapshot/tree.js';
import { checkIntent, planRestore, type PlanInput, type RestorePlan } from './plan.js';
import { recover, type RecoverResult } from './recover.js';
import { countSelected } from './selection.js';
import { inspectTarget, normalizeTarget } from './target.js';

/** What to restore and where: the backup, the target directory and the operator's confirmations. */
export interface RestoreOptions {
  /** Directory to restore into: absent, empty, or an existing STORAGE_ROOT (kept aside). */
  target: string;
  /** The full id of the backup being restored: the operator's explicit approval. */
  confirm?: string;
  /** Plan only: check everything that can be checked without writing, and change nothing. */
  dryRun?: boolean;
  /** FOLE version that will run on the restored tree (X.Y.Z); required. */
  foleVersion?: string;
  /** The target's module set; default: the target tree's modules/ directories. */
  modules?: string[];
  /**
   * A partial restore: only what these globs match (and the directories above it), less what `exclude` matches,
   * into an empty or absent target. Same checks and STOPs as a whole restore.
   */
  include?: string[];
  exclude?: string[];
  reporter?: ProgressReporter;
  /** Aborts the restore, up to the swap (which, once begun, completes: see onSwap). */
  signal?: AbortSignal;
  /** Called as the swap begins: from here on an abort no longer stops the restore. */
  onSwap?: () => void;
  /** How long to wait for another holder of the Global Storage Lock (default 0). */
  storageLockWaitMs?: number;
  /** Clock for the previous tree's name (tests). */
  now?: () => Date;
  /** Checks run just before the Global Storage Lock is taken and once it is held, before anything is replaced. */
  beforeLock?: () => Promise<void>;
  underLock?: () => Promise<void>;
}

/**
 * Restore backup `backupRef` (`latest`, a unique prefix, or a full id) of `repo`
 * into `opts.target`. With `dryRun: true`, resolve to the plan and change
 * nothing; otherwise to what was restored. Every STOP is a StopError thrown
 * before anything live is touched; after one, the target is as it was and no
 * staging is left.
 */
export async function restore(
  repo: Repository,
  backupRef: string,
  opts: RestoreOptions & { dryRun: true },
): Promise<RestorePlan>;
export async function restore(
  repo: Repository,
  backupRef: string,
  opts: RestoreOptions & { dryRun?: false },
): Promise<RestoreResult>;
export async function restore(
  repo: Repository,
  backupRef: string,
  opts: RestoreOptions,
): Promise<RestorePlan | RestoreResult>;
export async function restore(
  repo: Repository,
  backupRef: string,
  opts: RestoreOptions,
): Promise<RestorePlan | RestoreResult> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const dryRun = opts.dryRun === true;

  reporter.phase('load manifest');
  let damaged: DamagedSnapshot[] = [];
  const backupId = await resolveBackupId(repo, backupRef, { onDamaged: (d) => (damaged = d) });
  if (damaged.length > 0)
    reporter.warn(describeDamaged(damaged, `\`${backupRef}\` is the newest readable backup, ${backupId}`));
  const snap = await loadSnapshot(repo, backupId);
  const intent = checkIntent(backupRef, backupId, opts.confirm, dryRun);
  if (intent !== undefined) throw intent;

  const target = await normalizeTarget(opts.target);
  let recovered: RecoverResult | null = null;
  if (!dryRun) {
    const r = await recover(target, { reporter });
    if (r.action !== 'none') {
      recovered = r;
      reporter.warn(`first, ${r.detail}`, target);
    }
  }

  let selection: PlanInput['selection'];
  if (opts.include !== undefined && opts.include.length > 0) {
    reporter.phase('select');
    const chosen = { include: opts.include, exclude: opts.exclude ?? [] };
    const counts = await countSelected(readTree(repo, snap.tree), chosen);
    if (counts.files + counts.dirs === 0) {
      throw new FoleBackupError(
        'USAGE',
        `--include ${chosen.include.join(' ')} matches nothing in backup ${backupId}`,
        {
          hint: `see what it holds with \`fole-backup ls ${backupId.slice(0, 8)} -R\` or \`fole-backup find PATTERN\``,
        },
      );
    }
    selection = { ...chosen, counts };
  } else if (opts.exclude !== undefined && opts.exclude.length > 0) {
    throw new FoleBackupError('USAGE', '--exclude needs --include: a whole restore restores the whole backup', {
      hint: "to restore all but some paths, add --include '**'",
    });
  }

  reporter.phase('plan');
  const plan = planRestore({
    ...(selection === undefined ? {} : { selection }),
    snapshot: snap,
    target: await inspectTarget(target),
    repositoryPath: await localRealPath(repo.backend),
    options: {
      requested: backupRef,
      ...(opts.confirm !== undefined ? { confirm: opts.confirm } : {}),
      dryRun,
      ...(opts.foleVersion !== undefined ? { foleVersion: opts.foleVersion } : {}),
      ...(opts.modules !== undefined ? { modules: opts.modules } : {}),
    },
    now: (opts.now ?? (() => new Date()))(),
    pid: process.pid,
  });
  if (plan instanceof StopError) throw plan;
  if (dryRun) return plan;

  const done = await executeRestore(repo, snap, plan, {
    reporter,
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    ...(opts.onSwap !== undefined ? { onSwap: opts.onSwap } : {}),
    ...(opts.storageLockWaitMs !== undefined ? { storageLockWaitMs: opts.storageLockWaitMs } : {}),
    ...(opts.beforeLock !== undefined ? { beforeLock: opts.beforeLock } : {}),
    ...(opts.underLock !== undefined ? { underLock: opts.underLock } : {}),
    inspect: () => inspectTarget(target),
  });
  return { ...done, recovered, durationMs: Date.now() - started };
}

export type { RestoreResult } from './execute.js';
