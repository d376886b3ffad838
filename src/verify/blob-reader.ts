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
import type { Backend } from '../backend/backend.js';
import { SEAL_OVERHEAD } from '../crypto/aead.js';
import { sha256Hex } from '../crypto/hash.js';
import { FoleBackupError, StopError } from '../errors.js';
import { HEADER_ENTRY_BYTES, type PackedBlob } from '../repository/pack.js';
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
  if (b.offset + b.length > pack.length) {
    throw new StopError('CHECKSUM_MISMATCH', `blob ${short(b.id)} in pack ${short(packName)}: lies beyond the end of the pack (${pack.length} bytes)`, {
      hint: DAMAGED_HINT,
    });
  }
  return repo.openBlob(b, packName, pack.subarray(b.offset, b.offset + b.length));
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
