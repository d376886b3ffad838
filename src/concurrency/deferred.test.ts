import { describe, expect, it } from 'vitest';
import { deferred } from './deferred.js';

describe('deferred', () => {
  it('settles its promise with the value given to resolve', async () => {
    const d = deferred<number>();
    d.resolve(42);
    await expect(d.promise).resolves.toBe(42);
  });

  it(
    'keeps a rejection nobody awaits yet for the waiter that comes later, ' + 'without an unhandled rejection',
    async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => {
        unhandled.push(reason);
      };
      process.on('unhandledRejection', onUnhandled);
      try {
        const d = deferred();
        d.reject(new Error('capture failed'));
        // let the event loop turn, so an unhandled rejection would have been reported
        await new Promise<void>((resolve) => setImmediate(resolve));
        await expect(d.promise).rejects.toThrow('capture failed');
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    },
  );
});
