/**
 * What a repair does, decided from what its scan found (pure: no I/O, so every case is a unit test).
 *
 * The packs are the truth. A pack is sound when its bytes hash to its name, its header opens and every blob in
 * it opens and hashes to its id; a sound pack is never touched. An index file is kept, as it is, when it can be
 * read and describes only sound packs exactly as their headers do. Everything else follows:
 *
 *   - sound packs no kept index file describes (orphans of interrupted backups, packs of a dropped index file)
 *     get new index files, from their headers;
 *   - the blobs of a damaged pack that still open, and of which no sound pack has a copy, are salvaged: copied as
 *     they are stored into new packs;
 *   - damaged packs are moved aside (quarantine/), never deleted; index files that cannot be read too;
 *   - index files that name a missing or damaged pack, or describe a pack unlike its header, are removed once
 *     the new ones cover every sound pack.
 */
import { layoutDigest, type PackedBlob } from '../repository/pack.js';

/** One pack as the scan read it. */
export interface ScannedPack {
  name: string;
  size: number;
  sound: boolean;
  /** Blobs that opened and hashed to their ids: all of a sound pack's (its header), some of a damaged one's. */
  good: PackedBlob[];
  /** Blobs of a damaged pack that did not open (as its header or, when that is unusable, an index placed them). */
  bad: PackedBlob[];
  /** Why a damaged pack is damaged. */
  why?: string;
}

/** One index file as the scan read it: its packs, or why it could not be read. */
export interface ScannedIndexFile {
  name: string;
  packs?: { name: string; blobs: PackedBlob[] }[];
  why?: string;
}

export interface RepairPlan {
  keepIndexFiles: string[];
  /** Index files to remove once the new ones are written (readable ones that are wrong, and unreadable ones). */
  removeIndexFiles: string[];
  /** Of those, the unreadable ones: copied aside first. */
  quarantineIndexFiles: string[];
  /** Sound packs for the new index files. */
  newIndex: { name: string; blobs: PackedBlob[] }[];
  /** Blobs copied out of damaged packs into new packs. */
  salvage: { pack: string; blobs: PackedBlob[] }[];
  /** Damaged packs, moved aside. */
  moveAside: string[];
  /** Packs an index file names that are not in the repository. */
  missing: string[];
  /** Blob ids a sound pack or the salvage will hold. */
  available: Set<string>;
}

/** The plan for what the scan found. */
export function planRepair(packs: readonly ScannedPack[], indexFiles: readonly ScannedIndexFile[]): RepairPlan {
  const byName = new Map(packs.map((p) => [p.name, p]));
  const soundLayout = new Map<string, string>();
  const available = new Set<string>();
  for (const p of packs) {
    if (!p.sound) continue;
    soundLayout.set(p.name, layoutDigest(p.good));
    for (const b of p.good) available.add(b.id);
  }

  const keepIndexFiles: string[] = [];
  const removeIndexFiles: string[] = [];
  const quarantineIndexFiles: string[] = [];
  const covered = new Set<string>();
  const missing = new Set<string>();
  for (const f of indexFiles) {
    if (f.packs === undefined) {
      removeIndexFiles.push(f.name);
      quarantineIndexFiles.push(f.name);
      continue;
    }
    let exact = true;
    for (const p of f.packs) {
      if (!byName.has(p.name)) missing.add(p.name);
      if (soundLayout.get(p.name) !== layoutDigest(p.blobs)) exact = false;
    }
    if (exact) {
      keepIndexFiles.push(f.name);
      for (const p of f.packs) covered.add(p.name);
    } else removeIndexFiles.push(f.name);
  }

  const newIndex = packs.filter((p) => p.sound && !covered.has(p.name)).map((p) => ({ name: p.name, blobs: p.good }));
  const salvage: RepairPlan['salvage'] = [];
  for (const p of packs) {
    if (p.sound) continue;
    const blobs = p.good.filter((b) => !available.has(b.id));
    for (const b of blobs) available.add(b.id);
    if (blobs.length > 0) salvage.push({ pack: p.name, blobs });
  }
  return {
    keepIndexFiles: keepIndexFiles.sort(),
    removeIndexFiles: removeIndexFiles.sort(),
    quarantineIndexFiles: quarantineIndexFiles.sort(),
    newIndex,
    salvage,
    moveAside: packs
      .filter((p) => !p.sound)
      .map((p) => p.name)
      .sort(),
    missing: [...missing].sort(),
    available,
  };
}

/** Whether a plan changes anything in the repository (old damage records aside). */
export function planChanges(plan: RepairPlan): boolean {
  return (
    plan.removeIndexFiles.length > 0 ||
    plan.newIndex.length > 0 ||
    plan.salvage.length > 0 ||
    plan.moveAside.length > 0 ||
    plan.missing.length > 0
  );
}
