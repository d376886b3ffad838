/**
 * Planning one window of restored files (pure: entries and an index lookup in,
 * data out; the executor is src/restore/write-files.ts). Instead of one ranged
 * read per blob — a million small reads for a million tiles — the blobs the
 * window needs are grouped by pack and each pack is read in spans: from the
 * first needed blob to the last, cut where a span would grow beyond
 * `maxSpan` bytes or skip more than `maxGap` unneeded bytes.
 *
 *   for each file, in tree order: its chunks must be in the index and add up
 *     to its size (CHECKSUM_MISMATCH otherwise); chunk k goes to offset
 *     sum(rawLength of chunks 0..k-1)
 *   a window may be planned in pieces of at most N chunks, a piece starting
 *     where the last one stopped, in the middle of a file if need be
 *   packs in the order the window first needs them (tree order: the order a
 *     backup wrote them, so mostly the order they lie on disk)
 *   a blob needed several times (dedup) is read and opened once, written to
 *     every place that uses it
 *   reads: a pack's spans, in offset order, joined into one request while the
 *     next span starts at or after the previous one's end and at most
 *     `readGap` unneeded bytes after it (no limit on the request's length: it
 *     is streamed span by span, so memory is bounded by the spans held, not by
 *     the request); without `readGap` every span is a read of its own
 *
 * A span is the unit of memory and of a worker's job (about `maxSpan` bytes);
 * a read is the unit of requests. A remote backend pays a round trip per
 * request, so a window's spans of a pack are read in one request where the
 * gaps allow (restic's restorer reads a pack from its first to its last needed
 * blob); a local disk reads each span into its own buffer with no copy.
 */
import { StopError } from '../errors.js';
import type { IndexEntry } from '../repository/master-index.js';
import type { TreeEntry } from '../snapshot/snapshot.js';

/** Where one blob's plaintext goes: a file of the window and an offset in it. */
interface BlobTarget {
  file: number;
  offset: number;
}

interface SpanBlob {
  blob: IndexEntry;
  targets: BlobTarget[];
}

/** One read: `length` bytes of `pack` from `offset`, holding `blobs` (by offset). */
interface Span {
  pack: string;
  offset: number;
  length: number;
  blobs: SpanBlob[];
  /** The window's files this span writes to, each once. */
  files: number[];
}

/** One request: `length` bytes of `pack` from `offset`, holding `count` spans from `plan.spans[first]` on. */
interface PackRead {
  pack: string;
  offset: number;
  length: number;
  first: number;
  count: number;
}

export interface WindowPlan {
  files: readonly TreeEntry[];
  spans: Span[];
  /** Every span in exactly one read, the reads in the order of their spans. */
  reads: PackRead[];
  /** Per file of the window: how many spans of this plan write to it (0: an empty file, or one outside the piece). */
  spansPerFile: number[];
}

export interface SpanLimits {
  /** Bytes read per span at most (a single blob larger than this is still one span). */
  maxSpan: number;
  /** Unneeded bytes a span may read through rather than being cut in two. */
  maxGap: number;
  /** Unneeded bytes one read may go through between two spans; undefined: each span is read alone. */
  readGap?: number;
}

/** CHECKSUM_MISMATCH about a restored file's content (the message names the backup path). */
export function contentMismatch(path: string, what: string): StopError {
  return new StopError('CHECKSUM_MISMATCH', `${path}: ${what}`, {
    path,
    hint:
      'the backup is damaged; nothing live was touched — run `fole-backup check --read-data` and use ' +
      'another backup',
  });
}

/** Where a piece of a window starts: chunk `chunk` of file `file`, which begins at byte `offset` of that file. */
export interface PlanCursor {
  file: number;
  chunk: number;
  offset: number;
}

/**
 * A piece of a window: at most `chunks` chunks from `from` on. A window is planned in pieces so that what a plan
 * holds per chunk (its blob, its targets, its encoded job) is bounded by the piece, not by the largest file: a
 * 954 MB database is 61k chunks, a 100 GB one 6M.
 */
export interface PlanPiece {
  from: PlanCursor;
  chunks: number;
}

/**
 * Plan the reads and writes of `files` (file and database entries, in tree
 * order), or of the piece of them `piece` names; `next` says where the next
 * piece starts (undefined: the window is planned to its end). Throws
 * CHECKSUM_MISMATCH for a chunk the index lacks or chunks that do not add up
 * to the recorded size (checked where a file's last chunk is planned).
 */
export function planWindow(
  files: readonly TreeEntry[],
  lookup: (id: string) => IndexEntry | undefined,
  limits: SpanLimits,
  /** Why a chunk is not in the index (damage records), for the STOP that names it. */
  whyMissing?: (id: string) => string,
  piece?: PlanPiece,
): WindowPlan & { next?: PlanCursor } {
  // group the blobs by pack, packs in order of first use
  const byPack = new Map<string, Map<string, SpanBlob>>();
  let budget = piece?.chunks ?? Number.POSITIVE_INFINITY;
  let next: PlanCursor | undefined;
  const from = piece?.from ?? { file: 0, chunk: 0, offset: 0 };
  let offset = from.offset;
  for (let i = from.file, k = from.chunk; i < files.length && next === undefined; i++, k = 0, offset = 0) {
    const e = files[i] as TreeEntry;
    const chunks = e.chunks ?? [];
    for (; k < chunks.length; k++) {
      if (budget === 0) {
        next = { file: i, chunk: k, offset };
        break;
      }
      budget--;
      const id = chunks[k] as string;
      const blob = lookup(id);
      if (blob === undefined) {
        const why = whyMissing === undefined ? 'not in the repository index' : whyMissing(id);
        throw contentMismatch(e.path, `chunk ${id.slice(0, 12)} is ${why}`);
      }
      let blobs = byPack.get(blob.pack);
      if (blobs === undefined) {
        blobs = new Map();
        byPack.set(blob.pack, blobs);
      }
      let slot = blobs.get(id);
      if (slot === undefined) {
        slot = { blob, targets: [] };
        blobs.set(id, slot);
      }
      slot.targets.push({ file: i, offset });
      offset += blob.rawLength;
    }
    if (next === undefined && offset !== e.size)
      throw contentMismatch(e.path, `its chunks add up to ${offset} bytes, the backup recorded ${e.size ?? 0}`);
  }

  const spans: Span[] = [];
  const spansPerFile = new Array<number>(files.length).fill(0);
  for (const [pack, needed] of byPack) {
    const blobs = [...needed.values()].sort((a, b) => a.blob.offset - b.blob.offset);
    let i = 0;
    while (i < blobs.length) {
      const first = (blobs[i] as SpanBlob).blob;
      let end = first.offset + first.length;
      let j = i + 1;
      while (j < blobs.length) {
        const b = (blobs[j] as SpanBlob).blob;
        if (b.offset + b.length - first.offset > limits.maxSpan || b.offset - end > limits.maxGap) break;
        end = Math.max(end, b.offset + b.length);
        j++;
      }
      const part = blobs.slice(i, j);
      const written = new Set<number>();
      for (const b of part) for (const t of b.targets) written.add(t.file);
      for (const f of written) spansPerFile[f] = (spansPerFile[f] as number) + 1;
      spans.push({ pack, offset: first.offset, length: end - first.offset, blobs: part, files: [...written] });
      i = j;
    }
  }
  const plan = { files, spans, reads: planReads(spans, limits.readGap), spansPerFile };
  return next === undefined ? plan : { ...plan, next };
}

/**
 * Join the spans (a pack's in a row, by offset) into reads. Spans that overlap (blobs the index puts over each
 * other) are never in one read: a streamed read goes forward only.
 */
function planReads(spans: readonly Span[], readGap: number | undefined): PackRead[] {
  const reads: PackRead[] = [];
  let last: PackRead | undefined;
  spans.forEach((s, i) => {
    if (
      last !== undefined &&
      readGap !== undefined &&
      s.pack === last.pack &&
      s.offset >= last.offset + last.length &&
      s.offset - (last.offset + last.length) <= readGap
    ) {
      last.length = s.offset + s.length - last.offset;
      last.count++;
      return;
    }
    last = { pack: s.pack, offset: s.offset, length: s.length, first: i, count: 1 };
    reads.push(last);
  });
  return reads;
}
