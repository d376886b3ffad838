/**
 * Buffers that travel between threads and come back to be used again: a restore's spans (read on the main
 * thread, written by a worker, src/restore/write-files.ts) and a backup's sealed chunks (sealed on a worker,
 * written into a local repository's pack drafts by the main thread, src/backup/file-worker.ts and file-pool.ts).
 * A buffer goes whole with postMessage's transfer list and comes back whole with the answer.
 *
 * Why: a fresh buffer per piece is freed only when the thread that last held it next collects, and a thread
 * that allocates little on its own heap seldom does. On a 1 GB database's restore the spans a worker was done
 * with reached ~40 MB before they were freed, and the heaps that had held them kept the room. Buffers that come
 * back bound that memory by design: no more exist than pieces are held at once, each of `size` bytes unless one
 * piece is larger. A buffer already written is also already in memory: no page faults for the next piece.
 *
 * Transfer detaches a buffer on the side that sent it, so a buffer is in one place only: nothing can write into
 * one that another thread still reads. A buffer lost with a failed job is simply not given back.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  /**
   * The buffers that are this pool's on this thread: only these may travel whole (a reader's own buffer may share
   * its memory with others). A buffer back from another thread is a new object for the same memory, added by give().
   */
  private readonly mine = new WeakSet<ArrayBuffer>();

  /** `size`: the usual piece's bound in bytes (a buffer is never smaller); `keep`: buffers kept while unused. */
  constructor(
    private readonly size: number,
    private readonly keep: number,
  ) {}

  /**
   * A view of `length` (more than 0) bytes at the start of a buffer of this pool's own; its contents are undefined
   * (every byte is written over before it is used).
   */
  take(length: number): Uint8Array {
    if (length <= 0) throw new RangeError('BufferPool.take: a piece of no bytes needs no buffer');
    const i = this.free.findIndex((b) => b.byteLength >= length);
    let buf = i >= 0 ? this.free.splice(i, 1)[0] : undefined;
    if (buf === undefined) {
      // not zeroed: see above
      buf = Buffer.allocUnsafeSlow(Math.max(this.size, length)).buffer as ArrayBuffer;
      this.mine.add(buf);
    }
    return new Uint8Array(buf, 0, length);
  }

  /** Whether `view` is in a buffer of this pool's (then the whole buffer may be transferred with it). */
  ours(view: Uint8Array): boolean {
    return view.buffer instanceof ArrayBuffer && this.mine.has(view.buffer);
  }

  /**
   * A buffer that is the caller's alone — back from another thread, which had it whole by transfer, or taken and
   * not used — kept for a later piece while there is room. One of another size (or detached) is dropped: the pool
   * holds at most keep × size bytes.
   */
  give(buf: ArrayBuffer): void {
    if (buf.byteLength !== this.size || this.free.length >= this.keep || this.free.includes(buf)) return;
    this.mine.add(buf);
    this.free.push(buf);
  }

  /** Buffers kept (for tests). */
  get kept(): number {
    return this.free.length;
  }
}
