import { describe, expect, it } from 'vitest';
import { Budget } from './budget.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Budget', () => {
  it(
    'never lets more than the budget through, ' + 'serves waiters in order, and lets one oversized taker in alone',
    async () => {
      const b = new Budget(10);
      const order: string[] = [];
      let inUse = 0;
      let most = 0;
      const user = async (name: string, n: number): Promise<void> => {
        await b.take(n);
        inUse += n;
        most = Math.max(most, inUse);
        order.push(name);
        await tick();
        inUse -= n;
        b.give(n);
      };
      await Promise.all([user('a', 6), user('b', 6), user('big', 25), user('c', 3), user('d', 4)]);
      expect(order).toEqual(['a', 'b', 'big', 'c', 'd']);
      // 'big' ran alone: the most in use at once is 25, and otherwise never above 10
      expect(most).toBe(25);
    },
  );

  it('keeps at most `max` single units out with many waiters, and serves every one of them', async () => {
    const b = new Budget(3);
    let out = 0;
    let most = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 3000 }, async () => {
        await b.take(1);
        out++;
        most = Math.max(most, out);
        await tick();
        out--;
        done++;
        b.give(1);
      }),
    );
    expect(most).toBe(3);
    expect(done).toBe(3000);
  });
});
