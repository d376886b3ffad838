/**
 * Damage records as data: their shape, their validation, and the merged view every handle reads them into
 * (DamageBook). No I/O here: damage.ts reads and writes them. The index (master-index.ts) consults a DamageBook
 * as it adds locations.
 */
import { FoleBackupError } from '../errors.js';
import { HEX64 } from '../crypto/hash.js';

export const DAMAGE_AAD = Buffer.from('fole-damage');

/** Which command found the damage. */
export type DamageSource = 'check' | 'verify' | 'repair';

/** One record as stored. */
export interface DamageRecord {
  version: 1;
  createdAt: string;
  source: DamageSource;
  /** Packs that are missing or could not be read as a whole: none of their blobs is used. */
  packs: string[];
  /** Packs found damaged (their bytes, header or some blob): a backup relies on none of their blobs. */
  damagedPacks: string[];
  /** Blobs found damaged in packs whose other blobs are sound: [pack, blob id]. */
  blobs: [string, string][];
  /** Blob ids no sound copy of was left when `repair` moved the damaged packs aside. */
  lost: string[];
}

/** The most entries of each kind one record may hold: a record is read whole into memory. */
const MAX_ENTRIES = 5_000_000;

/** Validate a record's JSON; REPO_CORRUPT naming the object otherwise. */
export function checkDamageRecord(v: unknown, name: string): DamageRecord {
  const bad = (what: string): FoleBackupError =>
    new FoleBackupError('REPO_CORRUPT', `damage/${name}: ${what}`, { hint: 'run `fole-backup check` for details' });
  if (typeof v !== 'object' || v === null) throw bad('not a damage record');
  const r = v as Partial<DamageRecord>;
  if (r.version !== 1) throw bad('unknown version');
  if (typeof r.createdAt !== 'string' || Number.isNaN(Date.parse(r.createdAt))) throw bad('no valid createdAt');
  if (r.source !== 'check' && r.source !== 'verify' && r.source !== 'repair') throw bad('unknown source');
  const ids = (a: unknown): a is string[] =>
    Array.isArray(a) && a.length <= MAX_ENTRIES && a.every((x) => typeof x === 'string' && HEX64.test(x));
  if (!ids(r.packs) || !ids(r.damagedPacks) || !ids(r.lost)) throw bad('malformed pack or blob list');
  if (
    !Array.isArray(r.blobs) ||
    r.blobs.length > MAX_ENTRIES ||
    !r.blobs.every((b) => Array.isArray(b) && b.length === 2 && ids(b))
  ) {
    throw bad('malformed blob list');
  }
  return r as DamageRecord;
}

/** Where a recorded location came from, for messages. */
export interface DamageNote {
  source: DamageSource;
  createdAt: string;
}

/** Every record of a repository, merged: what the index leaves out and which blobs are known lost. */
export class DamageBook {
  /** Packs left out whole. */
  private readonly packs = new Map<string, DamageNote>();
  /** Per pack, the blobs left out of it. */
  private readonly blobs = new Map<string, Map<string, DamageNote>>();
  private readonly lostBlobs = new Map<string, DamageNote>();
  /** Every pack a record names in any way: no backup relies on it. */
  private readonly avoid = new Set<string>();

  constructor(readonly records: ReadonlyMap<string, DamageRecord> = new Map()) {
    for (const r of records.values()) {
      const note = { source: r.source, createdAt: r.createdAt };
      for (const p of r.packs) this.packs.set(p, note);
      for (const p of [...r.packs, ...r.damagedPacks]) this.avoid.add(p);
      for (const [p, b] of r.blobs) {
        const m = this.blobs.get(p) ?? new Map<string, DamageNote>();
        m.set(b, note);
        this.blobs.set(p, m);
        this.avoid.add(p);
      }
      for (const b of r.lost) this.lostBlobs.set(b, note);
    }
  }

  get empty(): boolean {
    return this.avoid.size === 0 && this.lostBlobs.size === 0;
  }

  /** Whether a record names `pack` at all: no backup relies on it, and the index prefers any other copy. */
  avoided(pack: string): boolean {
    return this.avoid.has(pack);
  }

  /** Whether anything in `pack` is recorded (the index asks this once per pack, then `excluded` per blob). */
  touches(pack: string): boolean {
    return this.packs.has(pack) || this.blobs.has(pack);
  }

  /** The record that leaves `pack` out whole, if one does. */
  wholePack(pack: string): DamageNote | undefined {
    return this.packs.get(pack);
  }

  /** The record that leaves blob `id` in `pack` out, if one does. */
  excluded(pack: string, id: string): DamageNote | undefined {
    return this.packs.get(pack) ?? this.blobs.get(pack)?.get(id);
  }

  /** Packs any record names. */
  recordedPacks(): Set<string> {
    return new Set(this.avoid);
  }

  /** The record that says no sound copy of `id` was left, if one does. */
  lost(id: string): DamageNote | undefined {
    return this.lostBlobs.get(id);
  }

  /** Every blob recorded lost. */
  lostIds(): string[] {
    return [...this.lostBlobs.keys()];
  }
}

/** "check on 2026-12-06T10:00:00.000Z": where a note came from, for messages. */
export function describeNote(n: DamageNote): string {
  return `${n.source} on ${n.createdAt}`;
}
