/**
 * The in-memory index: blob id → (pack, offset, length). Built from every index
 * file at open, extended as packs are written. Entries, ids included (as bytes),
 * live in growable typed arrays with a hash table of their own, so a million
 * blobs cost about 70 MB and not a single heap object each.
 *
 * Index files (index/<sha256 of stored bytes>) are seal(zstd(JSON)) of
 * `{ packs: [{ id, blobs: [[id, type, offset, length, rawLength, compression], …] }] }`
 * and are written only after the packs they describe are durable.
 */
import { randomBytes } from 'node:crypto';
import { FoleBackupError } from '../errors.js';
import { HEX64 } from '../crypto/hash.js';
import { countIndexBlobs, hexInto, readIndexBlobs } from './index-bytes.js';
import { COMPRESSION_NONE, COMPRESSION_ZSTD } from './compress.js';
import { BLOB_TYPE_CODE, BLOB_TYPE_OF_CODE, type BlobType } from './format.js';
import type { PackedBlob } from './pack.js';
import type { DamageBook, DamageNote } from './damage-book.js';

export interface IndexEntry extends PackedBlob {
  pack: string;
}

export interface IndexFileData {
  packs: { id: string; blobs: [string, number, number, number, number, number][] }[];
}

/** Bytes of a blob id (SHA-256), and the 32-bit words they are compared as. */
const ID_BYTES = 32;
const ID_WORDS = ID_BYTES / 4;
/** Seeds the table's hash: a hostile index file cannot pick ids that all land in one place. */
const SEED = randomBytes(4).readUInt32LE(0);

/** Hash of the id at words[base, base + ID_WORDS): every word mixed in, seeded. */
function hashOf(words: Uint32Array, base: number): number {
  let h = SEED;
  for (let k = 0; k < ID_WORDS; k++) {
    h = Math.imul(h ^ (words[base + k] ?? 0), 0x9e3779b1);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** Whether the id at words[base, base + ID_WORDS) is `id`. */
function sameId(words: Uint32Array, base: number, id: Uint32Array): boolean {
  for (let k = 0; k < ID_WORDS; k++) if (words[base + k] !== id[k]) return false;
  return true;
}

export class MasterIndex {
  /**
   * Blob ids as bytes, seen as 32-bit words, slot after slot (slot s at s * ID_WORDS), and an
   * open-addressing table (linear probing) of slot + 1, 0 for empty. A Map of hex
   * strings cost ~110 bytes a blob and one heap object each, which every major
   * garbage collection walks; this costs ~70 bytes a blob and no object.
   */
  private words = new Uint32Array(1024 * ID_WORDS);
  private table = new Int32Array(2048);
  private readonly packNames: string[] = [];
  private readonly packSlot = new Map<string, number>();
  private pack = new Uint32Array(1024);
  private offset = new Uint32Array(1024);
  private length = new Uint32Array(1024);
  private raw = new Uint32Array(1024);
  private meta = new Uint8Array(1024);
  private n = 0;
  /** The id being looked up, as bytes and as words (one buffer reused: a lookup allocates nothing). */
  private readonly probeBytes = Buffer.alloc(ID_BYTES);
  private readonly probe = new Uint32Array(this.probeBytes.buffer, this.probeBytes.byteOffset, ID_WORDS);

  /** Recorded damage (damage.ts): the locations it names are never added. */
  private damage: DamageBook | undefined;
  /** Slots of the packs a damage record names: any other copy of their blobs is preferred. */
  private readonly avoidSlots = new Set<number>();
  /** Blobs with a location left out because a damage record names it, and that record. */
  private readonly leftOutIds = new Map<string, DamageNote>();

  get size(): number {
    return this.n;
  }

  /**
   * Leave out, from now on, every location a damage record names, and prefer any other copy of a blob in a pack a
   * record names (call it before anything is added).
   */
  setDamage(damage: DamageBook): void {
    this.damage = damage.empty ? undefined : damage;
  }

  /** The pack of `id` when it is indexed in a pack no damage record names; undefined otherwise. */
  soundPack(id: string): string | undefined {
    const s = this.slotOf(id);
    if (s < 0) return undefined;
    const p = this.pack[s] ?? 0;
    return this.avoidSlots.has(p) ? undefined : this.packNames[p];
  }

  has(id: string): boolean {
    return this.slotOf(id) >= 0;
  }

  get(id: string): IndexEntry | undefined {
    const s = this.slotOf(id);
    if (s < 0) return undefined;
    return this.entryAt(s, id);
  }

  /** Record a pack's blobs. A blob already indexed elsewhere keeps its first location. */
  addPack(packName: string, blobs: readonly PackedBlob[]): void {
    const p = this.packSlotOf(packName);
    const damaged = this.damage?.touches(packName) === true;
    for (const b of blobs) {
      if (damaged && this.leftOut(packName, b.id)) continue;
      this.probeId(b.id);
      this.add(p, BLOB_TYPE_CODE[b.type], b.offset, b.length, b.rawLength, b.compression);
    }
  }

  /** Whether a damage record names this location (and so it is not added). */
  private leftOut(pack: string, id: string): boolean {
    const note = this.damage?.excluded(pack, id);
    if (note === undefined) return false;
    this.leftOutIds.set(id, note);
    return true;
  }

  /** The damage record that left a location of `id` out, if one did (it may still be indexed elsewhere). */
  leftOutBy(id: string): DamageNote | undefined {
    return this.leftOutIds.get(id);
  }

  /**
   * Validate an index file's JSON (REPO_CORRUPT naming the file, and then
   * nothing of it is added) and add its packs — as decodeIndexFile + addPack,
   * without an object per blob (measured: the default preset's index loads
   * in ~205 ms instead of ~260, mostly less garbage collection).
   */
  addIndexFile(v: unknown, name: string): void {
    const packs = checkIndexFile(v, name);
    this.reserve(packs.reduce((n, pk) => n + pk.blobs.length, 0));
    for (const pk of packs) {
      const p = this.packSlotOf(pk.id);
      const damaged = this.damage?.touches(pk.id) === true;
      for (const b of pk.blobs) {
        if (damaged && this.leftOut(pk.id, b[0])) continue;
        this.probeId(b[0]);
        this.add(p, b[1], b[2], b[3], b[4], b[5]);
      }
    }
  }

  /**
   * As addIndexFile, from the index file's plaintext bytes: read straight into the
   * typed arrays when they are in our writer's form (index-bytes.ts: no object per
   * blob), else parsed as JSON and checked by addIndexFile. REPO_CORRUPT naming the
   * file when they are neither; then nothing of it is added.
   */
  addIndexBytes(bytes: Buffer, name: string): void {
    const count = countIndexBlobs(bytes);
    if (count === undefined) {
      this.addIndexFile(parseIndexJson(bytes, name), name);
      return;
    }
    this.reserve(count);
    let p = 0;
    let packName = '';
    let damaged = false;
    readIndexBlobs(bytes, {
      pack: (name) => {
        packName = name;
        p = this.packSlotOf(name);
        damaged = this.damage?.touches(name) === true;
      },
      blob: (b) => {
        if (damaged && this.leftOut(packName, bytes.toString('latin1', b.idAt, b.idAt + 64))) return;
        hexInto(bytes, b.idAt, this.probeBytes);
        this.add(p, b.typeCode, b.offset, b.length, b.rawLength, b.compression);
      },
    });
  }

  private packSlotOf(packName: string): number {
    let p = this.packSlot.get(packName);
    if (p === undefined) {
      p = this.packNames.length;
      this.packNames.push(packName);
      this.packSlot.set(packName, p);
      if (this.damage?.avoided(packName) === true) this.avoidSlots.add(p);
    }
    return p;
  }

  /** Put `id` into the probe, for add; an id that is not 64 hex digits is an internal error (callers checked it). */
  private probeId(id: string): void {
    if (!this.parse(id)) throw new FoleBackupError('INTERNAL', `blob id ${JSON.stringify(id)} is not 64 hex digits`);
  }

  /** The blob whose id is in the probe, in pack slot `p` (a blob already indexed keeps its first location). */
  private add(
    p: number,
    typeCode: number,
    offset: number,
    length: number,
    rawLength: number,
    compression: number,
  ): void {
    const at = this.find();
    const found = this.table[at] ?? 0;
    let s: number;
    if (found !== 0) {
      // a blob already indexed keeps its first location, unless that one is in a damaged pack and this is not
      s = found - 1;
      if (this.avoidSlots.size === 0 || !this.avoidSlots.has(this.pack[s] ?? 0) || this.avoidSlots.has(p)) return;
    } else {
      if (this.n === this.pack.length) this.grow();
      s = this.n++;
      this.words.set(this.probe, s * ID_WORDS);
    }
    this.pack[s] = p;
    this.offset[s] = offset;
    this.length[s] = length;
    this.raw[s] = rawLength;
    this.meta[s] = (typeCode << 4) | (compression & 0x0f);
    if (found !== 0) return;
    this.table[at] = s + 1;
    // at most half full: probes stay short
    if (this.n * 2 > this.table.length) this.rehash(this.table.length * 2);
  }

  /** Every pack name the index knows. */
  packs(): string[] {
    return [...this.packNames];
  }

  /** Every blob, in the order it was added. */
  *entries(): Generator<IndexEntry> {
    for (let s = 0; s < this.n; s++)
      yield this.entryAt(s, Buffer.from(this.words.buffer, s * ID_BYTES, ID_BYTES).toString('hex'));
  }

  /** The slot of `id`, or -1. */
  private slotOf(id: string): number {
    if (!this.parse(id)) return -1;
    return (this.table[this.find()] ?? 0) - 1;
  }

  /**
   * Put `id` into the probe; false when it is not 64 hex digits. Ids are
   * compared as bytes, so capitals name the same blob; every id that reaches
   * the index (trees, index files, pack headers) was checked as lowercase
   * already, and a regular expression here would triple the cost of a lookup.
   */
  private parse(id: string): boolean {
    return id.length === ID_BYTES * 2 && this.probeBytes.write(id, 'hex') === ID_BYTES;
  }

  /** The table position of the probe's id: where it is, or the empty position where it would go. */
  private find(): number {
    const mask = this.table.length - 1;
    const q = this.probe;
    const w = this.words;
    for (let at = hashOf(q, 0) & mask; ; at = (at + 1) & mask) {
      const v = this.table[at] ?? 0;
      if (v === 0 || sameId(w, (v - 1) * ID_WORDS, q)) return at;
    }
  }

  private rehash(capacity: number): void {
    const table = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let s = 0; s < this.n; s++) {
      let at = hashOf(this.words, s * ID_WORDS) & mask;
      while (table[at] !== 0) at = (at + 1) & mask;
      table[at] = s + 1;
    }
    this.table = table;
  }

  private entryAt(s: number, id: string): IndexEntry {
    const meta = this.meta[s] ?? 0;
    return {
      id,
      pack: this.packNames[this.pack[s] ?? 0] ?? '',
      offset: this.offset[s] ?? 0,
      length: this.length[s] ?? 0,
      rawLength: this.raw[s] ?? 0,
      type: BLOB_TYPE_OF_CODE[meta >> 4] ?? 'data',
      compression: meta & 0x0f,
    };
  }

  /** Room for `extra` more blobs without growing or rehashing on the way. */
  private reserve(extra: number): void {
    const need = this.n + extra;
    if (need > this.pack.length) this.grow(Math.max(need, this.pack.length * 2));
    let cap = this.table.length;
    while (need * 2 > cap) cap *= 2;
    if (cap !== this.table.length) this.rehash(cap);
  }

  private grow(cap = this.pack.length * 2): void {
    const grow32 = (a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> => {
      const b = new Uint32Array(cap);
      b.set(a);
      return b;
    };
    this.pack = grow32(this.pack);
    this.offset = grow32(this.offset);
    this.length = grow32(this.length);
    this.raw = grow32(this.raw);
    const m = new Uint8Array(cap);
    m.set(this.meta);
    this.meta = m;
    const words = new Uint32Array(cap * ID_WORDS);
    words.set(this.words);
    this.words = words;
  }
}

export function encodeIndexFile(packs: readonly { name: string; blobs: readonly PackedBlob[] }[]): IndexFileData {
  return {
    packs: packs.map((p) => ({
      id: p.name,
      blobs: p.blobs.map((b) => [b.id, BLOB_TYPE_CODE[b.type], b.offset, b.length, b.rawLength, b.compression]),
    })),
  };
}

/** An index file's bytes as JSON; REPO_CORRUPT naming the file when they are not JSON. */
export function parseIndexJson(bytes: Buffer, name: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new FoleBackupError('REPO_CORRUPT', `index/${name}: not valid JSON`, { cause: err });
  }
}

/** A pack entry of an index file that checkIndexFile accepted. */
type CheckedPack = { id: string; blobs: [string, number, number, number, number, number][] };

/** Validate an index file's JSON, every pack and blob entry; throws REPO_CORRUPT naming the file. */
function checkIndexFile(v: unknown, name: string): CheckedPack[] {
  const bad = (what: string): FoleBackupError =>
    new FoleBackupError('REPO_CORRUPT', `index/${name}: ${what}`, { hint: 'run `fole-backup check` for details' });
  if (typeof v !== 'object' || v === null || !Array.isArray((v as IndexFileData).packs)) throw bad('not an index');
  // index loops: every slot is checked, a hole of a sparse array too (map() would skip it), so callers may use for-of
  const packs = (v as { packs: unknown[] }).packs;
  for (let i = 0; i < packs.length; i++) {
    const p = packs[i] as { id?: unknown; blobs?: unknown } | null | undefined;
    if (
      typeof p !== 'object' ||
      p === null ||
      typeof p.id !== 'string' ||
      !HEX64.test(p.id) ||
      !Array.isArray(p.blobs)
    ) {
      throw bad('malformed pack entry');
    }
    const list = p.blobs as unknown[];
    for (let j = 0; j < list.length; j++) {
      const b = list[j];
      if (!Array.isArray(b) || b.length !== 6) throw bad('malformed blob entry');
      // -0 passes every check below as 0, yet no encoder writes it and the loading path's digit parser
      // (index-bytes.ts) refuses it: refused here too, so both paths agree
      if (b.some((x) => Object.is(x, -0))) throw bad('malformed blob entry');
      const [id, type, offset, length, rawLength, compression] = b as unknown[];
      // a type must be an array index, not any key ("length", "map") an array happens to have
      const t = Number.isInteger(type) ? BLOB_TYPE_OF_CODE[type as number] : undefined;
      if (typeof id !== 'string' || !HEX64.test(id) || t === undefined) throw bad('malformed blob entry');
      // the in-memory index holds offsets and lengths as u32 and the compression in 4 bits
      if (
        !isU32(offset) ||
        !isU32(length) ||
        !isU32(rawLength) ||
        (compression !== COMPRESSION_NONE && compression !== COMPRESSION_ZSTD)
      ) {
        throw bad('malformed blob entry');
      }
    }
  }
  return packs as CheckedPack[];
}

/** Validate and decode an index file's JSON; throws REPO_CORRUPT naming the file. */
export function decodeIndexFile(v: unknown, name: string): { name: string; blobs: PackedBlob[] }[] {
  return checkIndexFile(v, name).map((p) => ({
    name: p.id,
    blobs: p.blobs.map(([id, type, offset, length, rawLength, compression]) => ({
      id,
      type: BLOB_TYPE_OF_CODE[type] as BlobType,
      offset,
      length,
      rawLength,
      compression,
    })),
  }));
}

const isU32 = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= 0xffffffff;
