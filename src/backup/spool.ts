/**
 * Records on their way from a fast producer to a slower, in-order consumer that
 * may stall: the scan's planned entries on their way to the file stage (the
 * scan must finish early, because the capture starts only once it has found every
 * database), and the saved entries on their way to the tree stage (a database's
 * entry waits for its capture, and everything behind it waits in order). It keeps
 * up to a budget of unread records in memory, by their estimated size, and puts
 * the rest in NDJSON segment files in staging, so a tree of millions of files
 * costs disk, not memory. Records come out in push order.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';

/** How a spool holds its records: see Spool. */
export interface SpoolLimits<T> {
  /** Estimated bytes of unread records held in memory before new ones go to disk. */
  budget: number;
  /** A record's estimated size in memory, in bytes (default: 1, so `budget` counts records). */
  sizeOf?: (record: T) => number;
  /** Records per segment (in memory or one file); default SEGMENT_RECORDS. */
  segmentRecords?: number;
}

/**
 * An estimate of what a record of a path and `chunks` chunk ids costs in memory: the
 * objects, the path (two bytes a character) and ~90 bytes per chunk id string.
 */
export function estimatedSize(path: string, chunks: number): number {
  return 400 + 2 * path.length + 90 * chunks;
}

/** Records per segment. */
const SEGMENT_RECORDS = 4096;

type Segment<T> = { records: T[]; bytes: number } | { file: string };

export class Spool<T> {
  private readonly segments: Segment<T>[] = [];
  private current: T[] = [];
  private currentBytes = 0;
  private inMemory = 0;
  private files = 0;
  private ended = false;
  private failure: unknown;
  private wake: (() => void) | undefined;
  private readonly budget: number;
  private readonly sizeOf: (record: T) => number;
  private readonly segmentRecords: number;

  /** `prefix`: path prefix of the segment files (in a private directory). */
  constructor(
    private readonly prefix: string,
    limits: SpoolLimits<T>,
  ) {
    this.budget = limits.budget;
    this.sizeOf = limits.sizeOf ?? (() => 1);
    this.segmentRecords = limits.segmentRecords ?? SEGMENT_RECORDS;
  }

  /** Whether some records went to disk. */
  get spilled(): boolean {
    return this.files > 0;
  }

  async push(records: readonly T[]): Promise<void> {
    if (this.ended) throw new Error('spool: push after end');
    for (const r of records) {
      this.current.push(r);
      this.currentBytes += this.sizeOf(r);
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
          this.inMemory -= seg.bytes;
          yield* seg.records;
        } else {
          const text = await readFile(seg.file, 'utf8');
          await rm(seg.file, { force: true });
          for (const line of text.split('\n')) if (line.length > 0) yield JSON.parse(line) as T;
        }
        continue;
      }
      // nothing sealed: take what is being filled rather than wait for a whole segment
      if (this.current.length > 0 && this.inMemory + this.currentBytes <= this.budget) {
        const records = this.current;
        this.current = [];
        this.currentBytes = 0;
        yield* records;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private async seal(): Promise<void> {
    const records = this.current;
    const bytes = this.currentBytes;
    this.current = [];
    this.currentBytes = 0;
    if (this.inMemory + bytes <= this.budget) {
      this.inMemory += bytes;
      this.segments.push({ records, bytes });
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
