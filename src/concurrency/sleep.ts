import { abortError } from '../errors.js';

/**
 * Resolves after `ms` milliseconds, or rejects with `aborted()` (default: the
 * ABORTED error) as soon as `signal` aborts — also when it already has. The
 * timer is cleared on abort, so an aborted wait keeps no process alive.
 */
export function sleep(ms: number, signal?: AbortSignal, aborted: () => Error = abortError): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(aborted());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
