/**
 * Results of `load(0)`, `load(1)`, … in order, with the next few already loading: a reader that uses one at a
 * time keeps the storage busy meanwhile, and holds at most `ahead` results besides — and, given `bytes`, at
 * most `bytes.max` of them (the next one always, however large, so a large one never waits forever).
 */
export async function* loadedInOrder<T>(
  count: number,
  load: (index: number) => Promise<T>,
  ahead: number,
  bytes?: { sizeOf: (index: number) => number; max: number },
): AsyncGenerator<T> {
  const loading: { result: Promise<T>; size: number }[] = [];
  let loadingBytes = 0;
  let next = 0;
  const loadAhead = (): void => {
    while (loading.length < ahead && next < count) {
      const size = bytes?.sizeOf(next) ?? 0;
      if (bytes !== undefined && loading.length > 0 && loadingBytes + size > bytes.max) break;
      const result = load(next++);
      // awaited in turn below; a reader that stops early leaves no unhandled rejection
      result.catch(() => undefined);
      loading.push({ result, size });
      loadingBytes += size;
    }
  };
  try {
    loadAhead();
    for (let l = loading.shift(); l !== undefined; l = loading.shift()) {
      const value = await l.result;
      loadingBytes -= l.size;
      loadAhead();
      yield value;
    }
  } finally {
    // a reader that stops early may close what the loads use next: none may still be running
    await Promise.allSettled(loading.map((l) => l.result));
  }
}
