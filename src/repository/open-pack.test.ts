/**
 * The open pack with a backend that takes drafts (a local directory): its bytes reach the repository's folder as
 * the pack fills, not when it is finished, so no pack is ever whole in memory; a pack that is never finished
 * leaves nothing, and a full disk fails the write with NO_SPACE and leaves the repository sound. Bytes added from a
 * buffer the caller wants back (a worker's sealed segment: SharedBytes) are given back only once written, and never
 * where the pack is saved whole.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRun, onTmpfs } from '../../test/needs.js';
import { makeLocalRepo, TEST_PASSWORD } from '../../test/repo-helpers.js';
import { scratchDir } from '../../test/scratch.js';
import type { Backend } from '../backend/backend.js';
import { LocalBackend } from '../backend/local.js';
import { MemoryBackend } from '../backend/memory.js';
import { SharedBackend } from '../backend/shared.js';
import { sha256Hex } from '../crypto/hash.js';
import { checkRepository } from '../verify/check-repository.js';
import { Repository } from './repository.js';
import { OpenPack, type SharedBytes } from './open-pack.js';

const scratch = scratchDir('fole-open-pack-');

const root0 = process.getuid?.() === 0;

/** Temp files at the top of the repository's folder, with their sizes: where a local pack is drafted. */
function drafts(repoDir: string): number[] {
  return readdirSync(repoDir)
    .filter((n) => n.startsWith('.tmp-'))
    .map((n) => statSync(join(repoDir, n)).size);
}

/** The repository in `dir` opens, and check --read-data finds it sound. */
async function expectSound(dir: string): Promise<void> {
  const repo = await Repository.open(new LocalBackend(dir), TEST_PASSWORD);
  expect((await checkRepository(repo, { readData: true })).ok).toBe(true);
  await repo.close();
}

/** Resolves once `ok()` holds (the appends under way have landed); fails after 10 s. */
async function until(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('the draft never reached the size expected');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Random (incompressible) blobs of `size` bytes, with their ids. */
function blobs(n: number, size: number): { id: string; plain: Buffer }[] {
  return Array.from({ length: n }, () => {
    const plain = randomBytes(size);
    return { id: sha256Hex(plain), plain };
  });
}

describe('the open pack', () => {
  it('is written to the repository as it fills, and finished into one pack that reads back', async () => {
    const dir = join(scratch(), 'repo');
    const repo = await makeLocalRepo(dir, { packSize: 16 * 1024 * 1024 });
    const some = blobs(6, 512 * 1024);
    for (const b of some) await repo.saveBlob('data', b.id, b.plain);
    // 3 MiB added to a pack of 16: all but the last MiB of it is on its way to the disk, not held for the finish
    await until(() => (drafts(dir)[0] ?? 0) >= 2 * 1024 * 1024);
    expect(drafts(dir)).toHaveLength(1);
    await repo.flush();
    expect(drafts(dir)).toEqual([]);
    const packs = [];
    for await (const p of repo.backend.list('data')) packs.push(p.name);
    expect(packs).toHaveLength(1);
    await repo.close();
    const again = await Repository.open(new LocalBackend(dir), TEST_PASSWORD);
    for (const b of some) expect((await again.loadBlob(b.id)).equals(b.plain)).toBe(true);
    await again.close();
    await expectSound(dir);
  });

  it('goes through a wrapper of the local backend as well (the CLI shares its backend)', async () => {
    const dir = join(scratch(), 'repo');
    await (await makeLocalRepo(dir)).close();
    const shared = new SharedBackend(new LocalBackend(dir));
    expect(shared.createDraft).toBeDefined();
    const repo = await Repository.open(shared, TEST_PASSWORD);
    for (const b of blobs(3, 512 * 1024)) await repo.saveBlob('data', b.id, b.plain);
    await until(() => drafts(dir).length === 1);
    await repo.flush();
    expect(drafts(dir)).toEqual([]);
    await repo.close();
    await shared.release();
  });

  it('leaves nothing behind when it is never finished: closed, or discarded after a failure', async () => {
    const dir = join(scratch(), 'repo');
    const repo = await makeLocalRepo(dir);
    for (const b of blobs(3, 512 * 1024)) await repo.saveBlob('data', b.id, b.plain);
    await until(() => drafts(dir).length === 1);
    repo.discardPending();
    // the discard runs on its own; the next blobs go to a new draft
    for (const b of blobs(3, 512 * 1024)) await repo.saveBlob('data', b.id, b.plain);
    await repo.close();
    expect(drafts(dir)).toEqual([]);
    for await (const p of new LocalBackend(dir).list('data')) throw new Error(`unexpected pack ${p.name}`);
  });

  it('is kept in memory and saved whole where the backend takes no drafts', async () => {
    const backend: Backend = new MemoryBackend();
    expect(backend.createDraft).toBeUndefined();
    const repo = await Repository.init(backend, TEST_PASSWORD, { kdf: { N: 1024, r: 8, p: 1 } });
    const some = blobs(3, 512 * 1024);
    for (const b of some) await repo.saveBlob('data', b.id, b.plain);
    await repo.flush();
    for (const b of some) expect((await repo.loadBlob(b.id)).equals(b.plain)).toBe(true);
    await repo.close();
  });

  it.runIf(canRun(root0, 'root, to mount a small tmpfs'))(
    'fails with NO_SPACE when the disk fills under it, and the repository stays sound',
    async () => {
      const mount = join(scratch(), 'small');
      await onTmpfs(mount, '2m', async () => {
        const dir = join(mount, 'repo');
        const repo = await makeLocalRepo(dir);
        const err = await (async () => {
          for (const b of blobs(8, 512 * 1024)) await repo.saveBlob('data', b.id, b.plain);
          await repo.flush();
        })().catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'NO_SPACE' });
        await repo.close();
        expect(drafts(dir)).toEqual([]);
        await expectSound(dir);
      });
    },
  );
});

describe('bytes shared by several blobs (a sealed segment): given back once written', () => {
  const KiB = 1024;
  /** A SharedBytes for `n` blobs that records, when it is called, the bytes in the repository's drafts and packs. */
  function shared(n: number, dir: string): SharedBytes & { calls: number; bytesThen: number } {
    const s = {
      blobsLeft: n,
      calls: 0,
      bytesThen: 0,
      written: () => {
        s.calls++;
        s.bytesThen = drafts(dir).reduce((a, b) => a + b, 0) + packBytes(dir);
      },
    };
    return s;
  }

  function packBytes(dir: string): number {
    let n = 0;
    for (const sub of readdirSync(join(dir, 'data'))) {
      for (const f of readdirSync(join(dir, 'data', sub))) n += statSync(join(dir, 'data', sub, f)).size;
    }
    return n;
  }

  it('calls written() once every blob added with it is on disk, not before', async () => {
    const dir = join(scratch(), 'repo');
    await (await makeLocalRepo(dir)).close();
    const pack = new OpenPack(new LocalBackend(dir));
    const seg = shared(3, dir);
    for (const b of blobs(3, 512 * KiB)) {
      pack.add(b.id, 'data', b.plain, b.plain.length, 0, seg);
      await pack.settle();
    }
    // the first MiB is appended; the third blob waits in memory for the next append: not all written
    await until(() => (drafts(dir)[0] ?? 0) >= 1024 * KiB);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seg.calls).toBe(0);
    await pack.finish(randomBytes(32)).store();
    await until(() => seg.calls > 0);
    expect(seg.calls).toBe(1);
    expect(seg.bytesThen).toBeGreaterThanOrEqual(3 * 512 * KiB);
  });

  it('waits for every pack that holds one of its blobs', async () => {
    const dir = join(scratch(), 'repo');
    await (await makeLocalRepo(dir)).close();
    const backend = new LocalBackend(dir);
    const [a, b] = blobs(2, 64 * KiB) as [{ id: string; plain: Buffer }, { id: string; plain: Buffer }];
    const seg = shared(2, dir);
    const first = new OpenPack(backend);
    const second = new OpenPack(backend);
    first.add(a.id, 'data', a.plain, a.plain.length, 0, seg);
    second.add(b.id, 'data', b.plain, b.plain.length, 0, seg);
    await second.finish(randomBytes(32)).store();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seg.calls).toBe(0);
    await first.finish(randomBytes(32)).store();
    await until(() => seg.calls > 0);
    expect(seg.calls).toBe(1);
  });

  it('never calls written() where the pack is saved whole, nor after a failed write', async () => {
    const memory = new OpenPack(new MemoryBackend());
    const [a, b] = blobs(2, 64 * KiB) as [{ id: string; plain: Buffer }, { id: string; plain: Buffer }];
    const kept = shared(1, scratch());
    memory.add(a.id, 'data', a.plain, a.plain.length, 0, kept);
    await memory.finish(randomBytes(32)).store();

    const dir = join(scratch(), 'repo');
    await (await makeLocalRepo(dir)).close();
    const local = new LocalBackend(dir);
    // a disk that fails every append: the draft's bytes never land
    const failing = Object.create(local) as LocalBackend;
    const eio = Object.assign(new Error('I/O error'), { code: 'EIO' });
    failing.createDraft = (type) => {
      const d = local.createDraft(type);
      // as the contract says: a failed append fails the draft, and its commit throws that error
      return { append: () => Promise.reject(eio), commit: () => Promise.reject(eio), discard: () => d.discard() };
    };
    const broken = new OpenPack(failing);
    const lost = shared(1, dir);
    broken.add(b.id, 'data', b.plain, b.plain.length, 0, lost);
    await expect(broken.finish(randomBytes(32)).store()).rejects.toThrow();
    await broken.discard();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(kept.calls).toBe(0);
    expect(lost.calls).toBe(0);
  });
});
