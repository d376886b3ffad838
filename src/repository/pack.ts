/**
 * Pack files: many encrypted blobs in one object, so a million 4 KB tiles are
 * not a million objects.
 *
 *   blob_0 | blob_1 | ... | blob_n-1 | header | u32le(len(header))
 *
 * Each blob is seal(masterKey, maybeCompressed(plaintext), aad = type || id).
 * The header is seal(masterKey, n × entry, aad = "fole-pack-header") with a
 * 42-byte entry per blob: u8 type, u8 compression, u32le sealed length,
 * u32le raw length, 32-byte id (SHA-256 of the plaintext). Offsets are implicit:
 * blobs follow each other from offset 0. A pack's name is the SHA-256 of all its
 * bytes, so damage is detectable without the key.
 */
import { open, seal, SEAL_OVERHEAD } from '../crypto/aead.js';
import { createHash } from 'node:crypto';
import { FoleBackupError } from '../errors.js';
import { COMPRESSION_NONE, COMPRESSION_ZSTD } from './compress.js';
import { AAD, BLOB_TYPE_CODE, BLOB_TYPE_OF_CODE, type BlobType } from './format.js';

export const HEADER_ENTRY_BYTES = 42;

/** Where a blob lives: what the index records. */
export interface PackedBlob {
  id: string;
  type: BlobType;
  offset: number;
  length: number;
  rawLength: number;
  compression: number;
}

/** A canonical digest of a pack's blob layout (order-independent): to compare a header with an index's view. */
export function layoutDigest(blobs: readonly PackedBlob[]): string {
  const h = createHash('sha256');
  for (const b of [...blobs].sort((x, y) => x.offset - y.offset)) {
    h.update(`${b.id} ${b.type} ${b.offset} ${b.length} ${b.rawLength} ${b.compression}\n`);
  }
  return h.digest('hex');
}

/**
 * Collects sealed blobs until the pack is finished. Their bytes stay here until taken (takeParts: a pack written
 * to its object as it fills) or until finish() hands them over with the header; the pack's name, the SHA-256 of
 * all its bytes, is hashed as they leave.
 */
export class PackBuilder {
  private parts: Buffer[] = [];
  private readonly entries: PackedBlob[] = [];
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private kept = 0;

  get size(): number {
    return this.bytes;
  }

  get count(): number {
    return this.entries.length;
  }

  /** Bytes added and not yet taken. */
  get untaken(): number {
    return this.kept;
  }

  /** Append an already sealed blob. */
  add(id: string, type: BlobType, sealed: Buffer, rawLength: number, compression: number): void {
    this.entries.push({ id, type, offset: this.bytes, length: sealed.length, rawLength, compression });
    // blobs sealed together arrive as neighbouring views of one buffer: keep them one part
    const last = this.parts[this.parts.length - 1];
    if (last !== undefined && last.buffer === sealed.buffer && last.byteOffset + last.length === sealed.byteOffset) {
      this.parts[this.parts.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + sealed.length);
    } else {
      this.parts.push(sealed);
    }
    this.bytes += sealed.length;
    this.kept += sealed.length;
  }

  /** The bytes added since the last take, in order: the caller writes them where the pack goes. */
  takeParts(): Buffer[] {
    const parts = this.parts;
    for (const p of parts) this.hash.update(p);
    this.parts = [];
    this.kept = 0;
    return parts;
  }

  /**
   * Seal the header and return the rest of the pack's bytes (the parts not taken, the header and its length, in
   * order: never copied into one buffer), its size, its name and its entries.
   */
  finish(key: Uint8Array): { name: string; parts: Buffer[]; size: number; blobs: PackedBlob[] } {
    const header = Buffer.alloc(this.entries.length * HEADER_ENTRY_BYTES);
    this.entries.forEach((e, i) => {
      const o = i * HEADER_ENTRY_BYTES;
      header.writeUInt8(BLOB_TYPE_CODE[e.type], o);
      header.writeUInt8(e.compression, o + 1);
      header.writeUInt32LE(e.length, o + 2);
      header.writeUInt32LE(e.rawLength, o + 6);
      header.write(e.id, o + 10, 32, 'hex');
    });
    const sealedHeader = seal(key, header, AAD.packHeader);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(sealedHeader.length, 0);
    const parts = [...this.takeParts(), sealedHeader, trailer];
    this.hash.update(sealedHeader);
    this.hash.update(trailer);
    return {
      name: this.hash.digest('hex'),
      parts,
      size: this.bytes + sealedHeader.length + trailer.length,
      blobs: this.entries,
    };
  }
}

/**
 * Parse a pack's header from the pack's tail. `tail` must be the last bytes of
 * the pack (at least the header and trailer); `packSize` is the whole size.
 */
export function parsePackHeader(key: Uint8Array, tail: Buffer, packSize: number, packName: string): PackedBlob[] {
  if (tail.length < 4) throw corrupt(packName, 'too short');
  const headerLen = tail.readUInt32LE(tail.length - 4);
  if (headerLen + 4 > tail.length || headerLen + 4 > packSize) throw corrupt(packName, 'header length out of range');
  const sealedHeader = tail.subarray(tail.length - 4 - headerLen, tail.length - 4);
  const header = open(key, sealedHeader, `header of pack ${packName}`, AAD.packHeader);
  if (header.length % HEADER_ENTRY_BYTES !== 0) throw corrupt(packName, 'header size');
  const blobs: PackedBlob[] = [];
  let offset = 0;
  const dataEnd = packSize - 4 - headerLen;
  for (let o = 0; o < header.length; o += HEADER_ENTRY_BYTES) {
    const type = BLOB_TYPE_OF_CODE[header.readUInt8(o)];
    if (type === undefined) throw corrupt(packName, 'unknown blob type');
    const compression = header.readUInt8(o + 1);
    if (compression !== COMPRESSION_NONE && compression !== COMPRESSION_ZSTD)
      throw corrupt(packName, 'unknown compression');
    const length = header.readUInt32LE(o + 2);
    // every sealed blob carries a nonce and a tag
    if (length < SEAL_OVERHEAD) throw corrupt(packName, 'blob shorter than its encryption overhead');
    blobs.push({
      type,
      compression,
      length,
      rawLength: header.readUInt32LE(o + 6),
      id: header.toString('hex', o + 10, o + 42),
      offset,
    });
    offset += length;
  }
  if (offset !== dataEnd) throw corrupt(packName, 'blob lengths disagree with the pack size');
  return blobs;
}

function corrupt(pack: string, what: string): FoleBackupError {
  return new FoleBackupError('REPO_CORRUPT', `pack ${pack}: ${what}`, {
    hint: 'run `fole-backup check --read-data` to find every damaged object',
  });
}
