/**
 * Blobs read in order with the next few already loading: a reader of one tree or one file (a blob at a time) keeps
 * the storage busy while it uses the blob at hand, and holds at most `ahead` blobs besides — and, given `bytes`,
 * at most `bytes.max` of their plaintext (the next blob always, however large, so one never waits forever).
 */
import type { PackReaders } from './pack-readers.js';
import type { BlobReader } from './slices.js';

export async function* blobsInOrder(
  repo: BlobReader,
  ids: readonly string[],
  readers: PackReaders,
  ahead: number,
  bytes?: { sizeOf: (index: number) => number; max: number },
): AsyncGenerator<Buffer> {
  const loading: { load: Promise<Buffer>; size: number }[] = [];
  let loadingBytes = 0;
  let next = 0;
  const loadAhead = (): void => {
    while (loading.length < ahead && next < ids.length) {
      const size = bytes?.sizeOf(next) ?? 0;
      if (bytes !== undefined && loading.length > 0 && loadingBytes + size > bytes.max) break;
      const load = repo.loadBlob(ids[next++] as string, readers);
      // awaited in turn below; a reader that stops early leaves no unhandled rejection
      load.catch(() => undefined);
      loading.push({ load, size });
      loadingBytes += size;
    }
  };
  try {
    loadAhead();
    for (let l = loading.shift(); l !== undefined; l = loading.shift()) {
      const data = await l.load;
      loadingBytes -= l.size;
      loadAhead();
      yield data;
    }
  } finally {
    // a reader that stops early may close `readers` next: no load may still be using them
    await Promise.allSettled(loading.map((l) => l.load));
  }
}
