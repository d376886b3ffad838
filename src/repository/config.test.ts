/**
 * The repository config is the one plaintext object every command reads first:
 * whatever bytes it holds, reading it yields a valid config or a typed error
 * (fuzzing with fast-check, fixed seeds) — never a crash.
 */
import fc from 'fast-check';
import { fuzzAsync } from '../../test/fuzz.js';
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../backend/memory.js';
import { FoleBackupError } from '../errors.js';
import { readConfig } from './repository.js';

async function readBytes(bytes: Uint8Array): Promise<unknown> {
  const backend = new MemoryBackend();
  await backend.save({ type: 'config', name: 'config' }, Buffer.from(bytes));
  return readConfig(backend).catch((e: unknown) => e);
}

const VALID = {
  formatVersion: 1,
  id: '6f1c2f0e-8a55-4a4e-9d2a-6a8f0b1c2d3e',
  createdAt: '2026-01-01T00:00:00.000Z',
  packSize: 16 << 20,
  fileChunkSize: 1 << 20,
  dbChunkSize: 16384,
};
const isTyped = (r: unknown): boolean =>
  r instanceof FoleBackupError && ['REPO_CORRUPT', 'REPO_FORMAT_UNSUPPORTED'].includes(r.code);

describe('reading the repository config', () => {
  it('reads a valid config, and refuses JSON that is not an object', async () => {
    expect(await readBytes(Buffer.from(JSON.stringify(VALID)))).toEqual(VALID);
    for (const text of ['null', '1', '"x"', '[]', 'true', '{}', '{"formatVersion":1}', ''])
      expect(isTyped(await readBytes(Buffer.from(text))), text).toBe(true);
  });

  it('any mutation of a valid config yields a valid config or a typed error', async () => {
    const value = fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double(),
      fc.string(),
      fc.array(fc.nat(), { maxLength: 2 }),
      fc.object({ maxDepth: 1 }),
    );
    await fuzzAsync(
      fc.asyncProperty(fc.constantFrom(...Object.keys(VALID), 'extra'), value, async (key, v) => {
        const r = await readBytes(Buffer.from(JSON.stringify({ ...VALID, [key]: v })));
        if (r instanceof FoleBackupError) expect(isTyped(r)).toBe(true);
        else expect(r).toMatchObject({ formatVersion: 1 });
      }),
      1000,
    );
  });

  it('any bytes yield a config or a typed error', async () => {
    await fuzzAsync(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.json().map((j) => Buffer.from(j)),
        ),
        async (bytes) => {
          const r = await readBytes(bytes);
          if (r instanceof Error) expect(isTyped(r), String(r)).toBe(true);
        },
      ),
      1000,
    );
  });
});

describe('a config that is far too large', () => {
  it('is refused from its size, before it is read', async () => {
    const r = await readBytes(Buffer.concat([Buffer.from(JSON.stringify(VALID)), Buffer.alloc(65 * 1024, 0x20)]));
    expect(r).toMatchObject({ code: 'REPO_CORRUPT', message: expect.stringMatching(/far more than a config holds/) });
  });
});

describe('a lost or damaged config', () => {
  it('says the config was lost, not that there is no repository, when the objects are still there', async () => {
    const backend = new MemoryBackend();
    await backend.save({ type: 'keys', name: 'a'.repeat(64) }, Buffer.from('{}'));
    const err = await readConfig(backend).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'REPO_NOT_FOUND',
      message: expect.stringMatching(/holds a repository's key files but no config/),
      hint: expect.stringMatching(/do not run init here/),
    });
    const empty = await readConfig(new MemoryBackend()).catch((e: unknown) => e);
    expect(empty).toMatchObject({ code: 'REPO_NOT_FOUND', hint: expect.stringMatching(/fole-backup init/) });
  });

  it('says what to do with a damaged one', async () => {
    for (const text of ['{}', JSON.stringify({ ...VALID, dbChunkSize: 1 }), 'not json']) {
      expect(await readBytes(Buffer.from(text)), text).toMatchObject({
        code: 'REPO_CORRUPT',
        hint: expect.stringMatching(/restore the file `config` from a copy/),
      });
    }
  });
});
