import { readFileSync } from 'node:fs';

/** MemAvailable of /proc/meminfo in bytes: what can be had without swapping (0 where there is no such file). */
export function memoryAvailable(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}
