/**
 * Key files read from a repository anyone with write access may have edited:
 * any bytes give a key file within the bounds init writes, or REPO_CORRUPT —
 * never another error, and never scrypt parameters beyond DEFAULT_KDF's.
 */
import fc from 'fast-check';
import { fuzz } from '../../test/fuzz.js';
import { describe, expect, it } from 'vitest';
import { FoleBackupError } from '../errors.js';
import {
  DEFAULT_KDF,
  generateMasterKey,
  isSupportedKdf,
  MAX_KEY_FILE_BYTES,
  parseKeyFile,
  unwrapMasterKey,
  wrapMasterKey,
} from './keys.js';

/** What parseKeyFile did with some bytes: a key file within the bounds, or REPO_CORRUPT. */
function parsedOrCorrupt(bytes: Uint8Array): void {
  try {
    const k = parseKeyFile(bytes, 'k');
    expect(isSupportedKdf(k.N, k.r, k.p)).toBe(true);
    expect(k.N).toBeLessThanOrEqual(DEFAULT_KDF.N);
  } catch (err) {
    expect(err).toBeInstanceOf(FoleBackupError);
    expect((err as FoleBackupError).code).toBe('REPO_CORRUPT');
  }
}

const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));

describe('parseKeyFile', () => {
  it('gives a key file within the bounds or REPO_CORRUPT for any bytes', () => {
    fuzz(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => parsedOrCorrupt(b)),
      500,
    );
  });

  it('gives a key file within the bounds or REPO_CORRUPT for any JSON shaped like one', () => {
    const num = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.constantFrom(2 ** 10, 2 ** 15, 2 ** 16, 2 ** 20, 2 ** 22, 8, 1, 32, 16, 0, -1),
      fc.string(),
    );
    const keyish = fc.record(
      {
        version: fc.oneof(fc.constant(1), fc.anything()),
        kdf: fc.oneof(fc.constant('scrypt'), fc.string()),
        N: num,
        r: num,
        p: num,
        salt: fc.oneof(fc.base64String(), fc.anything()),
        createdAt: fc.oneof(fc.string(), fc.anything()),
        host: fc.string(),
        username: fc.string(),
        data: fc.oneof(fc.base64String(), fc.anything()),
      },
      { requiredKeys: [] },
    );
    fuzz(
      fc.property(keyish, (k) => parsedOrCorrupt(json(k))),
      1000,
    );
  });

  it('refuses more bytes than a key file can be, even valid JSON', () => {
    const k = {
      version: 1,
      kdf: 'scrypt',
      N: 1024,
      r: 8,
      p: 1,
      salt: '',
      createdAt: '',
      host: '',
      username: '',
      data: 'x'.repeat(MAX_KEY_FILE_BYTES),
    };
    expect(() => parseKeyFile(json(k), 'big')).toThrow(/more than a key file can be/);
  });
});

describe('unwrapMasterKey', () => {
  it('tells a wrong password from a key file sealed for another repository id', async () => {
    const fast = { N: 1024, r: 8, p: 1 };
    const kf = parseKeyFile(json(await wrapMasterKey(generateMasterKey('repo-a'), 'pw', fast)), 'k');
    expect(await unwrapMasterKey(kf, 'pw', 'repo-a')).toMatchObject({
      kind: 'opened',
      master: { repositoryId: 'repo-a' },
    });
    expect(await unwrapMasterKey(kf, 'pw', 'repo-b')).toEqual({ kind: 'other-repository', repositoryId: 'repo-a' });
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1 }).filter((s) => s !== 'pw'),
        fc.constantFrom('repo-a', 'repo-b'),
        async (pw, id) => {
          expect(await unwrapMasterKey(kf, pw, id)).toEqual({ kind: 'wrong-password' });
        },
      ),
      { numRuns: 20 },
    );
  });
});
