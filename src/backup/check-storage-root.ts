/**
 * What a backup checks before it takes any lock: the STORAGE_ROOT is one, and
 * the repository and the staging area lie apart from it.
 */
import type { Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { errnoCode, FoleBackupError } from '../errors.js';
import { type CheckedPath, isInside, pathInsideRoot } from '../fs/inside-root.js';
import { CORE_DB } from '../storage/fole-layout.js';
import type { ForbiddenDir } from '../storage/scan.js';

/** Check that `root` looks like a FOLE STORAGE_ROOT and return its real path. */
export async function checkStorageRoot(root: string): Promise<string> {
  const abs = resolve(root);
  let st: Stats;
  try {
    st = await stat(abs);
  } catch (err) {
    throw new FoleBackupError(
      'NOT_A_STORAGE_ROOT',
      `storage root ${abs}: ${errnoCode(err) === 'ENOENT' ? 'does not exist' : 'cannot be read'}`,
      {
        path: abs,
        cause: err,
        hint: 'pass the FOLE STORAGE_ROOT with --storage-root or STORAGE_ROOT',
      },
    );
  }
  if (!st.isDirectory()) {
    throw new FoleBackupError('NOT_A_STORAGE_ROOT', `storage root ${abs} is not a directory`, { path: abs });
  }
  let core: CheckedPath | undefined;
  try {
    // never through a symlink: a backup must hold core.db itself (UNSAFE_PATH otherwise)
    core = pathInsideRoot(abs, CORE_DB);
  } catch (err) {
    if (!(err instanceof FoleBackupError) || err.code !== 'NOT_FOUND') throw err;
  }
  if (core === undefined || !core.st.isFile()) {
    throw new FoleBackupError('NOT_A_STORAGE_ROOT', `${abs} is not a FOLE STORAGE_ROOT: core/core.db is missing`, {
      path: abs,
      hint: 'point --storage-root at the directory that holds core/, projects/, modules/',
    });
  }
  return realpath(abs);
}

/**
 * The repository and the staging area must lie outside the STORAGE_ROOT (real
 * paths compared, so a symlink does not hide it): inside, a backup would store
 * them too — the repository grows by its own size with every backup, staged
 * database copies are captured while being written. A STORAGE_ROOT inside the
 * repository is refused as well. Usage errors: the operator chose the paths.
 * Returns both by device and inode, so the scan also refuses them when a bind
 * mount brings them inside where no path comparison can tell.
 *
 * `repoPath`: the repository's real path when it is local (undefined otherwise).
 */
export async function checkApart(
  root: string,
  repoPath: string | undefined,
  stagingParent: string | undefined,
): Promise<ForbiddenDir[]> {
  if (repoPath !== undefined && isInside(repoPath, root)) {
    throw new FoleBackupError(
      'USAGE',
      `the repository ${repoPath} lies inside the STORAGE_ROOT ${root}: ` +
        'it would be backed up into itself, growing with every backup',
      {
        hint: 'put the repository elsewhere, outside the STORAGE_ROOT (another directory or disk), and run again',
      },
    );
  }
  if (repoPath !== undefined && isInside(root, repoPath)) {
    throw new FoleBackupError('USAGE', `the STORAGE_ROOT ${root} lies inside the repository ${repoPath}`, {
      hint: 'keep them apart: put the repository elsewhere, outside the STORAGE_ROOT, and run again',
    });
  }
  const given = resolve(stagingParent ?? tmpdir());
  const staging = await realpath(given).catch(() => given);
  if (isInside(staging, root)) {
    throw new FoleBackupError(
      'USAGE',
      `the staging directory ${staging} lies inside the STORAGE_ROOT ${root}: ` +
        'the database copies staged there would be backed up too',
      {
        hint: 'pass a --staging-dir (or FOLE_BACKUP_STAGING) outside the STORAGE_ROOT, with room for every database',
      },
    );
  }
  const forbidden: ForbiddenDir[] = [];
  for (const [path, what] of [
    [repoPath, `the repository ${repoPath}`],
    [staging, `the staging directory ${staging}`],
  ] as const) {
    if (path === undefined) continue;
    const st = await stat(path).catch(() => undefined);
    if (st?.isDirectory()) forbidden.push({ dev: st.dev, ino: st.ino, what });
  }
  return forbidden;
}
