/**
 * copyBackups as a library call between local repositories: what a copied snapshot holds, a source whose
 * data is damaged stops the copy before any snapshot reaches the target, and packs go to a slow target several
 * at once.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyBackups } from '../src/copy/copy.js';
import type { ByteRange, Bytes, ObjectHandle } from '../src/backend/backend.js';
import { LocalBackend } from '../src/backend/local.js';
import { MemoryBackend } from '../src/backend/memory.js';
import { WrappedBackend } from '../src/backend/wrapped.js';
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

  it.each(['flipped', 'truncated'] as const)(
    'stops at a source pack %s, and the target gets no snapshot',
    async (how) => {
      const damaged = join(dir, `damaged-${how}`);
      cpSync(source.repoDir, damaged, { recursive: true });
      const packs = readdirSync(join(damaged, 'data'), { recursive: true, encoding: 'utf8' })
        .map((f) => join(damaged, 'data', f))
        .filter((f) => statSync(f).isFile())
        .sort((x, y) => statSync(y).size - statSync(x).size);
      const biggest = packs[0] as string;
      const bytes = readFileSync(biggest);
      bytes[100] = (bytes[100] as number) ^ 0x01;
      writeFileSync(biggest, how === 'flipped' ? bytes : bytes.subarray(0, 200));
      const to = join(dir, `from-damaged-${how}`);
      await withRepos(damaged, to, async (from, target) => {
        await expect(copyBackups(from, target)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
        expect(await listSnapshots(target)).toEqual([]);
      });
    },
  );
});

/** A target whose pack saves take a while, as a distant server's do; it counts how many run at once. */
class SlowPackSaves extends WrappedBackend {
  running = 0;
  most = 0;
  override async save(h: ObjectHandle, data: Bytes): Promise<void> {
    if (h.type !== 'data') return super.save(h, data);
    this.most = Math.max(this.most, ++this.running);
    try {
      await new Promise((r) => setTimeout(r, 30));
      return await super.save(h, data);
    } finally {
      this.running--;
    }
  }
}

/** A source that counts the reads of its packs. */
class CountedPackLoads extends WrappedBackend {
  loads = 0;
  override load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    if (h.type === 'data') this.loads++;
    return super.load(h, range);
  }
}

describe('copyBackups to a slow target', () => {
  it('reads source packs in a few requests, uploads several packs at once (at most 4), reads back whole', async () => {
    const many = await backedUpFoleTree(join(dir, 'many'), {
      prepare: (root) => {
        for (let i = 0; i < 60; i++)
          writeFileSync(join(root, 'projects', 'p1', 'files', `n${i}.bin`), randomBytes(3000));
      },
    });
    const slow = new SlowPackSaves(new MemoryBackend());
    // packs of the smallest size: nearly every blob is a pack of its own, so there are many to upload
    const to = await Repository.init(slow, TEST_PASSWORD, { kdf: FAST_KDF, packSize: 4096 });
    const counted = new CountedPackLoads(new LocalBackend(many.repoDir));
    const from = await Repository.open(counted, TEST_PASSWORD);
    const sourcePacks = readdirSync(join(many.repoDir, 'data'), { recursive: true }).length;
    try {
      const report = await copyBackups(from, to, { readData: true });
      expect(report.blobsCopied).toBeGreaterThan(60);
      // the data is read a span of a pack at a time (the file lists through pack readers, not counted here)
      expect(counted.loads).toBeGreaterThan(0);
      expect(counted.loads).toBeLessThanOrEqual(sourcePacks);
      expect(report.packsWritten).toBeGreaterThan(20);
      expect(slow.most).toBeGreaterThan(2);
      expect(slow.most).toBeLessThanOrEqual(4);
      expect(report.verified.blobsRead).toBe(report.blobsCopied);
      await expectAllReadable(to);
    } finally {
      await from.close();
      await to.close();
    }
  });
});
