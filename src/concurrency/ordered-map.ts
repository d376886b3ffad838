/**
 * Run async work on a stream with bounded concurrency while delivering results
 * in input order (a backup's tree must be written in tree order).
 *
 * The window is a ring of promises: Array.shift is O(n) in V8 for large
 * arrays, which at tens of thousands of entries would cost seconds.
 */
export async function orderedMap<T, R>(
  items: AsyncIterable<T>,
  concurrency: number,
  work: (item: T) => Promise<R>,
  sink: (result: R) => Promise<void>,
): Promise<void> {
  const ring: (Promise<R> | undefined)[] = new Array<Promise<R> | undefined>(Math.max(1, concurrency));
  let head = 0;
  let size = 0;
  const takeHead = (): Promise<R> => {
    const p = ring[head] as Promise<R>;
    ring[head] = undefined;
    head = (head + 1) % ring.length;
    size--;
    return p;
  };
  try {
    for await (const item of items) {
      const p = work(item);
      // attach a handler now so a rejection while queued is not "unhandled"; it is rethrown when awaited
      p.catch(() => {});
      ring[(head + size) % ring.length] = p;
      size++;
      if (size >= ring.length) await sink(await takeHead());
    }
    while (size > 0) await sink(await takeHead());
  } finally {
    // on failure, let in-flight work settle before the caller cleans up
    await Promise.allSettled(ring.filter((p): p is Promise<R> => p !== undefined));
  }
}
