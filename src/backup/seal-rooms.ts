/**
 * The buffers a file worker seals chunks into (src/backup/file-worker.ts), kept to be sealed into again: each goes
 * to the main thread with its sealed chunks (transferred) and comes back once a local repository's pack drafts
 * hold their bytes (FilePool, SharedBytes in src/repository/open-pack.ts). A new buffer per exchange was freed only
 * by the main thread's next garbage collection after its pack was written; where buffers do not come back (a
 * remote repository keeps a pack's bytes until it is saved) a new one is made each time, as before.
 */
export class SealRooms {
  private readonly kept: ArrayBuffer[] = [];

  /** `size`: the room an exchange usually needs (a buffer is never smaller); `keep`: buffers kept at most. */
  constructor(
    private readonly size: number,
    private readonly keep: number,
  ) {}

  /**
   * A view of `n` bytes at the start of a kept buffer that holds them, or of a new one; its contents are
   * undefined (the sealed blobs cover every byte of it). `n` must be more than 0: an exchange that seals nothing
   * sends nothing.
   */
  take(n: number): Uint8Array {
    if (n <= 0) throw new RangeError('SealRooms.take: nothing to seal');
    const i = this.kept.findIndex((b) => b.byteLength >= n);
    const buf = i >= 0 ? (this.kept.splice(i, 1)[0] as ArrayBuffer) : newRoom(Math.max(n, this.size));
    return new Uint8Array(buf, 0, n);
  }

  /** A buffer back from the main thread: kept while there is room, if it is of the usual size or more. */
  give(b: ArrayBuffer): void {
    if (b.byteLength >= this.size && this.kept.length < this.keep) this.kept.push(b);
  }

  /** Buffers kept (for tests). */
  get count(): number {
    return this.kept.length;
  }
}

/** Not zeroed: every byte is sealed over before it is sent. */
function newRoom(n: number): ArrayBuffer {
  return Buffer.allocUnsafeSlow(n).buffer as ArrayBuffer;
}
