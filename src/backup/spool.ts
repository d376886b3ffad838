/**
 * The scan's records, kept until the databases have been captured (the capture
 * needs the whole list of databases first, so the tree is walked once and then
 * replayed). Records stay in memory up to MEMORY_RECORDS — no serialisation for
 * an ordinary tree — and beyond that everything goes to an NDJSON file in
 * staging, so a tree of millions of files costs disk, not memory.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Records held in memory before the spool moves to disk (~30-60 MB of records). */
export const MEMORY_RECORDS = 200_000;

export class Spool<T> {
  private memory: T[] = [];
  private file: WriteStream | undefined;
  private ended = false;

  constructor(
    private readonly path: string,
    private readonly limit = MEMORY_RECORDS,
  ) {}

  /** Whether the records went to disk. */
  get spilled(): boolean {
    return this.file !== undefined;
  }

  async push(records: readonly T[]): Promise<void> {
    if (this.ended) throw new Error('spool: push after end');
    if (this.file === undefined) {
      for (const r of records) this.memory.push(r);
      if (this.memory.length <= this.limit) return;
      this.file = createWriteStream(this.path, { flags: 'wx', mode: 0o600 });
      records = this.memory;
      this.memory = [];
    }
    let text = '';
    for (const r of records) text += JSON.stringify(r) + '\n';
    if (!this.file.write(text)) await once(this.file, 'drain');
  }

  async end(): Promise<void> {
    this.ended = true;
    if (this.file === undefined) return;
    this.file.end();
    await once(this.file, 'finish');
  }

  /** Every record, in the order pushed (once, after end()). */
  async *read(): AsyncGenerator<T> {
    if (!this.ended) throw new Error('spool: read before end');
    if (this.file === undefined) {
      const records = this.memory;
      this.memory = [];
      yield* records;
      return;
    }
    for await (const line of createInterface({ input: createReadStream(this.path), crlfDelay: Infinity })) {
      yield JSON.parse(line) as T;
    }
  }
}
