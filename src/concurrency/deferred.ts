/** A promise with its resolve and reject functions, for a result that another part of the code settles. */
export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

/**
 * A new unsettled Deferred. A rejection nobody awaits yet is not an unhandled
 * rejection: the waiters that come later still see it when they await `promise`.
 */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
