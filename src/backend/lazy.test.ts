import { describe, expect, it } from 'vitest';
import type { Backend } from './backend.js';
import { LazyBackend, OPTIONAL_METHODS, type OptionalMethod } from './lazy.js';
import { MemoryBackend } from './memory.js';
import { S3_OPTIONAL, SFTP_OPTIONAL } from './open.js';
import { S3Backend } from './s3.js';
import { SftpBackend } from './sftp.js';

/** The optional methods a backend class's instances have. */
function optionalOf(cls: { prototype: object }): OptionalMethod[] {
  return OPTIONAL_METHODS.filter((m) => typeof (cls.prototype as Record<string, unknown>)[m] === 'function');
}

describe('LazyBackend', () => {
  it('offers exactly the optional methods of the S3 and SFTP backends it stands in for', () => {
    expect([...S3_OPTIONAL].sort()).toEqual(optionalOf(S3Backend).sort());
    expect([...SFTP_OPTIONAL].sort()).toEqual(optionalOf(SftpBackend).sort());
    const lazy = new LazyBackend('x', ['openReader'], async () => new MemoryBackend());
    expect(lazy.openReader).toBeTypeOf('function');
    expect(lazy.listTemporary).toBeUndefined();
  });

  it('loads the backend on the first call only, and forwards every call to it', async () => {
    let made = 0;
    const inner = new MemoryBackend();
    const lazy = new LazyBackend('mem:x', ['loadStream'], async () => {
      made++;
      return inner;
    });
    expect(made).toBe(0);
    expect(lazy.location).toBe('mem:x');
    await lazy.create();
    const h = { type: 'data' as const, name: 'a'.repeat(64) };
    await Promise.all([lazy.save(h, Buffer.from('hello')), lazy.stat({ type: 'config', name: '' }).catch(() => 0)]);
    expect((await lazy.load(h, { offset: 1, length: 3 })).toString()).toBe('ell');
    const streamed: Uint8Array[] = [];
    for await (const piece of lazy.loadStream?.(h, { offset: 1, length: 3 }) ?? []) streamed.push(piece);
    expect(Buffer.concat(streamed).toString()).toBe('ell');
    const listed: string[] = [];
    for await (const o of lazy.list('data')) listed.push(o.name);
    expect(listed).toEqual([h.name]);
    await lazy.remove(h);
    expect(await lazy.isRepository()).toBe(await inner.isRepository());
    expect(made).toBe(1);
    await lazy.close();
  });

  it('closes without loading a backend never used, and tries a failed load again', async () => {
    let attempts = 0;
    const lazy = new LazyBackend('mem:y', [], async (): Promise<Backend> => {
      attempts++;
      if (attempts === 1) throw new Error('module failed to load');
      return new MemoryBackend();
    });
    await lazy.close();
    expect(attempts).toBe(0);
    await expect(lazy.create()).rejects.toThrow(/module failed to load/);
    await lazy.create();
    expect(attempts).toBe(2);
    await lazy.close();
  });
});
