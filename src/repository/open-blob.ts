/**
 * Opening one stored blob: decrypt (AEAD, bound to the blob's type and id),
 * decompress, and check the plaintext against its id. A plain function of the
 * key, so worker threads (src/restore/restore-worker.ts) open blobs exactly as
 * Repository.openBlob does.
 */
import { open, openInto, SEAL_OVERHEAD } from '../crypto/aead.js';
import { sha256Hex } from '../crypto/hash.js';
import { StopError } from '../errors.js';
import { COMPRESSION_ZSTD, decompress } from './compress.js';
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
 *
 * `into`: where a compressed blob's plaintext may go (see decompress): the result may then view it, and is good
 * only until the caller's next use of `into`.
 */
export function openBlob(
  key: Uint8Array,
  b: BlobFields,
  packName: string,
  stored: Uint8Array,
  checkId = true,
  into?: Uint8Array,
): Buffer {
  if (b.compression !== COMPRESSION_ZSTD) return openBlobPacked(key, b, packName, stored, checkId).plain;
  // the compressed bytes live only until they are decompressed: one buffer per thread holds them
  const what = blobWhat(b, packName);
  const packed = openInto(key, stored, what, AAD.blob(b.type, Buffer.from(b.id, 'hex')), scratchFor(stored.length));
  return checked(decompress(packed, b.compression, b.rawLength, what, into), b, what, checkId);
}

let scratch = Buffer.alloc(0);

function scratchFor(sealedLength: number): Buffer {
  const n = sealedLength - SEAL_OVERHEAD;
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, 2 * scratch.length));
  return scratch;
}

const blobWhat = (b: BlobFields, packName: string): string =>
  `blob ${b.id.slice(0, 12)} in pack ${packName.slice(0, 12)}`;

function checked(plain: Buffer, b: BlobFields, what: string, checkId: boolean): Buffer {
  if (checkId && sha256Hex(plain) !== b.id) {
    throw new StopError('CHECKSUM_MISMATCH', `${what}: content does not match its SHA-256`, {
      hint: 'the repository is damaged; run `fole-backup check --read-data`',
    });
  }
  return plain;
}

/**
 * openBlob, also giving the bytes as they were before encryption (compressed as `b.compression` says): what a
 * copy seals again with another key, already checked, without compressing it a second time.
 */
export function openBlobPacked(key: Uint8Array, b: BlobFields, packName: string, stored: Uint8Array, checkId = true) {
  const what = blobWhat(b, packName);
  const packed = open(key, stored, what, AAD.blob(b.type, Buffer.from(b.id, 'hex')));
  const plain = checked(decompress(packed, b.compression, b.rawLength, what), b, what, checkId);
  return { plain, packed };
}
