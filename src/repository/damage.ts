/**
 * Damage records: what `check`, `verify` and `repair` found wrong with stored data, kept in the repository
 * (damage/<SHA-256 of the stored bytes>, sealed like an index file) so that every later command acts on it:
 *
 *   - a recorded location (a whole pack, or one blob in a pack) is left out of the index every handle loads, so a
 *     backup finds the blob absent and stores it again from the source, and a restore that needs it is refused
 *     naming the record rather than reading bytes known to be bad;
 *   - a damaged pack's blobs that still open are read as before, but a backup stores them again elsewhere rather
 *     than rely on that pack, and the index prefers any other copy: so the next backup, and every old one whose
 *     blobs it stored again, no longer needs the damaged pack at all;
 *   - the blobs `repair` found no sound copy of are recorded as lost: `check` reports the backups that need them
 *     as known damage (what a backup of the same content heals), not as new damage;
 *   - prune refuses while a recorded pack is still in the repository: `repair` deals with it first.
 *
 * Records are only added, by whoever finds damage; `repair` replaces them all with one of its own once the
 * damaged packs are moved aside. Why not fix the index in place: a check runs beside backups under a shared lock
 * and may not rewrite what they read, and a record written before anything else changes is what makes a repair
 * killed at any instant harmless (docs/REPAIR.md).
 */
import { FoleBackupError } from '../errors.js';
import type { SealedObjects } from './slices.js';
import { checkDamageRecord, DAMAGE_AAD, type DamageBook, type DamageRecord, type DamageSource } from './damage-book.js';

/** Save a record; returns its name. */
export async function saveDamageRecord(repo: SealedObjects, r: Omit<DamageRecord, 'version'>): Promise<string> {
  return repo.saveJson('damage', { version: 1, ...r } satisfies DamageRecord, DAMAGE_AAD);
}

/** What a check or verify found: packs missing, packs damaged, blobs that do not open (with their pack). */
export interface FoundDamage {
  packs: Iterable<string>;
  damagedPacks: Iterable<string>;
  blobs: Iterable<[string, string]>;
}

/**
 * Record what was found and no record of `book` names yet; returns the new record's name, or undefined when
 * there was nothing new (a second check of the same damage writes nothing).
 */
export async function recordNewDamage(
  repo: SealedObjects,
  book: DamageBook,
  found: FoundDamage,
  source: Exclude<DamageSource, 'repair'>,
): Promise<string | undefined> {
  const packs = [...new Set(found.packs)].filter((p) => book.wholePack(p) === undefined).sort();
  const whole = new Set(packs);
  const damagedPacks = [...new Set(found.damagedPacks)].filter((p) => !whole.has(p) && !book.avoided(p)).sort();
  const blobs = [...found.blobs]
    .filter(([p, b]) => !whole.has(p) && book.excluded(p, b) === undefined)
    .sort((x, y) => (x[0] === y[0] ? (x[1] < y[1] ? -1 : 1) : x[0] < y[0] ? -1 : 1));
  if (packs.length === 0 && damagedPacks.length === 0 && blobs.length === 0) return undefined;
  return saveDamageRecord(repo, { createdAt: new Date().toISOString(), source, packs, damagedPacks, blobs, lost: [] });
}

/** Every record in the repository, by name (REPO_CORRUPT or CHECKSUM_MISMATCH naming one that cannot be read). */
export async function loadDamageRecords(
  repo: SealedObjects,
  /** Given, a record that does not decrypt or validate is passed here and skipped instead of thrown. */
  onUnreadable?: (name: string) => void,
): Promise<Map<string, DamageRecord>> {
  const names: string[] = [];
  try {
    for await (const o of repo.backend.list('damage')) names.push(o.name);
  } catch (err) {
    // a server of an older build knows no damage/ folder: then there are no records in it
    if (!(err instanceof FoleBackupError && err.code === 'NOT_FOUND')) throw err;
  }
  const out = new Map<string, DamageRecord>();
  for (const name of names.sort()) {
    try {
      out.set(name, checkDamageRecord(await repo.loadJson('damage', name, DAMAGE_AAD), name));
    } catch (err) {
      const damaged =
        err instanceof FoleBackupError && (err.code === 'REPO_CORRUPT' || err.code === 'CHECKSUM_MISMATCH');
      if (!damaged || onUnreadable === undefined) throw err;
      onUnreadable(name);
    }
  }
  return out;
}
