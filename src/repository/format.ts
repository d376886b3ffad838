/**
 * Constants of the on-disk repository format (docs/REPOSITORY_FORMAT.md).
 * Changing anything here that alters bytes on disk needs a new FORMAT_VERSION.
 */

/** The repository format this build reads and writes. */
export const FORMAT_VERSION = 1;

export type BlobType = 'data' | 'tree';
export const BLOB_TYPE_CODE: Record<BlobType, number> = { data: 0, tree: 1 };
export const BLOB_TYPE_OF_CODE: readonly BlobType[] = ['data', 'tree'];

/** Pack files are closed once they reach this many bytes (before the header). */
export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
/** Regular files are cut into fixed chunks of this size. */
export const DEFAULT_FILE_CHUNK = 1024 * 1024;
/**
 * Database snapshots are cut into fixed chunks of this size. SQLite page sizes are
 * powers of two (512…65536), so every page boundary is a chunk boundary and an
 * unchanged region of a large database dedups. A changed page costs its whole chunk:
 * with `npm run bench` (dedup), a 1% random page change of a 91 MB database added 1.9% at
 * 4 KiB, 4.1% at 16 KiB and 15% at 64 KiB, and of a 1 GB one 2.4% at 16 KiB and 1.8% at
 * 8 KiB. Every blob costs a fixed ~8 µs to seal or open in Node, and an index entry: at
 * 8 KiB that 1 GB database restored with 25–35% more CPU and time and ~70 MB more memory,
 * so 16 KiB stays the default and `init --db-chunk-size 8192` is the choice for smaller
 * incrementals (docs/BENCHMARKS.md, `huge-db`).
 */
export const DEFAULT_DB_CHUNK = 16 * 1024;
/** Tree (file list) blobs hold about this many bytes (cut points are chosen by content: src/snapshot/tree.ts). */
export const TREE_BLOB_TARGET = 64 * 1024;

/** Plaintext repository config: the only object readable without a key. */
export interface RepositoryConfig {
  formatVersion: number;
  id: string;
  createdAt: string;
  packSize: number;
  fileChunkSize: number;
  dbChunkSize: number;
}

/** Associated data for each kind of sealed object. */
export const AAD = {
  packHeader: Buffer.from('fole-pack-header'),
  index: Buffer.from('fole-index'),
  lock: Buffer.from('fole-lock'),
  snapshot: (backupId: string): Buffer => Buffer.from(`fole-snapshot:${backupId}`),
  blob: (type: BlobType, id: Buffer): Buffer => Buffer.concat([Buffer.from([BLOB_TYPE_CODE[type]]), id]),
};
