/**
 * The same page-cache state for every tool before every scenario: dropped
 * (sync; echo 3 > /proc/sys/vm/drop_caches) where that is permitted, else
 * warmed — sync, then every file of the scenario's inputs read once — so
 * every tool starts with its input in memory and no dirty pages of the
 * previous step still being written back.
 */
import { closeSync, openSync, readSync, readdirSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './measure.js';

export type CacheMode = 'dropped' | 'warmed';

/** Whether this process may drop the page cache (root, and /proc/sys writable: not in most containers). */
export function detectCacheMode(): { mode: CacheMode; why: string } {
  try {
    run('sync', []);
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return { mode: 'dropped', why: 'sync; echo 3 > /proc/sys/vm/drop_caches before every scenario' };
  } catch (err) {
    return {
      mode: 'warmed',
      why:
        `drop_caches not permitted (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` +
        `); sync, then every input file read once before every scenario`,
    };
  }
}

const buf = Buffer.allocUnsafe(1 << 20);

function readAll(path: string): number {
  let total = 0;
  const st = statSync(path, { throwIfNoEntry: false });
  if (st === undefined) return 0;
  if (st.isDirectory()) {
    for (const e of readdirSync(path, { withFileTypes: true })) {
      if (e.isDirectory() || e.isFile()) total += readAll(join(path, e.name));
    }
    return total;
  }
  if (!st.isFile()) return 0;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return 0; // vanished or unreadable: the tools will say so
  }
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

/** Bring the page cache to the agreed state before a scenario; `inputs` are the paths the step will read. */
export function prepareCache(mode: CacheMode, inputs: string[]): void {
  run('sync', []);
  if (mode === 'dropped') {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return;
  }
  for (const p of inputs) if (existsSync(p)) readAll(p);
}
