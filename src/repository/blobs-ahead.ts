/**
 * Blobs read in order with the next few already loading: a reader of one tree or one file (a blob at a time) keeps
 * the storage busy while it uses the blob at hand, and holds at most `ahead` blobs besides.
 */
import type { PackReaders } from './pack-readers.js';
import type { BlobReader } from './slices.js';

export async function* blobsInOrder(
  repo: BlobReader,
  ids: readonly string[],
  readers: PackReaders,
  ahead: number,
): AsyncGenerator<Buffer> {
  const loading: Promise<Buffer>[] = [];
  let next = 0;
  const loadAhead = (): void => {
    while (loading.length < ahead && next < ids.length) {
      const load = repo.loadBlob(ids[next++] as string, readers);
      // awaited in turn below; a reader that stops early leaves no unhandled rejection
      load.catch(() => undefined);
      loading.push(load);
    }
  };
  loadAhead();
  for (let load = loading.shift(); load !== undefined; load = loading.shift()) {
    const data = await load;
    loadAhead();
    yield data;
  }
}
