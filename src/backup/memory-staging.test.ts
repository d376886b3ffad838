import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRun } from '../../test/needs.js';
import { selfIdentity } from '../host/process-identity.js';
import { makeMemoryStaging } from './memory-staging.js';

const MiB = 1024 * 1024;
const root0 = process.getuid?.() === 0;

// tmpfs mounts of known sizes stand for /dev/shm: mounting needs root
describe.runIf(canRun(root0, 'root, to mount a tmpfs'))('makeMemoryStaging', () => {
  let base: string;
  const mounted: string[] = [];
  /** A tmpfs of `mib` MiB. */
  function tmpfs(mib: number): string {
    const dir = join(base, `tmpfs-${mounted.length}`);
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir]);
    mounted.push(dir);
    return dir;
  }

  beforeAll(() => {
    // under the checkout, not the temp dir: a disk here, wherever TMPDIR points
    base = mkdtempSync(join(process.cwd(), '.memory-staging-test-'));
  });
  afterAll(() => {
    for (const dir of mounted) execFileSync('umount', [dir]);
    rmSync(base, { recursive: true, force: true });
  });

  it('makes a private directory in a tmpfs, with room for half of what it has free', async () => {
    const shm = tmpfs(256);
    const m = await makeMemoryStaging({ stagingParent: undefined, root: join(base, 'root'), parent: shm });
    expect(m).toBeDefined();
    expect(m?.dir.startsWith(`${shm}/fole-backup-staging-${process.pid}-`)).toBe(true);
    expect(statSync(m?.dir as string).mode & 0o777).toBe(0o700);
    expect(existsSync(join(m?.dir as string, 'holder.json'))).toBe(true);
    expect(m?.budgetBytes).toBeLessThanOrEqual(128 * MiB);
    expect(m?.budgetBytes).toBeGreaterThan(127 * MiB);
  });

  it.each([
    ['its own copies in memory', undefined],
    ['its copies on disk (--staging-dir)', 'disk'],
  ])(
    "removes what a killed backup left in memory, as on disk, and keeps a live one's, for a backup with %s",
    async (_what, named) => {
      const shm = tmpfs(256);
      const dead = spawnSync('true').pid as number;
      const left = join(shm, `fole-backup-staging-${dead}-abc123`);
      mkdirSync(left, { mode: 0o700 });
      writeFileSync(join(left, 'holder.json'), JSON.stringify({ host: hostname(), pid: dead, ...selfIdentity() }));
      writeFileSync(join(left, 'capture-x-00000-core_core.db'), Buffer.alloc(MiB));
      const live = join(shm, `fole-backup-staging-${process.ppid}-def456`);
      mkdirSync(live, { mode: 0o700 });
      // the parent's record, but for its start time, which only the holder itself would know
      const { startTime: _, ...ours } = selfIdentity();
      writeFileSync(join(live, 'holder.json'), JSON.stringify({ host: hostname(), pid: process.ppid, ...ours }));
      const stagingParent = named === undefined ? undefined : join(base, named);
      await makeMemoryStaging({ stagingParent, root: join(base, 'root'), parent: shm });
      expect(existsSync(left)).toBe(false);
      expect(existsSync(live)).toBe(true);
    },
  );

  it('is none where the operator named a staging directory, where there is no tmpfs, or too little room', async () => {
    const root = join(base, 'root');
    const shm = tmpfs(256);
    expect(await makeMemoryStaging({ stagingParent: base, root, parent: shm })).toBeUndefined();
    const disk = join(base, 'disk');
    mkdirSync(disk);
    expect(await makeMemoryStaging({ stagingParent: undefined, root, parent: disk })).toBeUndefined();
    expect(await makeMemoryStaging({ stagingParent: undefined, root, parent: join(base, 'missing') })).toBeUndefined();
    // half of 100 MiB is less than a budget worth having
    expect(await makeMemoryStaging({ stagingParent: undefined, root, parent: tmpfs(100) })).toBeUndefined();
  });

  it('is none inside the STORAGE_ROOT: its copies would be backed up too', async () => {
    const shm = tmpfs(256);
    expect(await makeMemoryStaging({ stagingParent: undefined, root: base, parent: shm })).toBeUndefined();
  });
});
