/**
 * Where database copies go when they fit in memory. The Online Backup API ends each copy with a commit that
 * syncs its destination: on disk, the capture then waits while the whole copy is written to the disk, a copy
 * that is read once and deleted minutes later. In a tmpfs the same commit costs nothing. Measured, full backups
 * with every copy on disk and with every copy in /dev/shm (3 alternating pairs each, caches dropped): `huge-db`
 * (one 1 GB database) 5.46 → 4.57 s, `medium-dbs` 3.65 → 3.20 s, `wal-heavy` 3.53 → 3.31 s.
 *
 * Memory is not free, so the room is bounded: a quarter of the memory available when the backup starts, and
 * half of what the tmpfs has free, whichever is less. A copy that does not fit beside the copies still there
 * goes to the staging directory on disk (src/sqlite/capture.ts), and each copy is removed as soon as it is
 * stored (src/backup/capture-databases.ts). The directory is a private staging like the one on disk
 * (src/backup/staging.ts): made 0700, with its holder's record, so a later run removes what a killed one left
 * in memory. An operator who names a staging directory (`--staging-dir`, FOLE_BACKUP_STAGING) gets every copy
 * there and none in memory.
 */
import { realpath, statfs } from 'node:fs/promises';
import type { MemoryStaging } from '../sqlite/capture.js';
import { isInside } from '../fs/inside-root.js';
import { memoryAvailable } from '../host/memory-available.js';
import { createStaging, removeStaleStaging } from './staging.js';

/** Where Linux keeps a tmpfs for every user. */
const MEMORY_STAGING_PARENT = '/dev/shm';
const TMPFS_MAGIC = 0x01021994;
/** Below this, copies in memory would be too few to be worth a directory. */
const MIN_BUDGET_BYTES = 64 * 1024 * 1024;

/**
 * A private staging directory in memory and its budget, or undefined: an operator's own staging directory,
 * no tmpfs at `parent`, one inside the STORAGE_ROOT `root`, too little memory, or one that cannot be made (the
 * copies then all go to disk, as they did before).
 */
export async function makeMemoryStaging(opts: {
  stagingParent: string | undefined;
  root: string;
  parent?: string;
}): Promise<MemoryStaging | undefined> {
  const parent = opts.parent ?? MEMORY_STAGING_PARENT;
  // first, whatever this backup does: what a killed backup left there holds memory until it is removed, and
  // counts against the room measured below
  await removeStaleStaging(parent).catch(() => undefined);
  if (opts.stagingParent !== undefined) return undefined;
  try {
    const fs = await statfs(parent);
    if (fs.type !== TMPFS_MAGIC) return undefined;
    const real = await realpath(parent);
    if (isInside(real, opts.root)) return undefined;
    const budgetBytes = Math.floor(Math.min(memoryAvailable() / 4, (fs.bavail * fs.bsize) / 2));
    if (budgetBytes < MIN_BUDGET_BYTES) return undefined;
    return { dir: await createStaging(real), budgetBytes };
  } catch {
    return undefined;
  }
}
