/**
 * The restore journal: a small JSON file beside the target
 * (`.fole-backup-restore-journal-<name>.json`, see names.ts) that records what a
 * restore is doing, so that a restore killed at any instant can be finished or
 * rolled back (src/restore/recover.ts). Every state is on stable storage before
 * the step it allows:
 *
 *   staging           written before the staging directory is created; the staged
 *                     tree may be incomplete or unverified; nothing live touched
 *   staged            every file written and verified, every database checked, the
 *                     storage lock held on the live tree; next: the live tree is renamed aside
 *   live-moved-aside  the live tree is at `previousTree`; next: staging is renamed in
 *   staging-moved-in  the new tree is at the target; left: our lock row in the
 *                     previous tree, the journal
 *   done              the restore is complete; the journal is removed next
 *
 * It is created exclusively (link(2) of a complete file), so two restores of
 * one target cannot both run; later states are written to `<journal>.next-<pid>`,
 * fsynced and renamed over it (the recipe of src/fs/durable.ts, under a name a
 * recovery recognises if a kill leaves it behind).
 */
import { selfIdentity } from '../host/process-identity.js';
import { link, open, readdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { FoleBackupError, StopError, errnoCode, fsError } from '../errors.js';
import { fsyncDir, removeDurable, renameDurable } from '../fs/durable.js';
import { isBackupId } from '../snapshot/store.js';
import { journalPathOf, previousTreePrefix, stagingPidOf } from './names.js';

/** The steps of a restore, in order: each is written to the journal before it is taken. */
export type JournalState = 'staging' | 'staged' | 'live-moved-aside' | 'staging-moved-in' | 'done';
const JOURNAL_STATES: readonly JournalState[] = ['staging', 'staged', 'live-moved-aside', 'staging-moved-in', 'done'];

/**
 * Mode and mtime of a path in the new tree, re-applied after the lock bookkeeping opened core.db (SQLite's side files
 * come and go in core/).
 */
export interface KeptMetadata {
  path: string;
  mode: number;
  mtimeMs: number;
}

/** The journal a restore keeps beside its target so that a crash at any instant can be finished or undone. */
export interface RestoreJournal {
  version: 1;
  backupId: string;
  /** Absolute target path. */
  target: string;
  staging: string;
  /** Where the live tree goes (replace) or null (fill: the target is absent or an empty directory). */
  previousTree: string | null;
  mode: 'replace' | 'fill';
  state: JournalState;
  /** The restoring process. */
  pid: number;
  host: string;
  /** The restoring process's boot id, PID namespace and start time (absent in journals of older versions). */
  bootId?: string;
  pidNs?: string;
  startTime?: string;
  /** Owner string of the Global Storage Lock row this restore holds (or would hold). */
  lockOwner: string;
  /** Metadata of core/ and core/core.db in the new tree (set once staged). */
  keep: KeptMetadata[];
  startedAt: string;
  updatedAt: string;
}

function damaged(path: string, why: string): StopError {
  return new StopError('UNCLEAR_RESTORE_TARGET', `restore journal ${path} is damaged: ${why}`, {
    path,
    hint:
      'an interrupted restore left this journal; nothing was changed — inspect the target, the staging and ' +
      'the .pre-restore-* directories beside it and decide by hand',
  });
}

/** Validate a parsed journal for `target`; every path must be one a restore of that target would use. */
function validateJournal(v: unknown, target: string, file = journalPathOf(target)): RestoreJournal {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw damaged(file, 'not an object');
  const j = v as Record<string, unknown>;
  if (j.version !== 1) throw damaged(file, `unknown version ${JSON.stringify(j.version)}`);
  if (typeof j.backupId !== 'string' || !isBackupId(j.backupId)) throw damaged(file, 'bad backupId');
  if (j.target !== target) throw damaged(file, `it is for ${JSON.stringify(j.target)}, not ${target}`);
  if (
    typeof j.staging !== 'string' ||
    dirname(j.staging) !== dirname(target) ||
    stagingPidOf(basename(j.staging), target) === undefined
  ) {
    throw damaged(file, `bad staging path ${JSON.stringify(j.staging)}`);
  }
  if (j.mode !== 'replace' && j.mode !== 'fill') throw damaged(file, `bad mode ${JSON.stringify(j.mode)}`);
  const prev = j.previousTree;
  if (
    j.mode === 'fill'
      ? prev !== null
      : typeof prev !== 'string' ||
        dirname(prev) !== dirname(target) ||
        !basename(prev).startsWith(previousTreePrefix(target))
  ) {
    throw damaged(file, `bad previousTree ${JSON.stringify(prev)}`);
  }
  if (typeof j.state !== 'string' || !(JOURNAL_STATES as readonly string[]).includes(j.state))
    throw damaged(file, `bad state ${JSON.stringify(j.state)}`);
  if (typeof j.pid !== 'number' || !Number.isSafeInteger(j.pid) || j.pid <= 0) throw damaged(file, 'bad pid');
  if (typeof j.host !== 'string' || typeof j.lockOwner !== 'string' || j.lockOwner === '')
    throw damaged(file, 'bad host or lock owner');
  if (![j.bootId, j.pidNs, j.startTime].every((x) => x === undefined || typeof x === 'string'))
    throw damaged(file, 'bad process identity');
  if (typeof j.startedAt !== 'string' || typeof j.updatedAt !== 'string') throw damaged(file, 'bad timestamps');
  if (
    !Array.isArray(j.keep) ||
    !j.keep.every(
      (k: unknown) =>
        typeof k === 'object' &&
        k !== null &&
        ((k as KeptMetadata).path === 'core' || (k as KeptMetadata).path === 'core/core.db') &&
        Number.isSafeInteger((k as KeptMetadata).mode) &&
        Number.isFinite((k as KeptMetadata).mtimeMs),
    )
  ) {
    throw damaged(file, 'bad metadata list');
  }
  return v as RestoreJournal;
}

/** The journal of `target` (absolute, normalised), or undefined when there is none. */
export async function readJournal(target: string): Promise<RestoreJournal | undefined> {
  const file = journalPathOf(target);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw fsError('read', file, err);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw damaged(file, 'not JSON');
  }
  return validateJournal(v, target, file);
}

export function newJournal(
  fields: Omit<RestoreJournal, 'version' | 'state' | 'host' | 'pid' | 'keep' | 'startedAt' | 'updatedAt'>,
): RestoreJournal {
  const t = new Date().toISOString();
  return {
    version: 1,
    ...fields,
    state: 'staging',
    pid: process.pid,
    host: hostname(),
    ...selfIdentity(),
    keep: [],
    startedAt: t,
    updatedAt: t,
  };
}

const encode = (j: RestoreJournal): Buffer => Buffer.from(`${JSON.stringify(j, null, 2)}\n`);

/** Where the next state of the journal is written before it is renamed over the journal. */
function nextPathOf(target: string, pid = process.pid): string {
  return `${journalPathOf(target)}${NEXT_SUFFIX}${pid}`;
}

const NEXT_SUFFIX = '.next-';

/** Write a complete file durably under a name of our own (so a leftover is recognisable). */
async function writeNext(path: string, data: Uint8Array): Promise<void> {
  try {
    const fh = await open(path, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw fsError('write', path, err);
  }
}

/**
 * Create the journal durably, failing with STORAGE_LOCKED if one already exists
 * (another restore of the same target is running, or one was interrupted and
 * not yet recovered).
 */
export async function createJournal(j: RestoreJournal): Promise<void> {
  const file = journalPathOf(j.target);
  const next = nextPathOf(j.target);
  try {
    await writeNext(next, encode(j));
    // link(2) never replaces an existing name: the exclusive, atomic create
    await link(next, file);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') {
      throw new FoleBackupError('STORAGE_LOCKED', `another restore of ${j.target} holds its journal ${file}`, {
        path: file,
        hint:
          'wait for that restore to finish; if it was interrupted, `fole-backup recover --target` finishes ' +
          'or rolls it back',
      });
    }
    throw fsError('write', file, err);
  } finally {
    await rm(next, { force: true }).catch(() => undefined);
  }
  await fsyncDir(dirname(file));
}

/** Record a new state (and anything else changed) durably; returns the new journal. */
export async function updateJournal(
  j: RestoreJournal,
  state: JournalState,
  changes: Partial<Pick<RestoreJournal, 'keep'>> = {},
): Promise<RestoreJournal> {
  const next: RestoreJournal = { ...j, ...changes, state, updatedAt: new Date().toISOString() };
  const tmp = nextPathOf(j.target);
  await writeNext(tmp, encode(next));
  await renameDurable(tmp, journalPathOf(j.target));
  return next;
}

/**
 * Remove the not-yet-renamed next states of the journal of `target` that
 * processes for which `gone(pid)` holds left behind (a kill between writing and
 * renaming). Returns the paths removed.
 */
export async function removeJournalLeftovers(target: string, gone: (pid: number) => boolean): Promise<string[]> {
  const prefix = basename(journalPathOf(target)) + NEXT_SUFFIX;
  const dir = dirname(target);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isSafeInteger(pid) || pid <= 0 || !gone(pid)) continue;
    await rm(join(dir, name), { force: true });
    removed.push(join(dir, name));
  }
  return removed;
}

/** Remove the journal (durably). */
export async function removeJournal(target: string): Promise<void> {
  await removeDurable(journalPathOf(target));
}
