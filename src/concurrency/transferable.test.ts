import { describe, expect, it } from 'vitest';
import { transferable } from './transferable.js';

describe('transferable', () => {
  it('moves a buffer that owns its whole memory, without a copy', () => {
    const data = Buffer.allocUnsafeSlow(1024).fill(7);
    const { view, transfer } = transferable(data);
    expect(transfer).toEqual([data.buffer]);
    expect(view.buffer).toBe(data.buffer);
    expect(view.byteLength).toBe(1024);
  });

  it('copies a slice, so moving it never detaches its neighbours', () => {
    const whole = Buffer.from([1, 2, 3, 4, 5, 6]);
    const slice = whole.subarray(2, 5);
    const { view, transfer } = transferable(slice);
    expect(view.buffer).not.toBe(whole.buffer);
    expect(transfer).toEqual([view.buffer]);
    expect([...view]).toEqual([3, 4, 5]);
    // Node's shared pool is a slice too: a small Buffer.from must not be moved
    const pooled = Buffer.from('small');
    expect(transferable(pooled).view.buffer).not.toBe(pooled.buffer);
  });
});
