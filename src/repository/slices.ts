/**
 * The slices of a repository that its consumers need. An entry point (backup,
 * restore, verify, check, prune, forget) takes the whole Repository; the stages
 * under it take only the slice they use, so a stage that reads cannot write,
 * one that stores blobs cannot remove objects, and none sees key material
 * (workers get a BlobCipher, src/repository/blob-cipher.ts). Repository
 * implements every slice.
 */
import type { Backend, ObjectType } from '../backend/backend.js';
import type { BlobCipher } from './blob-cipher.js';
import type { BlobType, RepositoryConfig } from './format.js';
import type { IndexEntry } from './master-index.js';
import type { PackReaders } from './pack-readers.js';
import type { SharedBytes } from './open-pack.js';

/**
 * A blob sealed elsewhere (a worker, a copy from another repository), as addSealedBlob takes it: its bytes as stored
 * and what the index records of them. `shared`: the buffer under `sealed` is wanted back (OpenPack.add).
 */
export type SealedBlobArgs = [
  type: BlobType,
  id: string,
  sealed: Buffer,
  rawLength: number,
  compression: number,
  shared?: SharedBytes,
];

/** Sealed JSON objects by type and name: the snapshot store, the locks and the stored settings. */
export interface SealedObjects {
  readonly backend: Backend;
  /** Seal a JSON value and save it; returns the object's name (given, or the SHA-256 of the stored bytes). */
  saveJson(type: ObjectType, value: unknown, aad: Uint8Array, name?: string): Promise<string>;
  /** Seal a JSON value and save it under `name` only if no object has that name (ALREADY_EXISTS otherwise). */
  createJson(type: ObjectType, name: string, value: unknown, aad: Uint8Array): Promise<void>;
  /** Load, open and parse a sealed JSON object. */
  loadJson(type: ObjectType, name: string, aad: Uint8Array): Promise<unknown>;
}

/** Where blobs are, as the index says. */
interface BlobIndex {
  get(id: string): IndexEntry | undefined;
  has(id: string): boolean;
}

/** Reading blobs through the index: trees, manifests, restore and verify. */
export interface BlobReader {
  readonly backend: Backend;
  readonly config: RepositoryConfig;
  readonly index: BlobIndex;
  /** Load every index file, once per handle. */
  loadIndex(signal?: AbortSignal): Promise<void>;
  /** A blob's plaintext, verified against its id. */
  loadBlob(id: string, readers?: PackReaders): Promise<Buffer>;
  /** Opens (and seals) blobs; can be handed to a worker thread. */
  blobCipher(): BlobCipher;
  /** Why a blob is not in the index (lost, recorded as damaged, or absent), for the STOP that names it. */
  whyMissing(id: string): string;
}

/** Storing blobs into packs: the backup's stages. */
export interface BlobWriter extends BlobReader {
  /** Bytes written to the backend by this handle. */
  readonly addedBytes: number;
  /** Store a blob unless the repository has it; returns the bytes it adds. */
  saveBlob(type: BlobType, id: string, plain: Uint8Array, opts?: { evenIfIndexed?: boolean }): Promise<number>;
  /** Whether a blob is stored or being stored. */
  hasBlob(id: string): boolean;
  /** Claim a blob that a worker will seal and deliver with addSealedBlob. */
  claimBlob(id: string): boolean;
  /** Add a blob a worker sealed with this repository's cipher; the bytes added. */
  addSealedBlob(...blob: SealedBlobArgs): Promise<number>;
  /** The packs of blobs found already stored since trackReusedPacks(). */
  reusedPacks(): ReadonlySet<string>;
}
