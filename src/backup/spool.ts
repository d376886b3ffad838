/**
 * The scan's records on their way to the file pipeline. The scan pushes while
 * the pipeline reads (files are stored while the tree is still being walked),
 * but the pipeline may stall — a database's entry waits for the capture, which
 * starts only once the scan has found every database — so the spool must be
 * able to hold the whole scan. It keeps up to MEMORY_RECORDS unread records in
 * memory and puts the rest in NDJSON segment files in staging, so a tree of
 * millions of files costs disk, not memory. Records come out in push order.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';

/**
 * Unread records held in memory before new ones go to disk. In an incremental
 * each costs ~2.7 KB of peak RSS (the record, its parent's entry, and the
 * garbage collector's headroom), and going to disk costs main-thread time.
 * `large` preset (1M files), unchanged incremental, one run each: 200k →
 * 32.6 s, 1274 MiB; 100k → 36.1 s, 1058 MiB; 50k → 38.6 s, 869 MiB. Trees of
 * up to ~150k entries never spill (the ordered window takes the rest).
 */
const MEMORY_RECORDS = 100_000;
/** Records per segment (in memory or one file). */
const SEGMENT_RECORDS = 8192;

type Segment<T> = { records: T[] } | { file: string };

export class Spool<T> {
  private readonly segments: Segment<T>[] = [];
  private current: T[] = [];
  private inMemory = 0;
  private files = 0;
  private ended = false;
  private failure: unknown;
  private wake: (() => void) | undefined;

  /** `prefix`: path prefix of the segment files (in a private directory). */
  constructor(
    private readonly prefix: string,
    private readonly limit = MEMORY_RECORDS,
    private readonly segmentRecords = SEGMENT_RECORDS,
  ) {}

  /** Whether some records went to disk. */
  get spilled(): boolean {
    return this.files > 0;
  }

  async push(records: readonly T[]): Promise<void> {
    if (this.ended) throw new Error('spool: push after end');
    for (const r of records) {
      this.current.push(r);
      if (this.current.length >= this.segmentRecords) await this.seal();
    }
    this.poke();
  }

  async end(): Promise<void> {
    if (this.current.length > 0) await this.seal();
    this.ended = true;
    this.poke();
  }

  /** Make read() throw `err` (the producer failed: no more records will come). */
  fail(err: unknown): void {
    this.failure ??= err;
    this.poke();
  }

  /** Every record, in push order, as they arrive (one reader). */
  async *read(): AsyncGenerator<T> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const seg = this.segments.shift();
      if (seg !== undefined) {
        if ('records' in seg) {
          this.inMemory -= seg.records.length;
          yield* seg.records;
        } else {
          const text = await readFile(seg.file, 'utf8');
          await rm(seg.file, { force: true });
          for (const line of text.split('\n')) if (line.length > 0) yield JSON.parse(line) as T;
        }
        continue;
      }
      // nothing sealed: take what is being filled rather than wait for a whole segment
      if (this.current.length > 0 && this.inMemory + this.current.length <= this.limit) {
        const records = this.current;
        this.current = [];
        yield* records;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private async seal(): Promise<void> {
    const records = this.current;
    this.current = [];
    if (this.inMemory + records.length <= this.limit) {
      this.inMemory += records.length;
      this.segments.push({ records });
      return;
    }
    const file = `${this.prefix}-${String(this.files++).padStart(6, '0')}.ndjson`;
    let text = '';
    for (const r of records) text += `${JSON.stringify(r)}\n`;
    await writeFile(file, text, { flag: 'wx', mode: 0o600 });
    this.segments.push({ file });
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
