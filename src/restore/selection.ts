/**
 * A partial restore's choice of entries (`--include` / `--exclude`), applied to a tree as it streams. A pattern
 * is a glob as `find` takes it (src/browse/find.ts): one that matches a directory takes or leaves out everything
 * under it. The directories above a chosen entry come with it (their own mode and time), and only those: the
 * restored tree holds what was chosen and the path to it, nothing else.
 */
import { pathMatcher } from '../browse/find.js';
import { isUnder } from '../browse/tree-path.js';
import type { TreeEntry } from '../snapshot/snapshot.js';

/** What a partial restore takes from a backup. */
export interface Selection {
  /** Globs of what to restore (at least one). */
  include: string[];
  /** Globs of what to leave out of that. */
  exclude: string[];
}

/** What a selection takes from one backup, counted before anything is written. */
export interface SelectedCounts {
  files: number;
  dirs: number;
  bytes: number;
  databases: { path: string; size: number }[];
}

/**
 * The entries of `tree` a selection takes, in tree order, each directory before its contents: an included
 * entry's ancestors are handed out just before it (when first needed), an excluded directory's subtree never.
 */
export async function* selectEntries(tree: AsyncIterable<TreeEntry>, sel: Selection): AsyncGenerator<TreeEntry> {
  const included = pathMatcher(sel.include);
  const excluded = sel.exclude.length > 0 ? pathMatcher(sel.exclude) : () => false;
  /** Directories on the way to the current entry that are not handed out yet, outermost first. */
  let pending: TreeEntry[] = [];
  /** The innermost directory taken whole (its subtree is in unless excluded), or left out whole. */
  let takenDir: string | undefined;
  let skippedDir: string | undefined;
  for await (const e of tree) {
    if (skippedDir !== undefined && isUnder(e.path, skippedDir)) continue;
    skippedDir = undefined;
    if (takenDir !== undefined && !isUnder(e.path, takenDir)) takenDir = undefined;
    pending = pending.filter((d) => isUnder(e.path, d.path) && e.path !== d.path);
    if (excluded(e.path)) {
      if (e.kind === 'dir') skippedDir = e.path;
      continue;
    }
    const take = takenDir !== undefined || included(e.path);
    if (!take) {
      if (e.kind === 'dir') pending.push(e);
      continue;
    }
    yield* pending;
    pending = [];
    if (e.kind === 'dir' && takenDir === undefined) takenDir = e.path;
    yield e;
  }
}

/** Count what a selection takes, reading the tree once; nothing is kept but the list of databases. */
export async function countSelected(tree: AsyncIterable<TreeEntry>, sel: Selection): Promise<SelectedCounts> {
  const out: SelectedCounts = { files: 0, dirs: 0, bytes: 0, databases: [] };
  for await (const e of selectEntries(tree, sel)) {
    if (e.kind === 'dir') out.dirs++;
    else {
      out.files++;
      out.bytes += e.size ?? 0;
      if (e.kind === 'db') out.databases.push({ path: e.path, size: e.size ?? 0 });
    }
  }
  return out;
}
