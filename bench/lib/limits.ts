/**
 * What the machine allows for the bytes a backup reads, so every result can
 * be read as a fraction of a limit:
 *   - raw read: `cat` of every file the backup reads (same exclusions): one
 *     cat at a time and 8 in parallel from a dropped page cache (when it can
 *     be dropped: the state every step starts from), and one at a time warm;
 *   - Node read loop: the same files opened and read 1 MiB at a time from one
 *     Node thread (what a single-threaded Node reader can do, per-file open
 *     and stat included);
 *   - Node SHA-256 (1 MiB updates, and one-shot per 16 KiB / 4 KiB chunk, the
 *     shape of database chunks and tiles);
 *   - Node AES-256-GCM encrypt (1 MiB and 16 KiB messages);
 *   - zstd level 3 (zstd-napi, as the repository uses it) on the largest
 *     database's first 64 MiB, for reference.
 * All single-threaded: the machine has the cores it has, nproc is recorded.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { compress as zstdCompress } from 'zstd-napi';
import { ZSTD_LEVEL } from '../../src/repository/compress.js';
import { timed } from './measure.js';
import { prepareCache, type CacheMode } from './page-cache.js';

export const RAW_READ_COLD = 'raw read (cat, caches dropped)';
export const RAW_READ_COLD_PARALLEL = 'raw read (8 × cat in parallel, caches dropped)';
export const RAW_READ_WARM = 'raw read (cat, warm cache)';
export const SHA256_1MIB = 'Node SHA-256, 1 MiB updates';

export interface Limit {
  name: string;
  /** Bytes per second (decimal MB/s = this / 1e6). */
  bytesPerS: number;
  /** Seconds this operation alone would take over the tree's bytes. */
  secondsForTree: number;
  note?: string;
}

function rate(bytes: number, fn: () => void): number {
  const t0 = performance.now();
  fn();
  return bytes / ((performance.now() - t0) / 1000);
}

function nodeReadLoop(files: readonly string[]): { bytes: number; seconds: number } {
  const buf = Buffer.allocUnsafe(1 << 20);
  let bytes = 0;
  const t0 = performance.now();
  for (const f of files) {
    const fd = openSync(f, 'r');
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        bytes += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return { bytes, seconds: (performance.now() - t0) / 1000 };
}

export async function measureLimits(
  files: readonly string[],
  treeBytes: number,
  largestDb: string | undefined,
  workDir: string,
  cacheMode: CacheMode,
): Promise<Limit[]> {
  const out: Limit[] = [];
  const add = (name: string, bytesPerS: number, note?: string): void => {
    out.push({ name, bytesPerS, secondsForTree: treeBytes / bytesPerS, ...(note ? { note } : {}) });
  };

  const list = `${workDir}/limits-files.list`;
  writeFileSync(list, files.join('\0'));
  // -P 1: one cat after the other (queue depth 1); -P 8: eight at once, which this kind of disk rewards
  const cat = async (parallel: number): Promise<number> => {
    const t = await timed('sh', ['-c', `xargs -0 -n 256 -P ${parallel} -a "$1" cat > /dev/null`, 'sh', list], {
      timeFile: `${workDir}/limits-cat.time`,
    });
    if (t.exitCode !== 0) throw new Error(`raw read (cat) failed: ${t.stderr}`);
    return treeBytes / t.wallS;
  };
  if (cacheMode === 'dropped') {
    // the state every tool starts from
    prepareCache('dropped', []);
    add(RAW_READ_COLD, await cat(1), `${files.length} files, one at a time; the state every step starts from`);
    prepareCache('dropped', []);
    add(RAW_READ_COLD_PARALLEL, await cat(8), 'what the disk gives to 8 readers at once');
  }
  nodeReadLoop(files);
  add(RAW_READ_WARM, await cat(1), `${files.length} files`);
  const nr = nodeReadLoop(files);
  add('Node read loop (1 MiB reads, one thread)', nr.bytes / nr.seconds, `${files.length} files`);

  const big = randomBytes(64 << 20);
  const total = 1 << 30;
  add(
    SHA256_1MIB,
    rate(total, () => {
      const h = createHash('sha256');
      for (let done = 0; done < total; done += 1 << 20) {
        const o = done % big.length;
        h.update(big.subarray(o, o + (1 << 20)));
      }
      h.digest();
    }),
  );
  for (const size of [16 << 10, 4 << 10]) {
    const n = (256 << 20) / size;
    add(
      `Node SHA-256, one-shot per ${size >> 10} KiB chunk`,
      rate(n * size, () => {
        for (let i = 0; i < n; i++) {
          const o = (i * size) % big.length;
          createHash('sha256')
            .update(big.subarray(o, o + size))
            .digest();
        }
      }),
    );
  }
  const key = randomBytes(32);
  for (const size of [1 << 20, 16 << 10]) {
    const n = (size >= 1 << 20 ? total : 256 << 20) / size;
    add(
      `Node AES-256-GCM encrypt, ${size >= 1 << 20 ? '1 MiB' : `${size >> 10} KiB`} messages`,
      rate(n * size, () => {
        for (let i = 0; i < n; i++) {
          const o = (i * size) % big.length;
          const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
          c.update(big.subarray(o, o + size));
          c.final();
          c.getAuthTag();
        }
      }),
    );
  }
  if (largestDb !== undefined) {
    const sample = Buffer.allocUnsafe(64 << 20);
    const fd = openSync(largestDb, 'r');
    let got = 0;
    try {
      got = readSync(fd, sample, 0, sample.length, 0);
    } finally {
      closeSync(fd);
    }
    const chunk = 16 << 10;
    add(
      `zstd level ${ZSTD_LEVEL} (the backups' own), 16 KiB chunks of the largest DB`,
      rate(got, () => {
        for (let o = 0; o + chunk <= got; o += chunk)
          zstdCompress(sample.subarray(o, o + chunk), { compressionLevel: ZSTD_LEVEL });
      }),
      'reference only: how much of a DB compresses depends on its content',
    );
  }
  return out;
}
