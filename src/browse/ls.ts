/** `ls`: what a backup holds at and under a path, streamed in tree order. */
import { FoleBackupError } from '../errors.js';
import type { BlobReader } from '../repository/slices.js';
import type { Snapshot, TreeEntry } from '../snapshot/snapshot.js';
import { printablePath } from '../snapshot/validate.js';
import { isChildOf, subtree } from './tree-path.js';

export interface LsOptions {
  /** A path in the tree's form (treePathArg); '' = the root. */
  path: string;
  /** Everything under `path`, not only its direct children. */
  recursive?: boolean;
}

/**
 * The entries a backup holds under `path`: its direct children (or, recursively, everything under it); a file's or
 * database's path yields that one entry. A path the backup does not hold is a usage error naming it.
 */
export async function* listBackup(repo: BlobReader, snap: Snapshot, opts: LsOptions): AsyncGenerator<TreeEntry> {
  let found = opts.path === '';
  for await (const e of subtree(repo, snap.tree, opts.path)) {
    if (e.path === opts.path) {
      found = true;
      if (e.kind !== 'dir') yield e;
    } else if (opts.recursive === true || isChildOf(e.path, opts.path)) yield e;
  }
  if (!found) {
    throw new FoleBackupError('USAGE', `backup ${snap.backupId} holds no ${printablePath(opts.path)}`, {
      hint:
        `see what it holds with \`fole-backup ls ${snap.backupId.slice(0, 8)}\`, ` +
        'or which backups hold a path with `fole-backup find`',
    });
  }
}
