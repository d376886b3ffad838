/**
 * Prune planning — PURE: from what every pack holds and which blobs any backup
 * still uses, decide which packs to keep, repack or delete.
 *
 * - a pack whose blobs are all unused is deleted;
 * - a pack present in storage but in no index (left by a killed backup) is deleted;
 * - a pack with unused bytes >= repackThreshold of its size has its used blobs
 *   copied into new packs, then is deleted;
 * - every other pack is kept as it is (rewriting it would cost more than the
 *   space it frees);
 * - a pack younger than minPackAgeMs (or of unknown age) is kept as it is,
 *   whatever it holds: it may belong to a backup still running, whose index or
 *   snapshot is not written yet (a safety margin behind the repository lock, as
 *   Kopia keeps for its maintenance).
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
  /** Never delete nor repack a pack written less than this long ago. Default MIN_PACK_AGE_MS. */
  minPackAgeMs?: number;
  /** The time packs' ages are measured at (epoch ms). Default Date.now(). */
  now?: number;
}

/** Default safety margin: packs younger than this are left alone. */
export const MIN_PACK_AGE_MS = 4 * 3_600_000;

/** A pack as the backend lists it: name, stored size, and when it was written if known. */
export interface StoredPack {
  name: string;
  size: number;
  mtimeMs?: number;
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
    /** Packs left alone because they are younger than the safety margin (indexed or not). */
    youngPacks: number;
  };
}

export function planPrune(
  indexed: readonly PackContent[],
  stored: readonly StoredPack[],
  used: ReadonlySet<string>,
  opts: PrunePlanOptions = {},
): PrunePlan {
  const threshold = opts.repackThreshold ?? 0.2;
  const now = opts.now ?? Date.now();
  const minAge = opts.minPackAgeMs ?? MIN_PACK_AGE_MS;
  const young = new Set(stored.filter((p) => p.mtimeMs === undefined || now - p.mtimeMs < minAge).map((p) => p.name));
  const inIndex = new Set(indexed.map((p) => p.name));
  const orphans = stored.filter((p) => !inIndex.has(p.name));
  const claimed = new Set<string>();
  const plan: PrunePlan = {
    keep: [],
    repack: [],
    remove: [],
    stats: {
      packs: stored.length,
      orphanPacks: orphans.length,
      usedBlobs: 0,
      unusedBlobs: 0,
      freedBytes: 0,
      repackBytes: 0,
      unusedBytesKept: 0,
      youngPacks: young.size,
    },
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
    if (young.has(p.name)) {
      plan.keep.push(p.name);
      plan.stats.unusedBytesKept += unusedBytes;
    } else if (usedHere.length === 0) {
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
    if (young.has(o.name)) continue;
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
