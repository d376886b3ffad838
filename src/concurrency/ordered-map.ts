/**
 * Run async work on a stream with bounded concurrency while delivering results
 * in input order (a backup's tree must be written in tree order).
 */
export async function orderedMap<T, R>(
  items: AsyncIterable<T>,
  concurrency: number,
  work: (item: T) => Promise<R>,
  sink: (result: R) => Promise<void>,
): Promise<void> {
  const queue: Promise<R>[] = [];
  try {
    for await (const item of items) {
      const p = work(item);
      // attach a handler now so a rejection while queued is not "unhandled"; it is rethrown when awaited
      p.catch(() => {});
      queue.push(p);
      if (queue.length >= concurrency) await sink(await (queue.shift() as Promise<R>));
    }
    while (queue.length > 0) await sink(await (queue.shift() as Promise<R>));
  } finally {
    // on failure, let in-flight work settle before the caller cleans up
    await Promise.allSettled(queue);
  }
}
