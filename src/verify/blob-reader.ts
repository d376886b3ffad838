/**
 * Reading blobs back for verification, and checking pack files as a whole.
 *
 * BlobReader has two modes:
 *  - whole packs (verify --read-data): a blob's pack is read in full, once
 *    while it stays in a small LRU of recent packs, and its SHA-256 compared
 *    with its name — so damage anywhere in the pack (another blob, the header,
 *    the trailer) is found, not only in the bytes a file needs. A backup is
 *    stored roughly in tree order, so reading files in tree order reads each
 *    pack about once.
 *  - ranges (verify --read-data-subset): only the blob's own bytes, through
 *    Repository.loadBlob. Sampling a few files must not read every pack.
 * Either way every blob is decrypted (AEAD), decompressed and hashed against
 * its id before it is handed out.
 */
import { randomBytes } from 'node:crypto';
import type { Backend } from '../backend/backend.js';
import { seal, SEAL_OVERHEAD } from '../crypto/aead.js';
import { sha256Hex } from '../crypto/hash.js';
import { FoleBackupError, StopError } from '../errors.js';
import { decompress } from '../repository/compress.js';
import { AAD } from '../repository/format.js';
import { HEADER_ENTRY_BYTES, parsePackHeader, type PackedBlob } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';

/** Bytes after a pack's last blob at the very least: a sealed one-entry header and the length trailer. */
export const MIN_PACK_TAIL = SEAL_OVERHEAD + HEADER_ENTRY_BYTES + 4;

const DAMAGED_HINT = 'the repository is damaged; run `fole-backup check --read-data` to see every affected backup, and restore from another backup';

export const short = (id: string): string => id.slice(0, 12);

/** What a damaged or missing pack is reported as. */
export function packError(name: string, why: string, cause?: unknown): StopError {
  return new StopError('CHECKSUM_MISMATCH', `pack ${short(name)}: ${why}`, { hint: DAMAGED_HINT, cause });
}

/**
 * Decrypt, decompress and hash one blob out of a pack's bytes. Throws
 * StopError CHECKSUM_MISMATCH (outside the pack, AEAD failure, wrong hash) or
 * REPO_CORRUPT (does not decompress).
 */
export function openBlobIn(repo: Repository, pack: Buffer, packName: string, b: PackedBlob): Buffer {
  const what = `blob ${short(b.id)} in pack ${short(packName)}`;
  if (b.offset + b.length > pack.length) {
    throw new StopError('CHECKSUM_MISMATCH', `${what}: lies beyond the end of the pack (${pack.length} bytes)`, { hint: DAMAGED_HINT });
  }
  const packed = repo.openBytes(pack.subarray(b.offset, b.offset + b.length), what, AAD.blob(b.type, Buffer.from(b.id, 'hex')));
  const plain = decompress(packed, b.compression, b.rawLength, what);
  if (sha256Hex(plain) !== b.id) {
    throw new StopError('CHECKSUM_MISMATCH', `${what}: content does not match its SHA-256`, { hint: DAMAGED_HINT });
  }
  return plain;
}

/**
 * Parse a whole pack's header with the one parser of the format (pack.ts).
 * parsePackHeader decrypts with the master key, which a Repository keeps to
 * itself; so the header is opened here with Repository.openBytes and sealed
 * again under a throwaway key of the same size — same length, same layout —
 * for parsePackHeader to open and parse. Throws CHECKSUM_MISMATCH when the
 * header does not authenticate, REPO_CORRUPT when it does not parse.
 */
export function readPackHeader(repo: Repository, pack: Buffer, name: string): PackedBlob[] {
  if (pack.length < 4) throw new FoleBackupError('REPO_CORRUPT', `pack ${short(name)}: too short for a header`);
  const headerLen = pack.readUInt32LE(pack.length - 4);
  if (headerLen + 4 > pack.length) throw new FoleBackupError('REPO_CORRUPT', `pack ${short(name)}: header length out of range`);
  const sealed = pack.subarray(pack.length - 4 - headerLen, pack.length - 4);
  const plain = repo.openBytes(sealed, `header of pack ${short(name)}`, AAD.packHeader);
  const key = randomBytes(32);
  const resealed = seal(key, plain, AAD.packHeader);
  const tail = Buffer.alloc(resealed.length + 4);
  resealed.copy(tail);
  tail.writeUInt32LE(resealed.length, resealed.length);
  return parsePackHeader(key, tail, pack.length, name);
}

/** Load a whole pack; a missing one is a CHECKSUM_MISMATCH naming it. */
export async function loadPack(backend: Backend, name: string): Promise<Buffer> {
  try {
    return await backend.load({ type: 'data', name });
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') throw packError(name, 'missing from the repository', err);
    throw err;
  }
}

export interface BlobReaderOptions {
  wholePacks: boolean;
  /** Packs kept in memory (whole-pack mode). */
  cachedPacks?: number;
  /**
   * Told once per pack read in whole-pack mode, with what is wrong with it as a
   * whole (missing, or SHA-256 not its name), or undefined if it is intact.
   */
  onPack?: (name: string, damage: FoleBackupError | undefined) => void;
}

export class BlobReader {
  /** Bytes read from the repository. */
  bytesRead = 0;
  private readonly packs = new Map<string, Promise<Buffer>>();
  private readonly seen = new Set<string>();

  constructor(
    private readonly repo: Repository,
    private readonly opts: BlobReaderOptions,
  ) {}

  /** A blob's verified plaintext. The index must be loaded. */
  async blob(id: string): Promise<Buffer> {
    const e = this.repo.index.get(id);
    if (e === undefined) {
      throw new StopError('CHECKSUM_MISMATCH', `blob ${short(id)}: not in the repository index`, { hint: DAMAGED_HINT });
    }
    if (!this.opts.wholePacks) {
      const data = await this.repo.loadBlob(id);
      this.bytesRead += e.length;
      return data;
    }
    const pack = await this.pack(e.pack);
    return openBlobIn(this.repo, pack, e.pack, e);
  }

  private pack(name: string): Promise<Buffer> {
    const cached = this.packs.get(name);
    if (cached !== undefined) {
      // most recently used goes last
      this.packs.delete(name);
      this.packs.set(name, cached);
      return cached;
    }
    const loading = this.loadAndCheck(name);
    loading.catch(() => undefined); // awaited by the caller; a cached rejection must not count as unhandled
    this.packs.set(name, loading);
    const max = Math.max(1, this.opts.cachedPacks ?? 4);
    while (this.packs.size > max) {
      const oldest = this.packs.keys().next().value as string;
      this.packs.delete(oldest);
    }
    return loading;
  }

  private async loadAndCheck(name: string): Promise<Buffer> {
    const first = !this.seen.has(name);
    this.seen.add(name);
    let bytes: Buffer;
    try {
      bytes = await loadPack(this.repo.backend, name);
    } catch (err) {
      if (first && err instanceof FoleBackupError) this.opts.onPack?.(name, err);
      throw err;
    }
    this.bytesRead += bytes.length;
    if (first) {
      const damage = sha256Hex(bytes) === name ? undefined : packError(name, `its ${bytes.length} bytes do not hash to its name (the pack is damaged)`);
      this.opts.onPack?.(name, damage);
    }
    return bytes;
  }
}
