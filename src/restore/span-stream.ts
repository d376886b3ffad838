/**
 * Cutting one streamed read of a pack (src/restore/window-plan.ts: a read
 * holds several spans, gaps between them) into its spans' buffers, in order.
 * Each span gets a buffer of its own — transferable to a worker, never a
 * slice of Node's shared pool; `alloc`'s, or a new one — taken when the caller asks for it, so
 * whoever pulls the spans decides how many are held: pulling the next span
 * only once there is room for it keeps memory at (spans held) × (span size)
 * plus what the transport buffers, however long the read. Bytes between the
 * spans are dropped as they arrive.
 *
 *   pieces: the read's bytes, `read.offset` on, in order, in pieces of any size
 *   spans:  sorted, not overlapping, inside the read
 *   fewer bytes than the read: REPO_CORRUPT (the pack is shorter than the index says)
 */
import { type ByteRange, beyondEnd } from '../backend/backend.js';
import { FoleBackupError } from '../errors.js';

/** The spans of `read`, each as one buffer, in order; `where` names the pack for errors. */
export async function* cutSpans(
  pieces: AsyncIterable<Uint8Array>,
  read: ByteRange,
  spans: readonly ByteRange[],
  where: string,
  alloc: (length: number) => Uint8Array = (length) => Buffer.allocUnsafeSlow(length),
): AsyncGenerator<Uint8Array, void, undefined> {
  const it = pieces[Symbol.asyncIterator]();
  /** Offset (in the pack) of the first byte of `piece` not used yet. */
  let at = read.offset;
  let piece: Uint8Array = new Uint8Array(0);
  let ended = false;
  const end = read.offset + read.length;
  try {
    for (const s of spans) {
      if (s.offset < at || s.offset + s.length > end)
        throw new FoleBackupError('INTERNAL', `read ${where}: span ${s.offset}+${s.length} out of order`);
      const buf = alloc(s.length);
      let filled = 0;
      while (filled < s.length) {
        if (piece.length === 0) {
          const r = ended ? { done: true as const } : await it.next();
          if (r.done === true) {
            ended = true;
            throw beyondEnd(where, read, at);
          }
          piece = r.value;
          if (at + piece.length > end) throw new FoleBackupError('READ_ERROR', `read ${where}: more bytes than asked`);
        }
        // the gap before the span, then the span's bytes
        const skip = Math.min(piece.length, Math.max(0, s.offset - at));
        const take = Math.min(piece.length - skip, s.length - filled);
        if (take > 0) buf.set(piece.subarray(skip, skip + take), filled);
        filled += take;
        at += skip + take;
        piece = piece.subarray(skip + take);
      }
      yield buf;
    }
    // the end of the response too, so an HTTP connection is kept for the next request rather than torn down
    while (!ended && piece.length === 0 && at === end) {
      const r = await it.next();
      ended = r.done === true;
      if (!ended) piece = r.value;
    }
    if (piece.length > 0) throw new FoleBackupError('READ_ERROR', `read ${where}: more bytes than asked`);
  } finally {
    // a read given up (a failure, or spans it ends before): the request is ended
    if (!ended) await it.return?.();
  }
}
