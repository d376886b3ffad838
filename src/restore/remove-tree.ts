/**
 * Remove a directory tree that a restore created (staging, a cleared cache),
 * even when the backup gave some of its directories modes without owner write
 * or search permission (as any user but root, rm -r fails on those).
 */
import { chmod, readdir, rm } from 'node:fs/promises';
import { errnoCode, fsError } from '../errors.js';
import { fsPath } from '../fs/byte-names.js';

const SLASH = Buffer.from('/');

/** Owner write and search on every directory under `dir`; names as bytes, so one that is not UTF-8 is reached too. */
async function makeWritable(dir: Buffer): Promise<void> {
  await chmod(dir, 0o700).catch(() => undefined);
  const entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' }).catch(() => undefined);
  if (entries === undefined) return;
  for (const e of entries) if (e.isDirectory()) await makeWritable(Buffer.concat([dir, SLASH, e.name]));
}

/** rm -rf `path`; a missing path is not an error. */
export async function removeTree(path: string): Promise<void> {
  const p = fsPath(path);
  try {
    await rm(p, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EACCES' && code !== 'EPERM') throw fsError('remove', path, err);
  }
  await makeWritable(Buffer.isBuffer(p) ? p : Buffer.from(p));
  try {
    await rm(p, { recursive: true, force: true });
  } catch (err) {
    throw fsError('remove', path, err);
  }
}
