/**
 * Finishing or rolling back a restore that was interrupted (killed, crashed,
 * power lost), from its journal (src/restore/journal.ts) and what is on disk.
 * `restore` runs this first for its target; `fole-backup recover` runs it alone.
 *
 * The rule: the commit point is the rename of the live tree aside.
 *
 *   Before it, the live tree was never touched, so recovery ROLLS BACK: the
 *   staging directory is removed (whether or not it was complete) and the live
 *   tree stays exactly as it is. Recovery never renames a live tree: that would
 *   need the Global Storage Lock and a fresh look at the target, which is a new
 *   restore's job, not a recovery's.
 *
 *   From it on, the new tree had been completely staged and verified (the
 *   journal said `staged` before the rename), so recovery COMPLETES: it moves
 *   the staged tree in if it is not there yet; the previous tree stays kept.
 *
 * The renames are not atomic with the journal writes, so the decision looks at
 * which of target / staging / previous exist; each journal state allows exactly
 * the layouts of its own step and the next one:
 *
 *   journal            target  staging  previous   decision
 *   staging            any     any      any        roll back (staging unverified)
 *   staged  (replace)  yes     yes      no         roll back (live not moved yet)
 *   staged, live-moved-aside
 *           (replace)  no      yes      yes        complete: move staging in
 *   live-moved-aside   yes     no       yes        complete (already moved in)
 *   staging-moved-in, done
 *                      yes     no       any        complete (previous may be discarded)
 *   staged  (fill)     any     yes      -          roll back (not moved in yet)
 *   staged.. (fill)    yes     no       -          complete (already moved in)
 *   anything else      -> STOP UNCLEAR_RESTORE_TARGET: something else moved these
 *                         directories; recovery refuses to guess and changes nothing
 *
 * Both ways also delete the lock row the restore held (found by its owner
 * string, recorded in the journal from the start) from the trees' core.db, and
 * re-apply core/ and core/core.db metadata in a completed tree. Without a
 * journal, staging directories of this target left by dead processes are removed.
 */
import { processAlive } from '../host/process-alive.js';
import { holderGone, selfIdentity } from '../host/process-identity.js';
import { lstat, readdir, chmod, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { FoleBackupError, StopError, errnoCode, fsError } from '../errors.js';
import { renameDurable } from '../fs/durable.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import type { HeldStorageLock } from '../storage/global-lock.js';
import {
  readJournal,
  removeJournal,
  removeJournalLeftovers,
  updateJournal,
  type KeptMetadata,
  type RestoreJournal,
} from './journal.js';
import { deleteLockRow } from './lock-row.js';
import { journalPathOf, stagingPidOf } from './names.js';
import { removeTree } from './remove-tree.js';
import { normalizeTarget } from './target.js';
import { utimeSeconds } from '../fs/file-times.js';

/** What `recover` found and did with an interrupted restore: finished, rolled back, or nothing to do. */
export interface RecoverResult {
  target: string;
  /**
   * none: nothing was pending. rolled-back: the target is as it was before. completed: the target holds the restored
   * backup.
   */
  action: 'none' | 'rolled-back' | 'completed';
  /** What was found and done, in words. */
  detail: string;
  /** The interrupted restore's backup id and journal state, when there was a journal. */
  backupId?: string;
  journalState?: RestoreJournal['state'];
  /** Where the tree that was live before the interrupted restore is kept (completed, replace). */
  previousTree?: string | null;
  /** Staging directories removed. */
  removed: string[];
  warnings: string[];
}

/** Which of the journal's three paths exist. */
export interface Presence {
  target: boolean;
  staging: boolean;
  previous: boolean;
}

export type RecoveryDecision =
  | { action: 'roll-back'; reason: string }
  | { action: 'complete'; moveStagingIn: boolean; reason: string }
  | { action: 'refuse'; reason: string };

/** The recovery rule (see the module header). Pure. */
export function decideRecovery(j: Pick<RestoreJournal, 'state' | 'mode'>, on: Presence): RecoveryDecision {
  const s = j.state;
  if (s === 'staging') {
    return {
      action: 'roll-back',
      reason: 'the new tree was not completely staged and verified; the live tree was not touched',
    };
  }
  if (j.mode === 'fill') {
    if (s === 'staged' && on.staging)
      return {
        action: 'roll-back',
        reason: 'the verified new tree had not been moved in yet; the target was not touched',
      };
    if (!on.staging && on.target)
      return { action: 'complete', moveStagingIn: false, reason: 'the verified new tree had already been moved in' };
    return { action: 'refuse', reason: `journal state ${s} does not match what is on disk` };
  }
  if (s === 'staged' && on.target && on.staging && !on.previous) {
    return {
      action: 'roll-back',
      reason: 'the verified new tree was staged but the live tree had not been moved aside yet',
    };
  }
  if ((s === 'staged' || s === 'live-moved-aside') && !on.target && on.staging && on.previous) {
    return {
      action: 'complete',
      moveStagingIn: true,
      reason: 'the live tree had been moved aside and the verified new tree was ready',
    };
  }
  if (s === 'live-moved-aside' && on.target && !on.staging && on.previous) {
    return { action: 'complete', moveStagingIn: false, reason: 'the verified new tree had already been moved in' };
  }
  if ((s === 'staging-moved-in' || s === 'done') && on.target && !on.staging) {
    return { action: 'complete', moveStagingIn: false, reason: 'the verified new tree had already been moved in' };
  }
  return { action: 'refuse', reason: `journal state ${s} does not match what is on disk` };
}

/** Targets a restore in this process is working on: recovery leaves their journals alone. */
const active = new Set<string>();

export function markRestoreActive(target: string): void {
  active.add(target);
}

export function markRestoreDone(target: string): void {
  active.delete(target);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw fsError('read', path, err);
  }
}

/**
 * Whether the restore that wrote journal `j` may still be running. A journal
 * with its holder's boot id and PID namespace is judged by them (a pid alone
 * names another process, or none, in another container); one of an older
 * version by its pid on this host, as it always was.
 */
function journalHolderRunning(j: RestoreJournal, path: string): boolean {
  const me = selfIdentity();
  if (j.bootId !== undefined && j.pidNs !== undefined) {
    const isUs =
      j.pid === process.pid && j.bootId === me.bootId && j.pidNs === me.pidNs && j.startTime === me.startTime;
    if (isUs) return active.has(path);
    return holderGone(j) === false;
  }
  return j.pid === process.pid ? active.has(path) : processAlive(j.pid);
}

/**
 * Delete the restore's lock row from every tree that has a core.db (failures are warnings: the row is stale anyway).
 */
async function dropLockRows(
  roots: readonly (string | null)[],
  owner: string,
  warn: (msg: string) => void,
): Promise<void> {
  for (const root of roots) {
    if (root === null) continue;
    try {
      deleteLockRow(root, owner);
    } catch (err) {
      // a tree without core.db holds no row of ours
      if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') continue;
      warn(
        `could not remove the restore's storage lock row from ${join(root, 'core', 'core.db')} (` +
          `${err instanceof Error ? err.message : String(err)}); it is stale and the next holder takes it over`,
      );
    }
  }
}

/**
 * Re-apply the backup's mode and mtime to core/ and core/core.db (opening core.db for the lock bookkeeping creates and
 * removes side files in core/).
 */
export async function applyKept(
  root: string,
  keep: readonly KeptMetadata[],
  warn?: (msg: string) => void,
): Promise<void> {
  // the file first, then its directory (writing core.db created and removed side files in core/)
  const ordered = [...keep].sort((a, b) => b.path.length - a.path.length);
  for (const k of ordered) {
    const p = join(root, ...k.path.split('/'));
    try {
      await chmod(p, k.mode);
      await utimes(p, utimeSeconds(k.mtimeMs), utimeSeconds(k.mtimeMs));
    } catch (err) {
      const e = fsError('write', p, err);
      if (warn === undefined) throw e;
      warn(`could not restore the mode and mtime of ${p}: ${e.message}`);
    }
  }
}

/**
 * The end of every restore that got its tree in place: our lock row out of the
 * previous tree (and out of the target, should one be there: a delete that
 * finds none writes nothing, so the restored core.db keeps its bytes), the
 * held lock released, core/ metadata re-applied, journal removed.
 */
export async function finishRestore(
  j: RestoreJournal,
  warn: (msg: string) => void,
  lock?: HeldStorageLock,
): Promise<void> {
  await dropLockRows([j.previousTree, j.target], j.lockOwner, warn);
  if (lock !== undefined) {
    await lock
      .release()
      .catch((err: unknown) => warn(`release the storage lock: ${err instanceof Error ? err.message : String(err)}`));
  }
  await applyKept(j.target, j.keep, warn);
  await removeJournal(j.target);
}

function describeOnDisk(j: RestoreJournal, on: Presence): string {
  const say = (what: string, path: string | null, there: boolean): string =>
    path === null ? '' : `${what} ${path} ${there ? 'exists' : 'is absent'}; `;
  return (
    `${say('target', j.target, on.target)}${say('staging', j.staging, on.staging)}` +
    `${say('previous tree', j.previousTree, on.previous)}`
  ).replace(/; $/, '');
}

export interface RecoverOptions {
  reporter?: ProgressReporter;
  /** Called by a restore of this process on its own journal (skips the "another restore is running" check). */
  ownJournal?: boolean;
}

/**
 * Finish or roll back an interrupted restore of `target`. Throws STORAGE_LOCKED
 * when the journal belongs to a restore that may still be running, and STOP
 * UNCLEAR_RESTORE_TARGET (changing nothing) when the disk does not match the journal.
 */
export async function recover(target: string, opts: RecoverOptions = {}): Promise<RecoverResult> {
  const path = await normalizeTarget(target);
  const reporter = opts.reporter ?? silentReporter;
  const warnings: string[] = [];
  const warn = (msg: string): void => {
    warnings.push(msg);
    reporter.warn(msg, path);
  };
  const removed: string[] = [];
  const j = await readJournal(path);
  let result: RecoverResult | undefined;
  if (j !== undefined) {
    if (opts.ownJournal !== true) {
      if (j.host !== hostname()) {
        throw new FoleBackupError(
          'STORAGE_LOCKED',
          `the restore journal of ${path} was written on host ${j.host} (pid ${j.pid})`,
          {
            path,
            hint: `run \`fole-backup recover --target ${path}\` on ${j.host}, where that restore ran`,
          },
        );
      }
      if (journalHolderRunning(j, path)) {
        throw new FoleBackupError(
          'STORAGE_LOCKED',
          `a restore of ${path} (pid ${j.pid}, backup ${j.backupId}) is still running`,
          {
            path,
            hint:
              j.pidNs !== undefined && j.pidNs !== selfIdentity().pidNs
                ? `it ran in another PID namespace (a container) of ${j.host}: run \`fole-backup recover ` +
                  `--target ${path}\` there, or wait for it to finish`
                : 'wait for it to finish; if that pid is not a fole-backup process any more, run recover again ' +
                  'once it has exited',
          },
        );
      }
    }
    reporter.phase('recover');
    const on: Presence = {
      target: await exists(j.target),
      staging: await exists(j.staging),
      previous: j.previousTree !== null && (await exists(j.previousTree)),
    };
    const d = decideRecovery(j, on);
    const what =
      `an interrupted restore of backup ${j.backupId} (journal state ${j.state}` +
      `, started ${j.startedAt} by pid ${j.pid})`;
    if (d.action === 'refuse') {
      const verified = j.state === 'staging' ? ', possibly incomplete' : ', verified';
      const staged = on.staging ? ` (${j.staging} is the staged backup${verified})` : '';
      throw new StopError('UNCLEAR_RESTORE_TARGET', `recover ${path}: ${what}: ${d.reason}: ${describeOnDisk(j, on)}`, {
        path,
        hint:
          `nothing was changed; decide by hand which tree belongs at ${path}${staged}` +
          `, then remove the journal ${journalPathOf(path)}`,
      });
    }
    if (d.action === 'roll-back') {
      await removeTree(j.staging);
      if (on.staging) removed.push(j.staging);
      await dropLockRows([j.target], j.lockOwner, warn);
      await removeJournal(path);
      result = {
        target: path,
        action: 'rolled-back',
        backupId: j.backupId,
        journalState: j.state,
        removed,
        warnings,
        detail: `rolled back ${what}: ${d.reason}; the staging directory was removed and ${path} is as it was before`,
      };
    } else {
      let cur = j;
      if (d.moveStagingIn) {
        await renameDurable(j.staging, j.target);
        cur = await updateJournal(j, 'staging-moved-in');
      }
      await finishRestore(cur, warn);
      result = {
        target: path,
        action: 'completed',
        backupId: j.backupId,
        journalState: j.state,
        previousTree: j.previousTree,
        removed,
        warnings,
        detail:
          `completed ${what}: ${d.reason}${d.moveStagingIn ? '; moved it in' : ''}; ${path}` +
          ` now holds backup ${j.backupId}` +
          `${j.previousTree === null ? '' : `, the previous tree is kept at ${j.previousTree}`}`,
      };
    }
  }
  // the journal's unrenamed next states and staging directories left by processes that are gone
  const gone = (pid: number): boolean => !(pid === process.pid ? active.has(path) : processAlive(pid));
  await removeJournalLeftovers(path, gone);
  const parent = dirname(path);
  let names: string[] = [];
  try {
    names = await readdir(parent);
  } catch {
    names = [];
  }
  for (const name of names) {
    const pid = stagingPidOf(name, path);
    if (pid === undefined) continue;
    if (!gone(pid)) continue;
    const dir = join(parent, name);
    await removeTree(dir);
    removed.push(dir);
  }
  if (result !== undefined) return result;
  if (removed.length > 0) {
    return {
      target: path,
      action: 'rolled-back',
      removed,
      warnings,
      detail:
        `removed ${removed.length} staging director${removed.length === 1 ? 'y' : 'ies'}` +
        ` left by interrupted restores; ${path} was not touched`,
    };
  }
  return { target: path, action: 'none', removed, warnings, detail: `no interrupted restore of ${path}` };
}
