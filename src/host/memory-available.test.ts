import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canRun } from '../../test/needs.js';
import { memoryAvailable } from './memory-available.js';

const V1 = '/sys/fs/cgroup/memory';
const root0 = process.getuid?.() === 0;

describe('memoryAvailable', () => {
  it('is at most what /proc/meminfo says is available', () => {
    const kb = /^MemAvailable:\s+(\d+) kB/m.exec(execFileSync('cat', ['/proc/meminfo'], { encoding: 'utf8' }));
    expect(memoryAvailable()).toBeGreaterThan(0);
    expect(memoryAvailable()).toBeLessThanOrEqual(Number(kb?.[1]) * 1024 * 1.05);
  });

  it.runIf(canRun(root0 && existsSync(`${V1}/memory.limit_in_bytes`), "root and cgroup v1's memory controller"))(
    "is no more than a memory cgroup's limit allows (a unit's MemoryMax=, a container's limit)",
    () => {
      const group = `${V1}/fole-backup-test-${process.pid}`;
      mkdirSync(group);
      try {
        writeFileSync(`${group}/memory.limit_in_bytes`, String(300 * 1024 * 1024));
        // a child moved into the group before it starts its work, reporting what it sees
        const script =
          `require('node:fs').writeFileSync('${group}/cgroup.procs', String(process.pid));` +
          `import(${JSON.stringify(new URL('./memory-available.ts', import.meta.url).pathname)})` +
          '.then((m) => console.log(m.memoryAvailable()))';
        const seen = Number(execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' }));
        expect(seen).toBeGreaterThan(0);
        expect(seen).toBeLessThanOrEqual(300 * 1024 * 1024);
      } finally {
        rmdirSync(group);
      }
    },
  );
});
