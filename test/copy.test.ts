/**
 * copyBackups as a library call between local repositories: what a copied snapshot holds, and a source whose
 * data is damaged stops the copy before any snapshot reaches the target.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyBackups } from '../src/copy/copy.js';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots, loadSnapshot, saveSnapshot } from '../src/snapshot/store.js';
import { FAST_KDF, TEST_PASSWORD, expectAllReadable } from './repo-helpers.js';
import { backedUpFoleTree } from './restore-helpers.js';

let dir: string;
let source: { repoDir: string; backupId: string };

const open = (repoDir: string): Promise<Repository> => Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);

async function withRepos<T>(from: string, to: string, fn: (a: Repository, b: Repository) => Promise<T>): Promise<T> {
  const a = await open(from);
  const b = await Repository.init(new LocalBackend(to), TEST_PASSWORD, { kdf: FAST_KDF });
  try {
    return await fn(a, b);
  } finally {
    await a.close();
    await b.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fole-copy-lib-'));
  source = await backedUpFoleTree(join(dir, 'work'));
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('copyBackups', () => {
  it('writes the snapshot as it was, less the source log position it recorded', async () => {
    const a = await open(source.repoDir);
    const withHead = randomUUID();
    try {
      const snap = await loadSnapshot(a, source.backupId);
      const manifest = { ...snap.manifest, backupId: withHead };
      await saveSnapshot(a, { ...snap, backupId: withHead, manifest, auditHead: { seq: 0, digest: 'ab'.repeat(32) } });
    } finally {
      await a.close();
    }
    await withRepos(source.repoDir, join(dir, 'b'), async (from, to) => {
      const report = await copyBackups(from, to, { backupIds: [withHead] });
      expect(report.copied.map((c) => c.backupId)).toEqual([withHead]);
      const { auditHead, ...rest } = await loadSnapshot(from, withHead);
      expect(auditHead).toBeDefined();
      expect(await loadSnapshot(to, withHead)).toEqual(rest);
      await expectAllReadable(to);
    });
  });

  it('stops at a damaged blob in the source, and the target gets no snapshot', async () => {
    const damaged = join(dir, 'damaged');
    cpSync(source.repoDir, damaged, { recursive: true });
    const packs = readdirSync(join(damaged, 'data'), { recursive: true, encoding: 'utf8' })
      .map((f) => join(damaged, 'data', f))
      .filter((f) => statSync(f).isFile())
      .sort((x, y) => statSync(y).size - statSync(x).size);
    const biggest = packs[0] as string;
    const bytes = readFileSync(biggest);
    bytes[100] = (bytes[100] as number) ^ 0x01;
    writeFileSync(biggest, bytes);
    const to = join(dir, 'from-damaged');
    await withRepos(damaged, to, async (from, target) => {
      await expect(copyBackups(from, target)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
      expect(await listSnapshots(target)).toEqual([]);
    });
  });
});
