/**
 * Private staging directories for database snapshots, named with our pid so a
 * later run can remove what a killed run left behind.
 */
import { processAlive } from '../host/process-alive.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsError } from '../errors.js';

const PREFIX = 'fole-backup-staging-';

/** Remove staging dirs in `parent` whose process is gone. Returns what was removed. */
export async function removeStaleStaging(parent: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    await rm(join(parent, name), { recursive: true, force: true });
    removed.push(join(parent, name));
  }
  return removed;
}

/** Create a private (0700) staging dir under `parent` (default: the OS temp dir). */
export async function makeStaging(parent = tmpdir()): Promise<string> {
  await removeStaleStaging(parent);
  try {
    return await mkdtemp(join(parent, `${PREFIX}${process.pid}-`));
  } catch (err) {
    throw fsError('write', parent, err);
  }
}
