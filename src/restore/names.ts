/**
 * Where a restore puts its working files: all beside the target, in its parent
 * directory (same filesystem, so the swap is a rename), all named with our own
 * prefix (OWN_FILE_PREFIX, which backups exclude). Pure string functions.
 *
 *   <parent>/.fole-backup-restore-journal-<name>.json           the restore journal
 *   <parent>/.fole-backup-restore-<backupId[0..8]>-<pid>-<name>  the staging tree
 *   <parent>/<name>.pre-restore-<UTC yyyymmddThhmmssZ>[-n]       the previous tree, kept
 */
import { basename, dirname, join } from 'node:path';
import { OWN_FILE_PREFIX } from '../storage/exclusions.js';

const RESTORE_PREFIX = `${OWN_FILE_PREFIX}restore-`;
const JOURNAL_PREFIX = `${RESTORE_PREFIX}journal-`;
const STAGING_RE = /^\.fole-backup-restore-([0-9a-f]{8})-([1-9][0-9]{0,9})-(.+)$/;

/** The restore journal of `target` (an absolute path). */
export function journalPathOf(target: string): string {
  return join(dirname(target), `${JOURNAL_PREFIX}${basename(target)}.json`);
}

/** The staging directory a restore of `backupId` by process `pid` builds for `target`. */
export function stagingPathOf(target: string, backupId: string, pid: number): string {
  return join(dirname(target), `${RESTORE_PREFIX}${backupId.slice(0, 8)}-${pid}-${basename(target)}`);
}

/** The pid in a staging directory name made by stagingPathOf for `target`, or undefined if it is not one. */
export function stagingPidOf(name: string, target: string): number | undefined {
  const m = STAGING_RE.exec(name);
  if (m === null || m[3] !== basename(target)) return undefined;
  return Number(m[2]);
}

/** UTC timestamp as used in previous-tree names: 20261126T051200Z. */
function utcStamp(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** Prefix (a name in the target's parent) shared by every previous tree of `target`. */
export function previousTreePrefix(target: string): string {
  return `${basename(target)}.pre-restore-`;
}

/**
 * Where the current tree at `target` is moved: `<target>.pre-restore-<stamp>`,
 * with `-2`, `-3`, … appended when `taken` (names in the parent) already has it.
 */
export function previousTreePathOf(target: string, now: Date, taken: readonly string[]): string {
  const base = `${previousTreePrefix(target)}${utcStamp(now)}`;
  const used = new Set(taken);
  let name = base;
  for (let n = 2; used.has(name); n++) name = `${base}-${n}`;
  return join(dirname(target), name);
}
