/**
 * Prune planning — PURE: from what every pack holds and which blobs any backup
 * still uses, decide which packs to keep, repack or delete.
 *
 * - a pack whose blobs are all unused is deleted;
 * - a pack present in storage but in no index (left by a killed backup) is deleted;
 * - a pack with unused bytes >= repackThreshold of its size has its used blobs
 *   copied into new packs, then is deleted;
 * - every other pack is kept as it is (rewriting it would cost more than the
 *   space it frees).
 * A blob stored in several packs counts as used in the first pack that holds it
 * and unused in the others, so duplicates left by crashes are reclaimed too.
 */

export interface PackContent {
  name: string;
  /** Stored size of the pack (bytes). */
  size: number;
  blobs: readonly { id: string; length: number }[];
}

export interface PrunePlanOptions {
  /** Repack a pack when at least this fraction of its bytes is unused (0..1). Default 0.2. */
  repackThreshold?: number;
}

export interface PrunePlan {
  keep: string[];
  /** Packs to rewrite, with the used blob ids to copy out of each. */
  repack: { pack: string; blobs: string[] }[];
  /** Packs to delete once the new index is written: fully unused, orphaned and repacked ones. */
  remove: string[];
  stats: {
    packs: number;
    orphanPacks: number;
    usedBlobs: number;
    unusedBlobs: number;
    /** Bytes freed (stored bytes of removed packs minus bytes rewritten). */
    freedBytes: number;
    /** Bytes copied into new packs. */
    repackBytes: number;
    /** Unused bytes left in kept packs. */
    unusedBytesKept: number;
  };
}

export function planPrune(
  indexed: readonly PackContent[],
  stored: readonly { name: string; size: number }[],
  used: ReadonlySet<string>,
  opts: PrunePlanOptions = {},
): PrunePlan {
  const threshold = opts.repackThreshold ?? 0.2;
  const inIndex = new Set(indexed.map((p) => p.name));
  const orphans = stored.filter((p) => !inIndex.has(p.name));
  const claimed = new Set<string>();
  const plan: PrunePlan = {
    keep: [],
    repack: [],
    remove: [],
    stats: { packs: stored.length, orphanPacks: orphans.length, usedBlobs: 0, unusedBlobs: 0, freedBytes: 0, repackBytes: 0, unusedBytesKept: 0 },
  };
  // visit packs in a stable order so "first pack that holds it" is deterministic
  const packs = [...indexed].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const p of packs) {
    const usedHere: string[] = [];
    let usedBytes = 0;
    let unusedBytes = 0;
    for (const b of p.blobs) {
      if (used.has(b.id) && !claimed.has(b.id)) {
        claimed.add(b.id);
        usedHere.push(b.id);
        usedBytes += b.length;
      } else {
        unusedBytes += b.length;
      }
    }
    plan.stats.usedBlobs += usedHere.length;
    plan.stats.unusedBlobs += p.blobs.length - usedHere.length;
    const total = usedBytes + unusedBytes;
    if (usedHere.length === 0) {
      plan.remove.push(p.name);
      plan.stats.freedBytes += p.size;
    } else if (total > 0 && unusedBytes / total >= threshold) {
      plan.repack.push({ pack: p.name, blobs: usedHere });
      plan.remove.push(p.name);
      plan.stats.repackBytes += usedBytes;
      plan.stats.freedBytes += p.size - usedBytes;
    } else {
      plan.keep.push(p.name);
      plan.stats.unusedBytesKept += unusedBytes;
    }
  }
  for (const o of orphans) {
    plan.remove.push(o.name);
    plan.stats.freedBytes += o.size;
  }
  return plan;
}

/** Used blobs that no pack holds: the repository is damaged and prune must not run. */
export function missingBlobs(indexed: readonly PackContent[], used: ReadonlySet<string>): string[] {
  const have = new Set<string>();
  for (const p of indexed) for (const b of p.blobs) have.add(b.id);
  return [...used].filter((id) => !have.has(id));
}
