/**
 * What a restore target holds now, summarised for the planner (TargetState).
 * Reads only: lstat of the target and its parent, the names in the target's
 * top level, modules/ and projects/, lstat of core/ and core/core.db, and the
 * previous-tree names in the parent.
 * A symlink at the target is reported, never followed.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { errnoCode, FoleBackupError, fsError } from '../errors.js';
import { nameFromBytes } from '../fs/byte-names.js';
import { pathInsideRoot } from '../fs/inside-root.js';
import { CORE_DB } from '../storage/fole-layout.js';
import { checkFoleDatabaseFile } from '../sqlite/detect.js';
import { journalPathOf, previousTreePrefix } from './names.js';
import type { TargetKind, TargetState } from './plan.js';

const TOP_LEVEL_SHOWN = 20;

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw fsError('read', path, err);
  }
}

/**
 * A directory's entries, names in string form (src/fs/byte-names.ts): a module a backup names by its bytes is found by
 * them.
 */
async function dirEntries(path: string): Promise<{ name: string; isDirectory(): boolean }[] | undefined> {
  try {
    return (await readdir(path, { withFileTypes: true, encoding: 'buffer' })).map((d) => ({
      name: nameFromBytes(d.name),
      isDirectory: () => d.isDirectory(),
    }));
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw fsError('read', path, err);
  }
}

/**
 * The absolute path a restore works on: `target` resolved against the cwd, with
 * the symlinks of its parent resolved (the target itself is not followed).
 * A parent that does not exist is left as written.
 */
export async function normalizeTarget(target: string): Promise<string> {
  const abs = resolve(target);
  if (abs === sep) return abs;
  try {
    return join(await realpath(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

/** Summarise the target at `target` (any path; it is normalised first). */
export async function inspectTarget(target: string): Promise<TargetState> {
  const path = await normalizeTarget(target);
  const parent = dirname(path);
  const parentSt = path === sep ? await lstatOrUndefined(sep) : await lstatOrUndefined(parent);
  const state: TargetState = {
    path,
    parentExists: parentSt?.isDirectory() === true,
    kind: 'absent',
    mountPoint: false,
    hasCoreDb: false,
    modules: null,
    projects: 0,
    topLevel: [],
    topLevelCount: 0,
    takenNames: [],
    journal: false,
  };
  if (!state.parentExists) return state;
  const st = await lstatOrUndefined(path);
  state.kind = kindOf(st);
  if (st?.isSymbolicLink()) {
    state.linkTarget = await realpath(path).catch(() => undefined);
  }
  if (st?.isDirectory()) {
    state.mode = st.mode & 0o7777;
    state.mountPoint = path !== sep && parentSt !== undefined && st.dev !== parentSt.dev;
    const top = (await dirEntries(path)) ?? [];
    const names = top.map((d) => d.name).sort();
    state.topLevel = names.slice(0, TOP_LEVEL_SHOWN);
    state.topLevelCount = names.length;
    const isDir = (name: string): boolean => top.some((d) => d.name === name && d.isDirectory());
    if (names.length === 0) state.kind = 'empty-dir';
    else if (isDir('core') || isDir('projects')) state.kind = 'storage-root';
    else state.kind = 'other-dir';
    if (state.kind === 'storage-root') {
      const modules = await dirEntries(join(path, 'modules'));
      state.modules =
        modules === undefined
          ? null
          : modules
              .filter((d) => d.isDirectory())
              .map((d) => d.name)
              .sort();
      state.projects = ((await dirEntries(join(path, 'projects'))) ?? []).filter((d) => d.isDirectory()).length;
      const core = usableCoreDb(path);
      state.hasCoreDb = core === undefined;
      if (core !== undefined) state.coreDbProblem = core;
    }
  }
  if (path !== sep) {
    const prefix = previousTreePrefix(path);
    state.takenNames = ((await dirEntries(parent)) ?? []).map((d) => d.name).filter((n) => n.startsWith(prefix));
    state.journal = await stat(journalPathOf(path)).then(
      () => true,
      () => false,
    );
  }
  return state;
}

/**
 * Why `<root>/core/core.db` cannot be used (the Global Storage Lock is taken
 * there), or undefined when it is a regular file reached without a symlink.
 * Never opened with SQLite here (only its header is read), and never through
 * a symlink (src/fs/inside-root.ts).
 */
function usableCoreDb(root: string): string | undefined {
  try {
    if (!pathInsideRoot(root, CORE_DB).st.isFile()) return `${CORE_DB} is not a regular file`;
    // a file that is no SQLite database (text, empty, truncated) would fail only when
    // the lock is taken, after staging: refused here, before anything is done
    checkFoleDatabaseFile(root, CORE_DB);
    return undefined;
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return `${CORE_DB} is missing`;
    if (err instanceof FoleBackupError && (err.code === 'UNSAFE_PATH' || err.code === 'DB_INTEGRITY_ERROR'))
      return err.message;
    throw err;
  }
}

function kindOf(st: Stats | undefined): TargetKind {
  if (st === undefined) return 'absent';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'other-dir';
  return 'other';
}
