/**
 * Pack bytes as verify and check see them: loading a whole pack, cutting one
 * blob out of it, and the errors a damaged pack is reported with. Plain
 * functions of their inputs, so the pack workers (pack-worker.ts) use them too.
 */
import type { Backend } from '../backend/backend.js';
import { SEAL_OVERHEAD } from '../crypto/aead.js';
import { FoleBackupError, StopError } from '../errors.js';
import { HEADER_ENTRY_BYTES, type PackedBlob } from '../repository/pack.js';

/** Bytes after a pack's last blob at the very least: a sealed one-entry header and the length trailer. */
export const MIN_PACK_TAIL = SEAL_OVERHEAD + HEADER_ENTRY_BYTES + 4;

const DAMAGED_HINT =
  'the repository is damaged; run `fole-backup check --read-data` to see every affected backup, ' +
  'and restore from another backup';

export const short = (id: string): string => id.slice(0, 12);

/** What a damaged or missing pack is reported as. */
function packError(name: string, why: string, cause?: unknown): StopError {
  return new StopError('CHECKSUM_MISMATCH', `pack ${short(name)}: ${why}`, { hint: DAMAGED_HINT, cause });
}

/** A pack whose bytes do not hash to its name. */
export function packHashError(name: string, size: number): StopError {
  return packError(name, `its ${size} bytes do not hash to its name (the pack is damaged)`);
}

/**
 * The sealed bytes of blob `b` in a pack's bytes. Throws StopError
 * CHECKSUM_MISMATCH when the pack is too short to hold it.
 */
export function blobBytesIn(
  pack: Uint8Array,
  packName: string,
  b: Pick<PackedBlob, 'id' | 'offset' | 'length'>,
): Uint8Array {
  if (b.offset + b.length > pack.length) {
    throw new StopError(
      'CHECKSUM_MISMATCH',
      `blob ${short(b.id)} in pack ${short(packName)}: lies beyond the end of the pack (${pack.length} bytes)`,
      {
        hint: DAMAGED_HINT,
      },
    );
  }
  return pack.subarray(b.offset, b.offset + b.length);
}

/** Load a whole pack; a missing one is a CHECKSUM_MISMATCH naming it. */
export async function loadPack(backend: Backend, name: string): Promise<Buffer> {
  try {
    return await backend.load({ type: 'data', name });
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND')
      throw packError(name, 'missing from the repository', err);
    throw err;
  }
}
