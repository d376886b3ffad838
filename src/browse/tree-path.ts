/**
 * Paths inside a backup as a user types them, and the part of a tree under one. Trees are stored in tree order
 * (comparePaths), in which everything under a directory follows it contiguously: a walk under a path starts where
 * the path is reached and stops where its subtree ends, and never holds more than the entry at hand.
 */
import { FoleBackupError } from '../errors.js';
import type { BlobReader } from '../repository/slices.js';
import type { TreeEntry } from '../snapshot/snapshot.js';
import { readTree } from '../snapshot/tree.js';
import { pathProblem, printable } from '../snapshot/validate.js';

/**
 * A path in a backup as given on the command line (`projects/p1`, `/projects/p1/`, `./core`, `.` or nothing for
 * the whole tree) in the tree's form: relative, no empty or `.` component; '' is the root. `..` is a usage error.
 */
export function treePathArg(given: string | undefined): string {
  if (given === undefined) return '';
  const parts = given.split('/').filter((p) => p !== '' && p !== '.');
  const path = parts.join('/');
  if (path === '') return '';
  const problem = pathProblem(path);
  if (problem !== undefined) {
    throw new FoleBackupError('USAGE', `${printable(given)} is not a path inside a backup: ${problem}`, {
      hint: 'give a path relative to the STORAGE_ROOT, as `fole-backup ls BACKUP` shows them, e.g. projects/p1',
    });
  }
  return path;
}

/** Whether `path` is `under` itself or inside it ('' holds everything). */
export function isUnder(path: string, under: string): boolean {
  return under === '' || path === under || (path.startsWith(under) && path.charCodeAt(under.length) === 0x2f);
}

/** Whether `path` is directly inside `dir` (one component deeper). */
export function isChildOf(path: string, dir: string): boolean {
  if (dir === '') return !path.includes('/');
  return isUnder(path, dir) && path !== dir && !path.includes('/', dir.length + 1);
}

/**
 * The entries of a tree at and under `under` ('' = all), validated as readTree validates them, stopping once the
 * subtree is passed. Yields nothing when the path is not in the tree.
 */
export async function* subtree(repo: BlobReader, tree: readonly string[], under: string): AsyncGenerator<TreeEntry> {
  let inside = false;
  for await (const e of readTree(repo, tree)) {
    if (isUnder(e.path, under)) {
      inside = true;
      yield e;
    } else if (inside) return;
  }
}
