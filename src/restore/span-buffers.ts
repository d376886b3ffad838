/**
 * The buffers a restore's spans are read into, used again and again: a span's
 * buffer goes to a worker with its bytes (transferred), and comes back with the
 * worker's answer (transferred again) to take the next span's bytes.
 *
 * Why: a fresh buffer per span is freed only when the worker's V8 next collects,
 * and a worker allocates so little on its own heap that it seldom does. On a
 * 1 GB database's restore, spans the workers were done with reached ~40 MB
 * before they were freed, and the main thread's malloc heap kept the room they
 * had taken. Buffers that come back bound the spans' memory by design: no more
 * buffers exist than spans are held at once (FileWriter's maxHeld), each of
 * `size` bytes unless one span is larger. A buffer already written is also
 * already in memory: no page faults for the next span.
 *
 * Transfer moves a buffer between threads and detaches it on the side that
 * sent it, so a buffer can be in one place only: nothing can write into a
 * buffer that a worker still reads. A buffer lost with a failed job is simply
 * not given back.
 */
export class SpanBuffers {
  private readonly free: ArrayBuffer[] = [];
  /**
   * The buffers that are this pool's on this thread: only these travel whole (a reader's own buffer may share
   * its memory with others). A buffer back from a worker is a new object for the same memory, added by give().
   */
  private readonly mine = new WeakSet<ArrayBuffer>();

  /**
   * `size`: the usual span's bound in bytes (a buffer is never smaller); `keep`: buffers kept while unused, at
   * most (spans held at once).
   */
  constructor(
    private readonly size: number,
    private readonly keep: number,
  ) {}

  /** A view of `length` bytes at the start of a buffer of this pool's own; its contents are undefined. */
  take(length: number): Uint8Array {
    const i = this.free.findIndex((b) => b.byteLength >= length);
    let buf = i >= 0 ? this.free.splice(i, 1)[0] : undefined;
    if (buf === undefined) {
      // not zeroed: every span's bytes are read over it before they are used
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
   * A buffer that is the caller's alone — back from a worker, which had it whole by transfer, or taken and not
   * used — kept for a later span while there is room. One of another size (or detached) is dropped.
   */
  give(buf: ArrayBuffer): void {
    // one made for a larger span than usual is not kept: the pool holds at most keep × size bytes
    if (buf.byteLength !== this.size || this.free.length >= this.keep || this.free.includes(buf)) return;
    this.mine.add(buf);
    this.free.push(buf);
  }

  /** Buffers kept (for tests and the memory figures). */
  get kept(): number {
    return this.free.length;
  }
}
