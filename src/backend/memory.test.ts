import { describe, expect, it } from 'vitest';
import { describeBackendConformance } from '../../test/backend-conformance.js';
import { MemoryBackend } from './memory.js';

describeBackendConformance('memory', async () => ({ backend: new MemoryBackend(), cleanup: async () => undefined }));

describe('MemoryBackend', () => {
  it('gives every instance its own location and its own objects', async () => {
    const a = new MemoryBackend();
    const b = new MemoryBackend();
    expect(a.location).not.toBe(b.location);
    await a.save({ type: 'config', name: 'config' }, Buffer.from('{}'));
    expect(await b.isRepository()).toBe(false);
  });
});
