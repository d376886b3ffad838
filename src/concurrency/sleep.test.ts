import { afterEach, describe, expect, it, vi } from 'vitest';
import { sleep } from './sleep.js';

describe('sleep', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves once its timer fires, and leaves no listener on the signal', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    const remove = vi.spyOn(ac.signal, 'removeEventListener');
    let done = false;
    const p = sleep(1000, ac.signal).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
    expect(remove).toHaveBeenCalledWith('abort', expect.any(Function));
  });

  it('rejects with ABORTED when the signal aborts, and clears its timer', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    expect(vi.getTimerCount()).toBe(1);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects at once, with no timer, when the signal has already aborted', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    ac.abort();
    const p = sleep(60_000, ac.signal);
    expect(vi.getTimerCount()).toBe(0);
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it("rejects with the caller's error when it names one", async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal, () => new Error('acquire lock x: aborted'));
    ac.abort();
    await expect(p).rejects.toThrow('acquire lock x: aborted');
  });
});
