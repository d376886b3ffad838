import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { deferred } from './deferred.js';
import { orderedMap } from './ordered-map.js';

async function* from<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const x of items) yield x;
}

describe('orderedMap', () => {
  it(
    'delivers every result in input order, whatever order the work finishes in, never more than `concurrency` ' +
      'at once',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.nat(3), { maxLength: 60 }),
          fc.integer({ min: 1, max: 10 }),
          async (delays, concurrency) => {
            let running = 0;
            let most = 0;
            const out: number[] = [];
            await orderedMap(
              from(delays.map((d, i) => ({ d, i }))),
              concurrency,
              async ({ d, i }) => {
                running++;
                most = Math.max(most, running);
                for (let k = 0; k < d; k++) await new Promise((r) => setImmediate(r));
                running--;
                return i;
              },
              async (i) => {
                out.push(i);
              },
            );
            expect(out).toEqual(delays.map((_, i) => i));
            expect(most).toBeLessThanOrEqual(concurrency);
          },
        ),
        { seed: 42, numRuns: 200 },
      );
    },
  );

  it('follows a limit that changes: wide while the first item is slow, then narrow again', async () => {
    let narrow = false;
    let inFlight = 0;
    let mostWhileNarrow = 0;
    let release: () => void = () => {};
    const firstDone = new Promise<void>((r) => (release = r));
    const out: number[] = [];
    await orderedMap(
      from(Array.from({ length: 5000 }, (_, i) => i)),
      () => (narrow ? 3 : 4096),
      async (i) => {
        inFlight++;
        if (narrow) mostWhileNarrow = Math.max(mostWhileNarrow, inFlight);
        if (i === 0) await firstDone;
        else await new Promise((r) => setImmediate(r));
        // the first 3,000 items were taken in while item 0 held the head
        if (i === 3000) {
          narrow = true;
          release();
        }
        inFlight--;
        return i;
      },
      async (i) => {
        out.push(i);
      },
    );
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(mostWhileNarrow).toBeLessThanOrEqual(3);
  });

  it('rethrows a failed item after letting the work in flight settle', async () => {
    const settled: number[] = [];
    const failed = deferred();
    const run = orderedMap(
      from([0, 1, 2, 3]),
      4,
      async (i) => {
        if (i === 1) {
          settled.push(i);
          failed.resolve();
          throw new Error('item 1');
        }
        // the others finish only after the failure has reached orderedMap (a turn of the event loop later)
        await failed.promise;
        await new Promise<void>((resolve) => setImmediate(resolve));
        settled.push(i);
        return i;
      },
      async () => {},
    );
    await expect(run).rejects.toThrow('item 1');
    expect(settled[0]).toBe(1);
    expect(settled.sort()).toEqual([0, 1, 2, 3]);
  });
});
