/**
 * Make everything written under `path` durable with ONE syncfs(2) of its
 * filesystem (coreutils `sync -f`), instead of an fsync per file: a restore of
 * 100k files fsynced one by one spends most of its time waiting for the disk.
 * Node has no syncfs binding; without `sync -f`, every filesystem is synced.
 */
import { spawnSync } from 'node:child_process';
import { FoleBackupError } from '../errors.js';

export function syncFilesystem(path: string): void {
  const r = spawnSync('sync', ['-f', path], { stdio: 'ignore' });
  if (r.status === 0) return;
  const all = spawnSync('sync', [], { stdio: 'ignore' });
  if (all.status !== 0) {
    throw new FoleBackupError('WRITE_ERROR', `sync ${path}: could not flush the filesystem to disk`, {
      path,
      hint: 'coreutils `sync` is needed to make a restore durable; install coreutils',
    });
  }
}
