import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { describeBackendConformance, expectCode, listAll } from '../../test/backend-conformance.js';
import { FaultInjectingBackend } from './fault.js';
import { MemoryBackend } from './memory.js';

/** Number of bits that differ between two equally long buffers. */
function bitDiff(a: Buffer, b: Buffer): number {
  expect(a.length).toBe(b.length);
  let bits = 0;
  for (let i = 0; i < a.length; i++) {
    let x = (a[i] ?? 0) ^ (b[i] ?? 0);
    for (; x !== 0; x &= x - 1) bits++;
  }
  return bits;
}

// With no faults configured the wrapper is a transparent backend.
describeBackendConformance('fault-injecting (no faults)', async () => ({
  backend: new FaultInjectingBackend(new MemoryBackend()),
  cleanup: async () => undefined,
}));

describe('FaultInjectingBackend', () => {
  const h = { type: 'data' as const, name: 'ab01' };
  const data = randomBytes(256);
  let inner: MemoryBackend;
  let backend: FaultInjectingBackend;

  beforeEach(async () => {
    inner = new MemoryBackend();
    await inner.create();
    await inner.save(h, data);
    backend = new FaultInjectingBackend(inner);
  });

  it('flips exactly the requested bit and leaves the stored object intact', async () => {
    backend.flipBitOnLoad(() => true, { offset: 10, bit: 3 });
    const got = await backend.load(h);
    expect(bitDiff(got, data)).toBe(1);
    expect(got[10]).toBe((data[10] ?? 0) ^ 0b1000);
    expect((await inner.load(h)).equals(data)).toBe(true);
  });

  it('flips one random bit per matching load, including ranged loads', async () => {
    backend.flipBitOnLoad((handle) => handle.type === 'data');
    for (let i = 0; i < 20; i++) expect(bitDiff(await backend.load(h), data)).toBe(1);
    const ranged = await backend.load(h, { offset: 100, length: 50 });
    expect(bitDiff(ranged, data.subarray(100, 150))).toBe(1);
  });

  it('leaves loads that do not match the predicate untouched', async () => {
    backend.flipBitOnLoad((handle) => handle.type === 'index');
    expect((await backend.load(h)).equals(data)).toBe(true);
  });

  it('truncates what matching loads return', async () => {
    backend.truncateOnLoad(() => true, 100);
    expect((await backend.load(h)).equals(data.subarray(0, 100))).toBe(true);
    backend.clearFaults().truncateOnLoad(() => true);
    expect((await backend.load(h)).length).toBe(128);
  });

  it('fails exactly the nth call to a method, counting from when the fault is set', async () => {
    await backend.load(h);
    const boom = new Error('boom');
    backend.failNth('load', 3, boom);
    await backend.stat(h);
    await expect(backend.load(h)).resolves.toBeDefined();
    await expect(backend.load(h)).resolves.toBeDefined();
    await expect(backend.load(h)).rejects.toBe(boom);
    await expect(backend.load(h)).resolves.toBeDefined();
    await expect(backend.load(h)).resolves.toBeDefined();
  });

  it('fails the nth listing when it is iterated', async () => {
    backend.failNth('list', 1, new Error('list failed'));
    await expect(listAll(backend, 'data')).rejects.toThrow('list failed');
    expect(await listAll(backend, 'data')).toEqual([{ name: h.name, size: data.length }]);
  });

  it('fails saves like a full disk, without storing anything, until cleared', async () => {
    backend.failSaveWith('ENOSPC');
    const other = { type: 'index' as const, name: 'i1' };
    const err = await expectCode(backend.save(other, Buffer.from('x')), 'NO_SPACE');
    expect(err.message).toContain(`${inner.location}/index/i1`);
    await expectCode(inner.stat(other), 'NOT_FOUND');
    backend.clearFaults();
    await backend.save(other, Buffer.from('x'));
    expect((await inner.load(other)).toString()).toBe('x');
  });

  it('maps other errno codes the way the real filesystem errors are mapped', async () => {
    backend.failSaveWith('EACCES');
    await expectCode(backend.save(h, Buffer.from('x')), 'WRITE_ERROR');
    backend.failSaveWith('EROFS');
    await expectCode(backend.save(h, Buffer.from('x')), 'WRITE_ERROR');
    expect((await inner.load(h)).equals(data)).toBe(true);
  });
});
