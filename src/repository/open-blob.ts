/**
 * Opening one stored blob: decrypt (AEAD, bound to the blob's type and id),
 * decompress, and check the plaintext against its id. A plain function of the
 * key, so worker threads (src/restore/restore-worker.ts) open blobs exactly as
 * Repository.openBlob does.
 */
import { open } from '../crypto/aead.js';
import { sha256Hex } from '../crypto/hash.js';
import { StopError } from '../errors.js';
import { decompress } from './compress.js';
import { AAD } from './format.js';
import type { PackedBlob } from './pack.js';

/** What opening a blob needs to know of it. */
type BlobFields = Pick<PackedBlob, 'id' | 'type' | 'rawLength' | 'compression'>;

/**
 * Decrypt, decompress and verify one blob from its stored bytes (`stored` is
 * exactly the blob's sealed bytes). CHECKSUM_MISMATCH when the AEAD tag or the
 * SHA-256 of the plaintext does not match the id; REPO_CORRUPT when it does not
 * decompress to its recorded length.
 *
 * `checkId: false` skips the SHA-256 of the plaintext, for a caller that hashes
 * every byte of it again anyway (restore, for a chunk that only goes into files
 * read back and hashed whole): the AEAD tag, bound to the id, is still checked.
 */
export function openBlob(key: Uint8Array, b: BlobFields, packName: string, stored: Uint8Array, checkId = true): Buffer {
  return openBlobPacked(key, b, packName, stored, checkId).plain;
}

/**
 * openBlob, also giving the bytes as they were before encryption (compressed as `b.compression` says): what a
 * copy seals again with another key, already checked, without compressing it a second time.
 */
export function openBlobPacked(key: Uint8Array, b: BlobFields, packName: string, stored: Uint8Array, checkId = true) {
  const what = `blob ${b.id.slice(0, 12)} in pack ${packName.slice(0, 12)}`;
  const packed = open(key, stored, what, AAD.blob(b.type, Buffer.from(b.id, 'hex')));
  const plain = decompress(packed, b.compression, b.rawLength, what);
  if (checkId && sha256Hex(plain) !== b.id) {
    throw new StopError('CHECKSUM_MISMATCH', `${what}: content does not match its SHA-256`, {
      hint: 'the repository is damaged; run `fole-backup check --read-data`',
    });
  }
  return { plain, packed };
}
