/**
 * Writes the generated tree. Files are written synchronously, in batches, with
 * a turn of the event loop between batches so progress callbacks and an
 * AbortSignal still get through. Measured on the 2-core build machine, 20k
 * 4 KiB files: writeFileSync 0.37 s, fs.promises.writeFile with 64 in flight
 * 0.73 s (libuv's 4 threads are the bottleneck, not the disk), so a pool of
 * async writes only adds overhead for the small files that dominate a tree.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { abortError, fsError } from '../errors.js';

/** Reports progress in steps of `stepPercent` of an estimated total. */
export class Progress {
  private done = 0;
  private nextReport: number;

  constructor(
    private readonly total: number,
    private readonly onProgress: ((msg: string) => void) | undefined,
    private readonly stepPercent = 5,
  ) {
    this.nextReport = stepPercent;
  }

  /** Count `bytes` of work as done; report if that crossed the next step. */
  advance(bytes: number, what: string): void {
    this.done += bytes;
    if (this.onProgress === undefined) return;
    const pct = this.total > 0 ? Math.min(99, Math.floor((this.done / this.total) * 100)) : 99;
    if (pct < this.nextReport) return;
    this.nextReport = (Math.floor(pct / this.stepPercent) + 1) * this.stepPercent;
    this.onProgress(`${pct}% (${formatBytes(this.done)} of ~${formatBytes(this.total)}): ${what}`);
  }

  finish(msg: string): void {
    this.onProgress?.(`100%: ${msg}`);
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u] ?? 'TiB'}`;
}

const YIELD_EVERY_FILES = 512;
const YIELD_EVERY_BYTES = 16 << 20;

export class TreeWriter {
  /** Regular files written through this writer. */
  files = 0;
  /** Their total size. */
  bytes = 0;
  private readonly madeDirs = new Set<string>();
  private filesSinceYield = 0;
  private bytesSinceYield = 0;

  constructor(
    readonly root: string,
    readonly progress: Progress,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Absolute path of `rel` (a '/'-separated path relative to the root). */
  abs(rel: string): string {
    return join(this.root, rel);
  }

  /** mkdir -p for a directory relative to the root, remembered so a tile pyramid costs one mkdir per directory. */
  dir(rel: string): void {
    if (this.madeDirs.has(rel)) return;
    const abs = this.abs(rel);
    try {
      mkdirSync(abs, { recursive: true });
    } catch (err) {
      throw fsError('create directory', abs, err);
    }
    this.madeDirs.add(rel);
  }

  /** Write a file (parents created); yields to the event loop every few hundred files or MiB. */
  async file(rel: string, data: Buffer | string): Promise<number> {
    const parent = dirname(rel);
    if (parent !== '.') this.dir(parent);
    const abs = this.abs(rel);
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    try {
      writeFileSync(abs, data);
    } catch (err) {
      throw fsError('write', abs, err);
    }
    this.files++;
    this.bytes += size;
    this.progress.advance(size, rel);
    this.filesSinceYield++;
    this.bytesSinceYield += size;
    if (this.filesSinceYield >= YIELD_EVERY_FILES || this.bytesSinceYield >= YIELD_EVERY_BYTES) {
      await this.breathe();
    }
    return size;
  }

  /** Let timers, I/O callbacks and abort listeners run; throw if aborted. */
  async breathe(): Promise<void> {
    this.filesSinceYield = 0;
    this.bytesSinceYield = 0;
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.signal?.aborted) throw abortError();
  }
}
