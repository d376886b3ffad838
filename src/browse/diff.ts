/**
 * `diff`: what changed between two backups, as one merge of their two trees (both are stored in tree order), so
 * two 1M-file trees are compared holding two entries at a time. Pure over its two streams.
 */
import { comparePaths, type TreeEntry } from '../snapshot/snapshot.js';

/** What differs in an entry present in both backups. */
export type ChangeAspect = 'content' | 'kind' | 'mode' | 'owner' | 'mtime';

export type TreeChange =
  | { op: 'added'; after: TreeEntry }
  | { op: 'removed'; before: TreeEntry }
  | { op: 'changed'; before: TreeEntry; after: TreeEntry; aspects: ChangeAspect[] };

/** Added, removed and changed entries, and the bytes of the files and databases they hold. */
export interface DiffStats {
  added: number;
  removed: number;
  /** Entries whose content or kind changed. */
  changed: number;
  /** Entries whose only changes are metadata (mode, owner, mtime). */
  metadataOnly: number;
  addedBytes: number;
  removedBytes: number;
}

export function emptyDiffStats(): DiffStats {
  return { added: 0, removed: 0, changed: 0, metadataOnly: 0, addedBytes: 0, removedBytes: 0 };
}

/** How one entry differs from another at the same path; [] when they are the same. */
export function changeAspects(a: TreeEntry, b: TreeEntry): ChangeAspect[] {
  const out: ChangeAspect[] = [];
  if (a.kind !== b.kind) out.push('kind');
  else if (a.sha256 !== b.sha256 || a.size !== b.size) out.push('content');
  if (a.mode !== b.mode) out.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) out.push('owner');
  // a directory's mtime moves whenever a name in it does: that change is already reported by its entries
  if (a.mtimeMs !== b.mtimeMs && !(a.kind === 'dir' && b.kind === 'dir')) out.push('mtime');
  return out;
}

/** Whether a change is more than metadata. */
export function isContentChange(c: TreeChange): boolean {
  return c.op !== 'changed' || c.aspects.includes('content') || c.aspects.includes('kind');
}

/** Count a change into `stats` (content bytes: a changed file counts its old size removed and its new added). */
export function countChange(stats: DiffStats, c: TreeChange): void {
  if (c.op === 'added') {
    stats.added++;
    stats.addedBytes += c.after.size ?? 0;
  } else if (c.op === 'removed') {
    stats.removed++;
    stats.removedBytes += c.before.size ?? 0;
  } else if (isContentChange(c)) {
    stats.changed++;
    stats.removedBytes += c.before.size ?? 0;
    stats.addedBytes += c.after.size ?? 0;
  } else stats.metadataOnly++;
}

/** The changes from tree `a` to tree `b`, in tree order; both must be in tree order (readTree guarantees it). */
export async function* diffTrees(a: AsyncIterable<TreeEntry>, b: AsyncIterable<TreeEntry>): AsyncGenerator<TreeChange> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b[Symbol.asyncIterator]();
  let x = await ia.next();
  let y = await ib.next();
  while (!x.done || !y.done) {
    const c = x.done ? 1 : y.done ? -1 : comparePaths(x.value.path, y.value.path);
    if (c < 0 && !x.done) {
      yield { op: 'removed', before: x.value };
      x = await ia.next();
    } else if (c > 0 && !y.done) {
      yield { op: 'added', after: y.value };
      y = await ib.next();
    } else if (!x.done && !y.done) {
      const aspects = changeAspects(x.value, y.value);
      if (aspects.length > 0) yield { op: 'changed', before: x.value, after: y.value, aspects };
      x = await ia.next();
      y = await ib.next();
    }
  }
}
