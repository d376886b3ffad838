/**
 * Blobs read in order with the next few already loading: a reader of one tree or one file (a blob at a time) keeps
 * the storage busy while it uses the blob at hand, and holds at most `ahead` blobs besides.
 */
import { loadedInOrder } from '../concurrency/in-order.js';
import type { PackReaders } from './pack-readers.js';
import type { BlobReader } from './slices.js';

export function blobsInOrder(
  repo: BlobReader,
  ids: readonly string[],
  readers: PackReaders,
  ahead: number,
): AsyncGenerator<Buffer> {
  return loadedInOrder(ids.length, (i) => repo.loadBlob(ids[i] as string, readers), ahead);
}
