/**
 * Remove a directory tree that a restore created (staging, a cleared cache),
 * even when the backup gave some of its directories modes without owner write
 * or search permission (as any user but root, rm -r fails on those).
 */
import { chmod, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, fsError } from '../errors.js';

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => undefined);
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await makeWritable(join(dir, e.name));
}

/** rm -rf `path`; a missing path is not an error. */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EACCES' && code !== 'EPERM') throw fsError('remove', path, err);
  }
  await makeWritable(path);
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    throw fsError('remove', path, err);
  }
}
