/**
 * Reaching a path under a root without following a symlink. SQLite follows
 * symlinks, and puts its -wal/-shm beside the file it finds: a database opened
 * through a symlinked core/core.db (or core/) has our lock table and its side
 * files written into a file outside the STORAGE_ROOT (symlinks are never
 * followed: docs/SECURITY.md). better-sqlite3 cannot open with O_NOFOLLOW, so
 * pathInsideRoot lstats every component under the root and compares real
 * paths, and the caller checks right after opening that the path still names
 * the file it checked (sameFileAt): a symlink swapped in between is caught.
 */
import { lstatSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { errnoCode, FoleBackupError, fsError } from '../errors.js';

export interface CheckedPath {
  /** Absolute path: the root joined with the relative path. */
  abs: string;
  /** lstat of the final component (never a symlink). */
  st: Stats;
}

/** Whether absolute path `child` is `parent` or lies under it (by name: resolve real paths first). */
export function isInside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

function unsafe(root: string, rel: string, message: string): FoleBackupError {
  return new FoleBackupError('UNSAFE_PATH', `${rel} in ${root}: ${message}`, {
    path: rel,
    hint:
      `FOLE's databases and their directories must lie inside the STORAGE_ROOT: put what the symlink points ` +
      `to in its place (or point --storage-root at the real directory), then run again`,
  });
}

/**
 * `rel` ('/'-separated, relative) under `root`, checked: no component below
 * the root is a symlink, and the real paths of the file and of its directory
 * lie inside the real path of the root (the root itself may be reached
 * through a symlink: the operator named it). Throws UNSAFE_PATH when not,
 * NOT_FOUND (fsError) when a component does not exist.
 */
export function pathInsideRoot(root: string, rel: string): CheckedPath {
  const parts = rel.split('/');
  if (rel === '' || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new FoleBackupError('INTERNAL', `not a normalized relative path: ${JSON.stringify(rel)}`, { path: rel });
  }
  let abs = root;
  let st: Stats | undefined;
  for (const [i, name] of parts.entries()) {
    abs = join(abs, name);
    try {
      st = lstatSync(abs);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new FoleBackupError('NOT_FOUND', `read ${abs}: no such file or directory`, { path: abs, cause: err });
      }
      throw fsError('read', abs, err);
    }
    if (st.isSymbolicLink()) {
      const at = parts.slice(0, i + 1).join('/');
      let to = '?';
      try {
        to = readlinkSync(abs);
      } catch {
        // the target is only named in the message
      }
      throw unsafe(
        root,
        rel,
        `${at === rel ? 'it' : at} is a symlink (to ${to}); databases are never opened through a symlink`,
      );
    }
  }
  let realRoot: string;
  let realFile: string;
  let realDir: string;
  try {
    realRoot = realpathSync(root);
    realFile = realpathSync(abs);
    realDir = realpathSync(dirname(abs));
  } catch (err) {
    throw fsError('read', abs, err);
  }
  for (const real of [realFile, realDir]) {
    if (!isInside(real, realRoot)) throw unsafe(root, rel, `its real path ${real} lies outside ${realRoot}`);
  }
  return { abs, st: st as Stats };
}

/** Whether `abs` still names the file `st` described (same device and inode, and not a symlink). */
export function sameFileAt(abs: string, st: Stats): boolean {
  try {
    const now = lstatSync(abs);
    return !now.isSymbolicLink() && now.dev === st.dev && now.ino === st.ino;
  } catch {
    return false;
  }
}
