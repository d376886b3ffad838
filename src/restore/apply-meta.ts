/** Giving a restored file its owner, mode and mtime (on the workers and on the main thread). */
import { chmodSync, chownSync, utimesSync } from 'node:fs';
import { fsError } from '../errors.js';
import { fsPath } from '../fs/byte-names.js';
import { utimeSeconds } from '../fs/file-times.js';
import type { FileMeta } from './span-job.js';

export function applyMeta(file: string, meta: FileMeta): void {
  const p = fsPath(file);
  try {
    // the owner before the mode: a chown may clear set-id bits
    if (meta.owner !== undefined) chownSync(p, meta.owner.uid, meta.owner.gid);
    chmodSync(p, meta.mode);
    utimesSync(p, utimeSeconds(meta.mtimeMs), utimeSeconds(meta.mtimeMs));
  } catch (err) {
    throw fsError('write', file, err);
  }
}
