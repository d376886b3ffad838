/**
 * Run async work on a stream with bounded concurrency while delivering results
 * in input order (a backup's tree must be written in tree order).
 *
 * `limit` bounds the items in flight or waiting for their turn; as a function
 * it is asked before each new item, so a caller can widen the window while it
 * waits for one slow item and narrow it again after (the window then drains
 * down to the new limit before taking more).
 *
 * The window is a ring of promises: Array.shift is O(n) in V8 for large
 * arrays, which at tens of thousands of entries would cost seconds.
 */
export async function orderedMap<T, R>(
  items: AsyncIterable<T>,
  limit: number | (() => number),
  work: (item: T) => Promise<R>,
  sink: (result: R) => Promise<void>,
): Promise<void> {
  const max = (): number => Math.max(1, typeof limit === 'number' ? limit : limit());
  let ring: (Promise<R> | undefined)[] = new Array<Promise<R> | undefined>(typeof limit === 'number' ? max() : 1024);
  let head = 0;
  let size = 0;
  const push = (p: Promise<R>): void => {
    if (size === ring.length) {
      const grown = new Array<Promise<R> | undefined>(ring.length * 2);
      for (let i = 0; i < size; i++) grown[i] = ring[(head + i) % ring.length];
      ring = grown;
      head = 0;
    }
    ring[(head + size) % ring.length] = p;
    size++;
  };
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
      push(p);
      while (size >= max()) await sink(await takeHead());
    }
    while (size > 0) await sink(await takeHead());
  } finally {
    // on failure, let in-flight work settle before the caller cleans up
    await Promise.allSettled(ring.filter((p): p is Promise<R> => p !== undefined));
  }
}
