/**
 * The in-memory index: blob id → (pack, offset, length). Built from every index
 * file at open, extended as packs are written. Entries live in growable typed
 * arrays keyed by a Map of id → slot, so a million blobs cost tens of MB, not
 * a million objects.
 *
 * Index files (index/<sha256 of stored bytes>) are seal(zstd(JSON)) of
 * `{ packs: [{ id, blobs: [[id, type, offset, length, rawLength, compression], …] }] }`
 * and are written only after the packs they describe are durable.
 */
import { FoleBackupError } from '../errors.js';
import { HEX64 } from '../crypto/hash.js';
import { COMPRESSION_NONE, COMPRESSION_ZSTD } from './compress.js';
import { BLOB_TYPE_CODE, BLOB_TYPE_OF_CODE, type BlobType } from './format.js';
import type { PackedBlob } from './pack.js';

export interface IndexEntry extends PackedBlob {
  pack: string;
}

export interface IndexFileData {
  packs: { id: string; blobs: [string, number, number, number, number, number][] }[];
}

export class MasterIndex {
  private readonly slots = new Map<string, number>();
  private readonly packNames: string[] = [];
  private readonly packSlot = new Map<string, number>();
  private pack = new Uint32Array(1024);
  private offset = new Uint32Array(1024);
  private length = new Uint32Array(1024);
  private raw = new Uint32Array(1024);
  private meta = new Uint8Array(1024);
  private n = 0;

  get size(): number {
    return this.n;
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  get(id: string): IndexEntry | undefined {
    const s = this.slots.get(id);
    if (s === undefined) return undefined;
    return this.entryAt(s, id);
  }

  /** Record a pack's blobs. A blob already indexed elsewhere keeps its first location. */
  addPack(packName: string, blobs: readonly PackedBlob[]): void {
    let p = this.packSlot.get(packName);
    if (p === undefined) {
      p = this.packNames.length;
      this.packNames.push(packName);
      this.packSlot.set(packName, p);
    }
    for (const b of blobs) {
      if (this.slots.has(b.id)) continue;
      if (this.n === this.pack.length) this.grow();
      const s = this.n++;
      this.pack[s] = p;
      this.offset[s] = b.offset;
      this.length[s] = b.length;
      this.raw[s] = b.rawLength;
      this.meta[s] = (BLOB_TYPE_CODE[b.type] << 4) | (b.compression & 0x0f);
      this.slots.set(b.id, s);
    }
  }

  /** Every pack name the index knows. */
  packs(): string[] {
    return [...this.packNames];
  }

  *entries(): Generator<IndexEntry> {
    for (const [id, s] of this.slots) yield this.entryAt(s, id);
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

  private grow(): void {
    const cap = this.pack.length * 2;
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

/** Validate and decode an index file's JSON; throws REPO_CORRUPT naming the file. */
export function decodeIndexFile(v: unknown, name: string): { name: string; blobs: PackedBlob[] }[] {
  const bad = (what: string): FoleBackupError =>
    new FoleBackupError('REPO_CORRUPT', `index ${name}: ${what}`, { hint: 'run `fole-backup check` for details' });
  if (typeof v !== 'object' || v === null || !Array.isArray((v as IndexFileData).packs)) throw bad('not an index');
  const out: { name: string; blobs: PackedBlob[] }[] = [];
  // index loops, not map(): map skips the holes of a sparse array and would hand them on
  const packs = (v as { packs: unknown[] }).packs;
  for (let i = 0; i < packs.length; i++) {
    const p = packs[i] as { id?: unknown; blobs?: unknown } | null | undefined;
    if (typeof p !== 'object' || p === null || typeof p.id !== 'string' || !HEX64.test(p.id) || !Array.isArray(p.blobs)) {
      throw bad('malformed pack entry');
    }
    const blobs: PackedBlob[] = [];
    const list = p.blobs as unknown[];
    for (let j = 0; j < list.length; j++) {
      const b = list[j];
      if (!Array.isArray(b) || b.length !== 6) throw bad('malformed blob entry');
      const [id, type, offset, length, rawLength, compression] = b as unknown[];
      // a type must be an array index, not any key ("length", "map") an array happens to have
      const t = Number.isInteger(type) ? BLOB_TYPE_OF_CODE[type as number] : undefined;
      if (typeof id !== 'string' || !HEX64.test(id) || t === undefined) throw bad('malformed blob entry');
      // the in-memory index holds offsets and lengths as u32 and the compression in 4 bits
      if (!isU32(offset) || !isU32(length) || !isU32(rawLength) || (compression !== COMPRESSION_NONE && compression !== COMPRESSION_ZSTD)) {
        throw bad('malformed blob entry');
      }
      blobs.push({ id, type: t, offset, length, rawLength, compression });
    }
    out.push({ name: p.id, blobs });
  }
  return out;
}

const isU32 = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0 && (n as number) <= 0xffffffff;

export type { BlobType };
