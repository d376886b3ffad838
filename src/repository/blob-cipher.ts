/**
 * The capability to seal and open a repository's blobs and read its pack
 * headers, without the key in sight: the repository makes one
 * (Repository.blobCipher), and worker threads get theirs through toWorker() and
 * BlobCipher.fromWorker(). Code that seals or opens blobs — the pools, the
 * workers — holds a BlobCipher, never key bytes, and cannot seal or open
 * anything but blobs and pack headers with it. What it writes is exactly what
 * the repository writes itself (docs/REPOSITORY_FORMAT.md): AES-256-GCM with
 * the master key, associated data binding a blob to its type and id.
 */
import { KEY_BYTES, sealInto } from '../crypto/aead.js';
import { FoleBackupError } from '../errors.js';
import { AAD, type BlobType } from './format.js';
import { openBlob, openBlobPacked } from './open-blob.js';
import { type PackedBlob, parsePackHeader } from './pack.js';

declare const opaque: unique symbol;

/**
 * A BlobCipher on its way to a worker thread (in workerData): structured-
 * cloneable, with nothing in it to read; BlobCipher.fromWorker() turns it back.
 */
export interface BlobCipherForWorker {
  readonly [opaque]: true;
}

interface Carried {
  blobKey: Uint8Array;
}

const ID_BYTES = 32;

export class BlobCipher {
  readonly #key: Buffer;
  /** Associated data per blob type, rewritten for each blob sealed (sealing never awaits, so one each is enough). */
  readonly #aad = new Map<BlobType, Buffer>();

  /** `key`: the repository's master encryption key (copied). Only the repository makes one from key bytes. */
  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new FoleBackupError('INTERNAL', `blob cipher: a key is ${KEY_BYTES} bytes`);
    // a buffer of its own, never a slice of Node's shared pool next to other data
    this.#key = Buffer.alloc(KEY_BYTES);
    this.#key.set(key);
  }

  /** The cipher given to a worker with toWorker(); INTERNAL when `value` is not one. */
  static fromWorker(value: BlobCipherForWorker): BlobCipher {
    const key = (value as unknown as Partial<Carried>).blobKey;
    if (!(key instanceof Uint8Array)) throw new FoleBackupError('INTERNAL', 'blob cipher: not one made by toWorker()');
    return new BlobCipher(key);
  }

  /** This cipher as a value a worker thread can be started with (it is copied there, not shared). */
  toWorker(): BlobCipherForWorker {
    // a copy of exactly the key: structured clone copies a view's whole underlying buffer
    const carried: Carried = { blobKey: new Uint8Array(this.#key) };
    return carried as unknown as BlobCipherForWorker;
  }

  /**
   * Decrypt, decompress and verify one blob from its stored bytes (see
   * open-blob.ts): CHECKSUM_MISMATCH when the tag or, with `checkId`, the
   * SHA-256 of the plaintext does not match the id. `into`: where the plaintext may go (openBlob).
   */
  open(
    b: Pick<PackedBlob, 'id' | 'type' | 'rawLength' | 'compression'>,
    packName: string,
    stored: Uint8Array,
    checkId = true,
    into?: Uint8Array,
  ): Buffer {
    return openBlob(this.#key, b, packName, stored, checkId, into);
  }

  /** open(), also giving the blob's bytes as stored before encryption (see openBlobPacked), id always checked. */
  openPacked(
    b: Pick<PackedBlob, 'id' | 'type' | 'rawLength' | 'compression'>,
    packName: string,
    stored: Uint8Array,
  ): { plain: Buffer; packed: Buffer } {
    return openBlobPacked(this.#key, b, packName, stored);
  }

  /**
   * Seal blob `id` of `type` (its bytes as stored before encryption: compressed
   * or not) into `out` at `offset`, which must have room for
   * plaintext.length + SEAL_OVERHEAD bytes. Returns the sealed length.
   */
  sealInto(type: BlobType, id: string, plaintext: Uint8Array, out: Uint8Array, offset: number): number {
    let aad = this.#aad.get(type);
    if (aad === undefined) {
      aad = AAD.blob(type, Buffer.alloc(ID_BYTES));
      this.#aad.set(type, aad);
    }
    if (id.length !== 2 * ID_BYTES || aad.write(id, 1, 'hex') !== ID_BYTES)
      throw new FoleBackupError('INTERNAL', `blob cipher: ${id.slice(0, 12)} is not a blob id`);
    return sealInto(this.#key, plaintext, aad, out, offset);
  }

  /** Parse the header of a whole pack's bytes (see src/repository/pack.ts). */
  readPackHeader(pack: Buffer, name: string): PackedBlob[] {
    return parsePackHeader(this.#key, pack, pack.length, name);
  }
}
