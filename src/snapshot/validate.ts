/**
 * Validation of what a repository hands back: tree entries and snapshots are
 * input from storage that may be damaged or forged. Anything that is not
 * exactly what a backup writes is refused with StopError('CHECKSUM_MISMATCH')
 * (the data is not what was backed up) before anything acts on it.
 */
import { StopError } from '../errors.js';
import { HEX64 } from '../crypto/hash.js';
import { comparePaths, type TreeEntry } from './snapshot.js';

function bad(what: string): StopError {
  return new StopError('CHECKSUM_MISMATCH', `backup tree: ${what}`, {
    hint: 'the backup metadata is damaged or forged; nothing was restored from it — use another backup',
  });
}

/** A safe relative POSIX path: no absolute, no '.'/'..'/empty components, no NUL or backslash. */
export function isSafeRelativePath(p: unknown): p is string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 4096) return false;
  if (p.startsWith('/') || p.includes('\0') || p.includes('\\')) return false;
  for (const part of p.split('/')) {
    if (part === '' || part === '.' || part === '..' || part.length > 255) return false;
  }
  return true;
}

const isInt = (n: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): n is number =>
  typeof n === 'number' && Number.isSafeInteger(n) && n >= min && n <= max;

/** Parse and validate one NDJSON tree line. */
export function validateTreeEntry(line: string): TreeEntry {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw bad('an entry is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('an entry is not an object');
  const e = v as Record<string, unknown>;
  if (!isSafeRelativePath(e.path)) throw bad(`unsafe path ${JSON.stringify(e.path)}`);
  const path = e.path;
  if (e.kind !== 'dir' && e.kind !== 'file' && e.kind !== 'db') throw bad(`${path}: unknown kind ${JSON.stringify(e.kind)}`);
  if (!isInt(e.mode, 0, 0o7777)) throw bad(`${path}: bad mode`);
  if (typeof e.mtimeMs !== 'number' || !Number.isFinite(e.mtimeMs)) throw bad(`${path}: bad mtime`);
  if (e.kind === 'dir') {
    if (e.size !== undefined || e.chunks !== undefined || e.sha256 !== undefined) throw bad(`${path}: a directory with content`);
    return e as unknown as TreeEntry;
  }
  if (!isInt(e.size)) throw bad(`${path}: bad size`);
  if (typeof e.sha256 !== 'string' || !HEX64.test(e.sha256)) throw bad(`${path}: bad sha256`);
  if (!Array.isArray(e.chunks) || !e.chunks.every((c) => typeof c === 'string' && HEX64.test(c))) throw bad(`${path}: bad chunk list`);
  if ((e.size === 0) !== (e.chunks.length === 0)) throw bad(`${path}: size disagrees with its chunks`);
  if (e.kind === 'db') {
    const d = e.db as Record<string, unknown> | undefined;
    if (typeof d !== 'object' || d === null || !isInt(d.pageSize, 512, 65536) || !isInt(d.pageCount) ||
      !isInt(d.userVersion, -0x80000000, 0xffffffff) || typeof d.journalMode !== 'string' || d.integrity !== 'ok') {
      throw bad(`${path}: bad database record`);
    }
  }
  return e as unknown as TreeEntry;
}

/** Checks that paths arrive in strict tree order (which also rules out duplicates). */
export class TreeOrderChecker {
  private last: string | undefined;
  check(path: string): void {
    if (this.last !== undefined && comparePaths(this.last, path) >= 0) {
      throw bad(comparePaths(this.last, path) === 0 ? `duplicate path ${path}` : `${path} is out of order`);
    }
    this.last = path;
  }
}
