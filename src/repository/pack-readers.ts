/**
 * Packs held open while they are read piece by piece — restore's spans (a pack
 * of the default preset is read in ~20), tree blobs loaded ahead: one open per
 * pack instead of an open, a stat and a close per piece. Each of those is a
 * trip through libuv's thread pool from the main thread, and with both cores
 * busy a trip now and then waits milliseconds for a descheduled pool thread
 * (measured in a restore: 1,290 opens cost the main thread 0.3 s, p99 4.6 ms).
 *
 * At most `keep` packs stay open while unused, the least recently used closed
 * first; a pack being read is never closed under its reader. With `keep` 0 a
 * pack is shared only by reads under way at the same time and nothing is left
 * open between them (for a user that may be abandoned without close()). A
 * backend without openReader is read with load(), as before.
 */
import type { Backend, ByteRange, ObjectReader } from '../backend/backend.js';

interface Open {
  reader: Promise<ObjectReader>;
  /** Reads under way. */
  users: number;
}

export class PackReaders {
  /** In order of last use, oldest first. */
  private readonly open = new Map<string, Open>();
  /** Readers being closed by trim(): close() waits for them too. */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly backend: Backend,
    private readonly keep: number,
  ) {}

  /** `into`: as ObjectReader.read's (a backend without readers, or whose reader cannot, gives a buffer of its own). */
  async read(pack: string, range: ByteRange, into?: Uint8Array): Promise<Buffer> {
    const backend = this.backend;
    if (backend.openReader === undefined || this.closed) return backend.load({ type: 'data', name: pack }, range);
    let o = this.open.get(pack);
    if (o === undefined) {
      const reader = backend.openReader({ type: 'data', name: pack });
      o = { reader, users: 0 };
      // a pack that cannot be opened is not kept: the next read tries again (and fails the same way)
      reader.catch(() => {
        if (this.open.get(pack) === o) this.open.delete(pack);
      });
    } else {
      this.open.delete(pack);
    }
    this.open.set(pack, o);
    o.users++;
    try {
      return await (await o.reader).read(range, into);
    } finally {
      o.users--;
      this.trim();
    }
  }

  /** Close every pack (after the reads under way). Reads after this go through load(). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all([...all.map(async (o) => (await o.reader.catch(() => undefined))?.close()), ...this.closing]);
  }

  private trim(): void {
    for (const [pack, o] of this.open) {
      if (this.open.size <= this.keep) return;
      if (o.users > 0) continue;
      this.open.delete(pack);
      const done = o.reader.then((r) => r.close()).catch(() => undefined);
      this.closing.add(done);
      void done.then(() => this.closing.delete(done));
    }
  }
}
