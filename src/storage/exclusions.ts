/**
 * What a backup leaves out of a STORAGE_ROOT. One list, as data: the backup, the
 * demo's mutations and the tests read it from here.
 * Ephemeral directories are skipped at any depth; SQLite side files are skipped
 * because their content is captured through SQLite itself.
 */
import { SQLITE_SIDE_SUFFIXES } from '../sqlite/side-files.js';

/** Directory names that are ephemeral wherever they appear. */
export const EPHEMERAL_DIR_NAMES: ReadonlySet<string> = new Set(['tmp', 'cache']);

/** Our own lock, staging and journal files carry this prefix. */
export const OWN_FILE_PREFIX = '.fole-backup-';

export type ExclusionReason = 'ephemeral directory' | 'sqlite side file' | 'fole-backup working file';

/** Why a directory entry is excluded, or undefined when it is backed up. */
export function exclusionReason(name: string, isDir: boolean): ExclusionReason | undefined {
  if (name.startsWith(OWN_FILE_PREFIX)) return 'fole-backup working file';
  if (isDir) return EPHEMERAL_DIR_NAMES.has(name) ? 'ephemeral directory' : undefined;
  for (const s of SQLITE_SIDE_SUFFIXES) if (name.endsWith(s)) return 'sqlite side file';
  return undefined;
}
