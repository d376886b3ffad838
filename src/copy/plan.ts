/**
 * What a copy does, decided from names alone (no I/O): which backups of the
 * source go to the target and which the target already has.
 */

/** The backups a copy writes, in the order it writes them, and those it leaves because the target has them. */
export interface CopyPlan {
  copy: string[];
  skip: string[];
}

/**
 * `source` is every backup id of the source, oldest first; `wanted` the ids asked for (already resolved to whole
 * ids, each of them in `source`), or undefined for all of them. A backup the target holds under the same id is
 * skipped: backup ids are random UUIDs, so the same id is the same backup. Copies keep the source's order (oldest
 * first) whatever order they were named in, and an id named twice is copied once.
 */
export function planCopy(
  source: readonly string[],
  wanted: readonly string[] | undefined,
  target: ReadonlySet<string>,
): CopyPlan {
  const asked = wanted === undefined ? undefined : new Set(wanted);
  const plan: CopyPlan = { copy: [], skip: [] };
  for (const id of source) {
    if (asked !== undefined && !asked.has(id)) continue;
    (target.has(id) ? plan.skip : plan.copy).push(id);
  }
  return plan;
}

/** A blob a copy must move: its id and its plaintext size (for the progress bar's total). */
export interface NeededBlob {
  id: string;
  rawLength: number;
  /** Where the source stores it (its sealed bytes), so reads go pack by pack in file order. */
  pack: string;
  offset: number;
  length: number;
}

/** One read of a source pack: the bytes from `offset` holding `blobs` (in offset order), read at once. */
export interface PackSpan {
  pack: string;
  offset: number;
  length: number;
  blobs: NeededBlob[];
}

/**
 * The reads that fetch `blobs` (sorted as missingBlobs sorts them): one span per run of blobs of one pack, so a
 * pack is read in a few requests rather than one per blob (a ranged GET each on S3). A span ends where the next
 * blob lies more than `maxGap` bytes on (reading the gap would cost more than another request), or where it
 * would grow past `maxSpan` bytes (a span is held in memory whole; a single larger blob is a span of its own).
 */
export function planSpans(blobs: readonly NeededBlob[], maxSpan: number, maxGap: number): PackSpan[] {
  const spans: PackSpan[] = [];
  let open: PackSpan | undefined;
  for (const b of blobs) {
    const end = open === undefined ? 0 : open.offset + open.length;
    if (open !== undefined && b.pack === open.pack && b.offset >= end && b.offset - end <= maxGap) {
      const length = b.offset + b.length - open.offset;
      if (length <= maxSpan) {
        open.length = length;
        open.blobs.push(b);
        continue;
      }
    }
    open = { pack: b.pack, offset: b.offset, length: b.length, blobs: [b] };
    spans.push(open);
  }
  return spans;
}

/**
 * Of the blobs the copied backups need (`needed`, each once), those the target lacks, in the order they are best
 * read from the source: pack by pack, by offset inside a pack.
 */
export function missingBlobs(needed: Iterable<NeededBlob>, targetHas: (id: string) => boolean): NeededBlob[] {
  const missing = [...needed].filter((b) => !targetHas(b.id));
  return missing.sort((a, b) => (a.pack !== b.pack ? (a.pack < b.pack ? -1 : 1) : a.offset - b.offset));
}
