/** `find`: which backups hold a path or a glob, newest backup first, each tree streamed. */
import picomatch from 'picomatch';
import { FoleBackupError } from '../errors.js';
import type { BlobReader } from '../repository/slices.js';
import type { Snapshot, TreeEntry } from '../snapshot/snapshot.js';
import { readTree } from '../snapshot/tree.js';
import { printable } from '../snapshot/validate.js';

/**
 * One matcher for every pattern: a pattern with a '/' is matched against the whole path (a leading '/' anchors it
 * at the STORAGE_ROOT, as it reads), one without against the last name, as restic's and find(1)'s `-name` do. Dot
 * files are ordinary names here: a FOLE tree has no hidden files to leave out.
 */
export function pathMatcher(patterns: readonly string[]): (path: string) => boolean {
  if (patterns.length === 0) throw new FoleBackupError('USAGE', 'give at least one pattern');
  const matchers = patterns.map((p) => {
    if (p === '' || p.includes('\0')) throw new FoleBackupError('USAGE', `${printable(p)} is not a pattern`);
    const anchored = p.replace(/^\/+/, '');
    return picomatch(anchored, { dot: true, basename: !anchored.includes('/') });
  });
  return (path) => matchers.some((m) => m(path));
}

/** The entries of one backup that match, in tree order. */
export interface FindHit {
  snapshot: Snapshot;
  entry: TreeEntry;
}

/**
 * Every entry of `snapshots` whose path matches, backup by backup in the order given (the caller gives the newest
 * first), each tree read as a stream: memory does not grow with the size of a tree or the number of hits.
 */
export async function* findInBackups(
  repo: BlobReader,
  snapshots: readonly Snapshot[],
  matches: (path: string) => boolean,
  signal?: AbortSignal,
): AsyncGenerator<FindHit> {
  for (const snapshot of snapshots) {
    for await (const entry of readTree(repo, snapshot.tree)) {
      signal?.throwIfAborted();
      if (matches(entry.path)) yield { snapshot, entry };
    }
  }
}
