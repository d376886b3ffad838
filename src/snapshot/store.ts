/**
 * Saving, listing and loading snapshots. A snapshot object exists only once its
 * backup is complete (it is written last), so whatever is listed here is whole.
 */
import { FoleBackupError, StopError } from '../errors.js';
import { AAD } from '../repository/format.js';
import type { Repository } from '../repository/repository.js';
import type { Snapshot } from './snapshot.js';
import { validateSnapshot } from './validate.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isBackupId(s: string): boolean {
  return UUID_RE.test(s);
}

export async function saveSnapshot(repo: Repository, snap: Snapshot): Promise<void> {
  await repo.saveJson('snapshots', snap, AAD.snapshot(snap.backupId), snap.backupId);
}

function missing(id: string, why: string, cause?: unknown): StopError {
  return new StopError('MISSING_MANIFEST', `backup ${id}: ${why}`, {
    cause,
    hint: 'list the backups with `fole-backup list` and name one that exists; nothing was changed',
  });
}

/** Load and sanity-check one snapshot. Missing or unreadable → StopError MISSING_MANIFEST. */
export async function loadSnapshot(repo: Repository, backupId: string): Promise<Snapshot> {
  if (!isBackupId(backupId)) throw missing(backupId, 'not a backup id');
  let v: unknown;
  try {
    v = await repo.loadJson('snapshots', backupId, AAD.snapshot(backupId));
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') throw missing(backupId, 'no such backup in this repository', err);
    if (err instanceof FoleBackupError && (err.code === 'CHECKSUM_MISMATCH' || err.code === 'REPO_CORRUPT')) {
      throw missing(backupId, `manifest unreadable (${err.message})`, err);
    }
    throw err;
  }
  return validateSnapshot(v, backupId);
}

/** Every backup id in the repository. */
export async function listSnapshotIds(repo: Repository): Promise<string[]> {
  const ids: string[] = [];
  for await (const o of repo.backend.list('snapshots')) if (isBackupId(o.name)) ids.push(o.name);
  return ids;
}

/** Every snapshot, oldest first. */
export async function listSnapshots(repo: Repository): Promise<Snapshot[]> {
  const snaps: Snapshot[] = [];
  for (const id of await listSnapshotIds(repo)) snaps.push(await loadSnapshot(repo, id));
  return snaps.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.backupId < b.backupId ? -1 : 1));
}

/**
 * Resolve "latest", a full backup id, or a unique prefix (at least 8 characters)
 * to a backup id. Unknown → StopError MISSING_MANIFEST; an ambiguous prefix →
 * StopError AMBIGUOUS_INTENT.
 */
export async function resolveBackupId(repo: Repository, ref: string): Promise<string> {
  const ids = await listSnapshotIds(repo);
  if (ref === 'latest') {
    if (ids.length === 0) throw missing('latest', 'the repository holds no backups yet');
    const snaps = await listSnapshots(repo);
    return (snaps[snaps.length - 1] as Snapshot).backupId;
  }
  if (ids.includes(ref)) return ref;
  const matches = ref.length >= 8 ? ids.filter((id) => id.startsWith(ref)) : [];
  if (matches.length === 1) return matches[0] as string;
  if (matches.length > 1) {
    throw new StopError('AMBIGUOUS_INTENT', `backup id prefix ${ref} matches ${matches.length} backups`, {
      hint: `name the backup in full: ${matches.slice(0, 5).join(', ')}`,
    });
  }
  throw missing(ref, 'no such backup in this repository');
}
