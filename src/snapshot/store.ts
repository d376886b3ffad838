/**
 * Saving, listing and loading snapshots. A snapshot object exists only once its
 * backup is complete (it is written last), so whatever is listed here is whole.
 */
import { FoleBackupError, StopError } from '../errors.js';
import { AAD } from '../repository/format.js';
import type { SealedObjects } from '../repository/slices.js';
import type { Snapshot } from './snapshot.js';
import { printable, validateSnapshot } from './validate.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What can name a backup besides `latest`: a prefix of an id, at least 8 characters, at most a whole id. */
const BACKUP_REF = /^[0-9a-f][0-9a-f-]{7,35}$/;

export function isBackupId(s: string): boolean {
  return UUID_RE.test(s);
}

/**
 * Write a snapshot, after running the reader's own validator on exactly what
 * will be stored (its JSON form): nothing a later `list`, `restore` or `prune`
 * would refuse can be written. A refusal here is a bug in the writer (the
 * values it records are checked where they enter), so it is INTERNAL.
 */
export async function saveSnapshot(repo: SealedObjects, snap: Snapshot): Promise<void> {
  try {
    validateSnapshot(JSON.parse(JSON.stringify(snap)), snap.backupId);
  } catch (err) {
    throw new FoleBackupError(
      'INTERNAL',
      `the snapshot of backup ${snap.backupId} fails the reader's own check and was not written: ` +
        `${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
        hint:
          'this is a bug in fole-backup; nothing was written (the data stored so far is unreferenced and ' +
          '`prune` frees it); please report it with the command you ran',
      },
    );
  }
  await repo.saveJson('snapshots', snap, AAD.snapshot(snap.backupId), snap.backupId);
}

function missing(id: string, why: string, cause?: unknown): StopError {
  return new StopError('MISSING_MANIFEST', `backup ${id}: ${why}`, {
    cause,
    hint: 'list the backups with `fole-backup list` and name one that exists; nothing was changed',
  });
}

/** A snapshot that exists but cannot be read: undecryptable, not JSON, or refused by the validator. */
export interface DamagedSnapshot {
  backupId: string;
  reason: string;
}

/** Load and sanity-check one snapshot. Missing or unreadable → StopError MISSING_MANIFEST. */
export async function loadSnapshot(repo: SealedObjects, backupId: string): Promise<Snapshot> {
  if (!isBackupId(backupId)) throw missing(backupId, 'not a backup id');
  let v: unknown;
  try {
    v = await repo.loadJson('snapshots', backupId, AAD.snapshot(backupId));
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND')
      throw missing(backupId, 'no such backup in this repository', err);
    if (err instanceof FoleBackupError && (err.code === 'CHECKSUM_MISMATCH' || err.code === 'REPO_CORRUPT')) {
      throw damagedError(backupId, `manifest unreadable (${err.message})`, err);
    }
    throw err;
  }
  try {
    return validateSnapshot(v, backupId);
  } catch (err) {
    if (err instanceof StopError) throw damagedError(backupId, err.message.replace(/^backup \S+: /, ''), err);
    throw err;
  }
}

/** The STOP for a snapshot that exists but cannot be used; it says what deals with it. */
function damagedError(id: string, why: string, cause: unknown): StopError {
  return new StopError('MISSING_MANIFEST', `backup ${id}: ${why}`, {
    cause,
    hint:
      `this backup's manifest is damaged; nothing was changed. Use another backup (\`fole-backup list\` ` +
      `marks the damaged ones); \`fole-backup forget ${id}\` removes it`,
  });
}

/** Every backup id in the repository. */
async function listSnapshotIds(repo: SealedObjects): Promise<string[]> {
  const ids: string[] = [];
  for await (const o of repo.backend.list('snapshots')) if (isBackupId(o.name)) ids.push(o.name);
  return ids;
}

export interface SnapshotScan {
  /** Every readable snapshot, oldest first. */
  snapshots: Snapshot[];
  /** Every snapshot that exists but cannot be read, by id. */
  damaged: DamagedSnapshot[];
}

const byTime = (a: Snapshot, b: Snapshot): number =>
  a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.backupId < b.backupId ? -1 : 1;

/**
 * Read every snapshot. One that cannot be read is reported in `damaged`
 * instead of failing the whole listing, so one bad object never hides the
 * good ones; one removed meanwhile (a concurrent forget) is left out. Errors
 * that are not about the snapshot itself (I/O, a wrong key) still throw.
 */
export async function scanSnapshots(repo: SealedObjects): Promise<SnapshotScan> {
  const snapshots: Snapshot[] = [];
  const damaged: DamagedSnapshot[] = [];
  for (const id of await listSnapshotIds(repo)) {
    try {
      snapshots.push(await loadSnapshot(repo, id));
    } catch (err) {
      if (!(err instanceof StopError) || err.code !== 'MISSING_MANIFEST') throw err;
      const cause = err.cause;
      if (cause instanceof FoleBackupError && cause.code === 'NOT_FOUND') continue;
      damaged.push({ backupId: id, reason: err.message.replace(`backup ${id}: `, '') });
    }
  }
  return { snapshots: snapshots.sort(byTime), damaged: damaged.sort((a, b) => (a.backupId < b.backupId ? -1 : 1)) };
}

/**
 * Every readable snapshot, oldest first. Callers that act on the whole set
 * (prune) use scanSnapshots and refuse when some are damaged.
 */
export async function listSnapshots(repo: SealedObjects): Promise<Snapshot[]> {
  return (await scanSnapshots(repo)).snapshots;
}

/** One line naming damaged backups and what deals with them, with `then` saying what happens meanwhile. */
export function describeDamaged(damaged: readonly DamagedSnapshot[], then: string): string {
  const n = damaged.length;
  const ids =
    damaged
      .slice(0, 5)
      .map((d) => d.backupId)
      .join(', ') + (n > 5 ? ` and ${n - 5} more` : '');
  return (
    `${n} backup${n === 1 ? ' is' : 's are'} damaged (unreadable manifest): ${ids}; ${then}` +
    `. \`fole-backup list\` shows why; \`fole-backup forget ID…\` removes them`
  );
}

export interface ResolveOptions {
  /** Told when `latest` passes over damaged backups (they might be newer). */
  onDamaged?: (damaged: DamagedSnapshot[]) => void;
}

/**
 * Resolve "latest", a full backup id, or a unique prefix (at least 8 characters)
 * to a backup id. `latest` is the newest readable backup. Unknown → StopError
 * MISSING_MANIFEST; an ambiguous prefix → USAGE naming the candidates.
 */
export async function resolveBackupId(repo: SealedObjects, ref: string, opts: ResolveOptions = {}): Promise<string> {
  const ids = await listSnapshotIds(repo);
  if (ref === 'latest') {
    if (ids.length === 0) throw missing('latest', 'the repository holds no backups yet');
    const { snapshots, damaged } = await scanSnapshots(repo);
    if (damaged.length > 0) opts.onDamaged?.(damaged);
    const newest = snapshots[snapshots.length - 1];
    if (newest === undefined) {
      throw new StopError('MISSING_MANIFEST', 'latest: every backup in this repository is damaged', {
        hint: `${describeDamaged(damaged, 'none can be restored')}; or restore the repository's snapshots/ from a copy`,
      });
    }
    return newest.backupId;
  }
  if (ids.includes(ref)) return ref;
  if (!BACKUP_REF.test(ref)) {
    throw new FoleBackupError('USAGE', `${printable(ref, 60)} does not name a backup`, {
      hint:
        'name a backup by `latest`, its full id, or a unique prefix of at least 8 characters of it (0-9, ' +
        'a-f, -), as `fole-backup list` shows them',
    });
  }
  const matches = ids.filter((id) => id.startsWith(ref));
  if (matches.length === 1) return matches[0] as string;
  if (matches.length > 1) {
    // nothing was about to happen yet: the user names the backup again, from the candidates listed
    const more = matches.length > 10 ? `, … (${matches.length - 10} more)` : '';
    throw new FoleBackupError('USAGE', `backup id prefix ${ref} matches ${matches.length} backups`, {
      hint: `name one by more of its id: ${matches.slice(0, 10).join(', ')}${more}`,
    });
  }
  throw missing(printable(ref, 60), 'no such backup in this repository');
}
