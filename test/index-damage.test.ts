/**
 * A damaged index file (undecryptable, not JSON, not an index) met by a
 * command that loads the index is a STOP CHECKSUM_MISMATCH naming the file
 * and pointing at `check`, like any other damaged repository object — not an
 * ordinary error (exit 1) that invites a retry.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compressAlways } from '../src/repository/compress.js';
import { AAD } from '../src/repository/format.js';
import { runCli } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { makeFixture, type Fixture } from './verify-fixture.js';

let fx: Fixture;
beforeEach(async () => {
  fx = await makeFixture({ files: 3 });
});
afterEach(() => fx.cleanup());

/** Ways an index file can be damaged, each written over the real one. */
const damage: Record<string, (path: string) => Promise<void>> = {
  'undecryptable (one byte flipped)': async (path) => {
    const b = readFileSync(path);
    const at = b.length >> 1;
    b[at] = (b[at] ?? 0) ^ 0x40;
    writeFileSync(path, b);
  },
  'sealed, but not JSON': async (path) => {
    const repo = await fx.open();
    writeFileSync(path, repo.sealBytes(compressAlways(Buffer.from('{"packs": [')), AAD.index));
    await repo.close();
  },
  'sealed JSON that is not an index': async (path) => {
    const repo = await fx.open();
    writeFileSync(
      path,
      repo.sealBytes(compressAlways(Buffer.from(JSON.stringify({ packs: [{ id: 'nope', blobs: [] }] }))), AAD.index),
    );
    await repo.close();
  },
};

describe('a damaged index file', () => {
  for (const [how, apply] of Object.entries(damage)) {
    it(`is a STOP CHECKSUM_MISMATCH naming it when the index is loaded: ${how}`, async () => {
      const file = fx.indexFiles()[0] as string;
      await apply(file);
      const repo = await fx.open();
      const loaded = await repo.loadIndex().catch((e: unknown) => e);
      expect(loaded).toMatchObject({
        name: 'StopError',
        code: 'CHECKSUM_MISMATCH',
        message: expect.stringContaining(`index/${basename(file)}`),
      });
      expect((loaded as { hint: string }).hint).toMatch(/fole-backup check/);
      // prune reads the index files one by one as well
      await expect(repo.readIndexFile(basename(file))).rejects.toMatchObject({
        name: 'StopError',
        code: 'CHECKSUM_MISMATCH',
      });
      await repo.close();
    });
  }

  it('ends a CLI command with exit 3 and the hint to run check', async () => {
    await (damage['sealed JSON that is not an index'] as (p: string) => Promise<void>)(fx.indexFiles()[0] as string);
    const r = await runCli(['prune', '--repo', fx.repoDir, '--dry-run'], { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
    expect(r.stderr).toMatch(/STOP CHECKSUM_MISMATCH: index\/[0-9a-f]{12}\S*: malformed pack entry/);
    expect(r.stderr).toMatch(/hint: .*fole-backup check/);
    expect(r.code).toBe(3);
  });
});
