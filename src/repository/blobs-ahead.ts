/**
 * Blobs read in order with the next few already loading: a reader of one tree or one file (a blob at a time) keeps
 * the storage busy while it uses the blob at hand, and holds at most `ahead` blobs besides.
 */
import { loadedInOrder } from '../concurrency/in-order.js';
import type { PackReaders } from './pack-readers.js';
import type { BlobReader } from './slices.js';

/**
 * `as`: how each blob is handed out (by default, its bytes). The bytes are then dropped as soon as `as` is done
 * with them, not held while the reader uses what was made of them (a suspended generator holds what it yielded).
 */
export function blobsInOrder<T = Buffer>(
  repo: BlobReader,
  ids: readonly string[],
  readers: PackReaders,
  ahead: number,
  as: (blob: Buffer) => T = (blob) => blob as T,
): AsyncGenerator<T> {
  return loadedInOrder(ids.length, async (i) => as(await repo.loadBlob(ids[i] as string, readers)), ahead);
}
