import { readFileSync } from 'node:fs';
import { posix } from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** cgroup v1 says "no limit" with a number near 2^63. */
const NO_LIMIT = 2 ** 62;

function readNumber(file: string): number | undefined {
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (!/^\d+$/.test(text)) return undefined; // v2's "max": no limit at this level
    const n = Number(text);
    return n >= NO_LIMIT ? undefined : n;
  } catch {
    return undefined;
  }
}

/**
 * What this process's memory cgroups still allow (limit minus usage, the least over the cgroup and its ancestors),
 * or Infinity without a limit. Both hierarchies: v2 (`0::/path`, memory.max / memory.current) and v1's memory
 * controller (memory.limit_in_bytes / memory.usage_in_bytes). A path the mount does not show (a cgroup namespace)
 * is looked for from the mount's root.
 */
function cgroupHeadroom(): number {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return Number.POSITIVE_INFINITY;
  }
  let least = Number.POSITIVE_INFINITY;
  for (const line of lines) {
    const [, controllers, path] = /^\d+:([^:]*):(\/.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    const v2 = controllers === '';
    if (!v2 && !(controllers ?? '').split(',').includes('memory')) continue;
    const base = v2 ? CGROUP_ROOT : `${CGROUP_ROOT}/memory`;
    const [limitFile, usageFile] = v2
      ? ['memory.max', 'memory.current']
      : ['memory.limit_in_bytes', 'memory.usage_in_bytes'];
    for (let p = posix.normalize(path); ; p = posix.dirname(p)) {
      const limit = readNumber(`${base}${p === '/' ? '' : p}/${limitFile}`);
      const usage = readNumber(`${base}${p === '/' ? '' : p}/${usageFile}`);
      if (limit !== undefined && usage !== undefined) least = Math.min(least, Math.max(0, limit - usage));
      if (p === '/') break;
    }
  }
  return least;
}

/**
 * The memory this process can still take without swapping: MemAvailable of /proc/meminfo, and no more than its
 * memory cgroups allow (a systemd unit's MemoryMax=, a container's limit), where tmpfs pages it writes are
 * charged too. 0 where neither can be read.
 */
export function memoryAvailable(): number {
  let meminfo = 0;
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    meminfo = m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    meminfo = 0;
  }
  return Math.min(meminfo, cgroupHeadroom());
}
