/**
 * Run `fn` over a stream with at most `limit` calls in flight, pulling the next
 * item only when there is room (so a million-entry tree is never held in
 * memory). Stops pulling and rejects with the first failure, after the calls
 * already running have settled.
 */
export async function forEachConcurrent<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  try {
    for await (const item of items) {
      if (failure !== undefined) break;
      const p: Promise<void> = fn(item)
        .catch((err: unknown) => {
          failure ??= { err };
        })
        .finally(() => running.delete(p));
      running.add(p);
      while (running.size >= Math.max(1, limit)) await Promise.race(running);
    }
  } finally {
    await Promise.all(running);
  }
  if (failure !== undefined) throw failure.err;
}
