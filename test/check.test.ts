/**
 * checkRepository over a real local repository: clean after a backup; a
 * deleted index file, a missing or truncated pack, a damaged index file and a
 * header that disagrees with the index are problems naming what is affected;
 * orphaned packs, duplicate blobs and stale locks are info that does not fail it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultInjectingBackend } from '../src/backend/fault.js';
import { LocalBackend } from '../src/backend/local.js';
import { backup } from '../src/backup/backup.js';
import { StopError } from '../src/errors.js';
import { AAD } from '../src/repository/format.js';
import { RepositoryLock } from '../src/repository/lock.js';
import { decodeIndexFile, encodeIndexFile } from '../src/repository/master-index.js';
import { decompressAny } from '../src/repository/compress.js';
import { Repository } from '../src/repository/repository.js';
import { checkRepository, checkVerdict } from '../src/verify/check-repository.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { treeOf } from './restore-helpers.js';
import { makeFixture, type Fixture } from './verify-fixture.js';

let fx: Fixture;
const open: Repository[] = [];

async function fresh(): Promise<Repository> {
  const repo = await fx.open();
  open.push(repo);
  return repo;
}

/** A second backup that adds new content (its own packs and index file). */
async function secondBackup(): Promise<string> {
  writeFileSync(join(fx.root, 'projects', 'p1', 'files', 'new.bin'), randomBytes(100_000));
  const repo = await fresh();
  return (await backup(repo, { storageRoot: fx.root, foleVersion: '1.0.0' })).backupId;
}

beforeEach(async () => {
  fx = await makeFixture();
});

afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  fx.cleanup();
});

describe('checkRepository', () => {
  it('finds a fresh repository consistent, with and without reading every pack', async () => {
    const quick = await checkRepository(await fresh());
    expect(quick.problems).toEqual([]);
    expect(quick.ok).toBe(true);
    expect(quick.levels).toEqual(['config', 'keys', 'locks', 'index', 'packs', 'snapshots']);
    expect(quick.counts).toMatchObject({
      keys: 1,
      snapshots: 1,
      indexFiles: 1,
      packs: fx.packs().length,
      orphanPacks: 0,
      duplicateBlobs: 0,
      packsRead: 0,
    });
    expect(quick.counts.treeEntries).toBeGreaterThan(20);
    expect(checkVerdict(quick)).toBeUndefined();

    const full = await checkRepository(await fresh(), { readData: true });
    expect(full.problems).toEqual([]);
    expect(full.levels).toContain('read-data');
    expect(full.counts.packsRead).toBe(fx.packs().length);
    expect(full.counts.blobsRead).toBe(full.counts.blobs);
    const packBytes = fx.packs().reduce((s, p) => s + readFileSync(p).length, 0);
    expect(full.counts.bytesRead).toBeGreaterThanOrEqual(packBytes);
  });

  it('reports the blobs of a backup whose index file was deleted as missing, naming that backup', async () => {
    const firstIndex = fx.indexFiles();
    const second = await secondBackup();
    const added = fx.indexFiles().filter((f) => !firstIndex.includes(f));
    expect(added).toHaveLength(1);
    unlinkSync(added[0] as string);

    const r = await checkRepository(await fresh());
    expect(r.ok).toBe(false);
    const missing = r.problems.filter((p) => p.backupId === second);
    expect(missing.length).toBeGreaterThan(0);
    expect(missing[0]).toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(missing[0]?.message).toMatch(/not in the index/);
    // the first backup is untouched, and the second's packs are now orphans
    expect(r.problems.every((p) => p.backupId !== fx.backupId)).toBe(true);
    expect(r.info.some((i) => i.kind === 'orphan-pack')).toBe(true);
    expect(checkVerdict(r)).toBeInstanceOf(StopError);
  });

  it('reports a missing pack and every backup that needs it', async () => {
    const victim = fx.packs()[0] as string;
    unlinkSync(victim);
    const r = await checkRepository(await fresh());
    expect(r.ok).toBe(false);
    const name = victim.split('/').pop() as string;
    expect(r.problems).toContainEqual(
      expect.objectContaining({ code: 'CHECKSUM_MISMATCH', kind: 'pack', object: `data/${name}` }),
    );
    expect(r.problems.some((p) => p.backupId === fx.backupId)).toBe(true);
  });

  it('blames exactly the files that use a damaged blob, not every file with data in its pack', async () => {
    writeFileSync(join(fx.root, 'projects', 'p1', 'files', 'companion.bin'), randomBytes(20_000));
    const second = await secondBackup();
    const repo = await fresh();
    const tree = await treeOf(repo, second);
    const packOf = (path: string) => repo.index.get(tree.find((e) => e.path === path)?.chunks?.[0] as string);
    const chunk = packOf('projects/p1/files/new.bin');
    if (chunk === undefined) throw new Error('new.bin has no indexed chunk');
    // the damaged pack holds another file of the same backup, which must not be blamed
    expect(packOf('projects/p1/files/companion.bin')?.pack).toBe(chunk.pack);
    const pack = fx.packs().find((p) => p.endsWith(chunk.pack)) as string;
    const bytes = readFileSync(pack);
    bytes[chunk.offset + 20] = (bytes[chunk.offset + 20] ?? 0) ^ 1;
    writeFileSync(pack, bytes);
    const r = await checkRepository(await fresh(), { readData: true });
    const blamed = r.problems.filter((p) => p.backupId !== undefined);
    expect(blamed).toEqual([
      expect.objectContaining({
        backupId: second,
        path: 'projects/p1/files/new.bin',
        message: expect.stringMatching(/: 1 file needs damaged data/),
      }),
    ]);
  });

  it('reads a share of the packs drawn from a seed, the same packs for the same seed, at least one', async () => {
    await secondBackup();
    const packs = fx.packs().length;
    const read = async (percent: number, seed: string) => {
      const r = await checkRepository(await fresh(), { readDataSubset: { percent, seed } });
      expect(r.ok, JSON.stringify(r.problems)).toBe(true);
      expect(r.subset?.packs).toBe(r.counts.packsRead);
      return r.counts.packsRead;
    };
    expect(await read(100, 'a')).toBe(packs);
    expect(await read(0.001, 'a')).toBe(1);
    const half = await read(50, 'week-1');
    expect(await read(50, 'week-1')).toBe(half);
    // a damaged pack is found by the seeds that draw it
    const victim = fx.packs()[0] as string;
    const bytes = readFileSync(victim);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 1;
    writeFileSync(victim, bytes);
    const all = await checkRepository(await fresh(), { readDataSubset: { percent: 100, seed: 'x' } });
    expect(all.ok).toBe(false);
  });

  it('reports a truncated pack from its size alone', async () => {
    const victim = fx.packs()[1] as string;
    truncateSync(victim, readFileSync(victim).length - 1);
    const r = await checkRepository(await fresh());
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ code: 'CHECKSUM_MISMATCH', kind: 'pack' });
    expect(r.problems[0]?.message).toMatch(/truncated/);
    expect(r.counts.bytesRead).toBeLessThan(readFileSync(victim).length); // only index files were read
  });

  it('reports a damaged index file and says the file lists could not be checked', async () => {
    const file = fx.indexFiles()[0] as string;
    const bytes = readFileSync(file);
    bytes[20] = (bytes[20] ?? 0) ^ 0x01;
    writeFileSync(file, bytes);
    const r = await checkRepository(await fresh());
    expect(r.ok).toBe(false);
    expect(r.problems.filter((p) => p.kind === 'index').map((p) => p.code)).toContain('CHECKSUM_MISMATCH');
    expect(r.info.some((i) => i.kind === 'not-checked')).toBe(true);
    expect(checkVerdict(r)?.code).toBe('CHECKSUM_MISMATCH');
  });

  it('compares each pack header with the index when reading the data', async () => {
    // rewrite the index so it misdescribes one blob (its raw length), keeping everything else
    const repo = await fresh();
    const [indexFile] = fx.indexFiles();
    const name = (indexFile as string).split('/').pop() as string;
    const stored = await repo.backend.load({ type: 'index', name });
    const packs = decodeIndexFile(
      JSON.parse(decompressAny(repo.openBytes(stored, name, AAD.index), name).toString('utf8')),
      name,
    );
    const target = packs[0];
    const blob = target?.blobs[0];
    if (target === undefined || blob === undefined) throw new Error('empty index');
    blob.rawLength += 1;
    await repo.saveJson('index', encodeIndexFile(packs), AAD.index);
    unlinkSync(indexFile as string);

    const quick = await checkRepository(await fresh());
    expect(quick.problems.filter((p) => p.kind === 'pack')).toEqual([]);
    const full = await checkRepository(await fresh(), { readData: true });
    expect(full.ok).toBe(false);
    expect(full.problems).toContainEqual(expect.objectContaining({ kind: 'pack', object: `data/${target.name}` }));
    expect(full.problems.find((p) => p.object === `data/${target.name}`)?.message).toMatch(
      /header disagrees with index/,
    );
  });

  it('reports orphaned packs, duplicate blobs and stale locks as info without failing', async () => {
    // an interrupted backup: its packs are saved, its index file never is
    writeFileSync(join(fx.root, 'projects', 'p1', 'files', 'crash.bin'), randomBytes(80_000));
    const faulty = new FaultInjectingBackend(new LocalBackend(fx.repoDir)).failSaveWith(
      'ENOSPC',
      (h) => h.type === 'index',
    );
    const crashing = await Repository.open(faulty, TEST_PASSWORD);
    open.push(crashing);
    await expect(backup(crashing, { storageRoot: fx.root, foleVersion: '1.0.0' })).rejects.toMatchObject({
      code: 'NO_SPACE',
    });

    // two handles that each think they are the first to store new.bin: it ends up in two packs
    const stale = await fresh();
    await stale.loadIndex();
    await secondBackup();
    await backup(stale, { storageRoot: fx.root, foleVersion: '1.0.0' });

    // a lock left by a process on another host whose lease ran out long ago
    const old = new Date(Date.now() - 3 * 3600_000).toISOString();
    await (await fresh()).saveJson(
      'locks',
      {
        exclusive: false,
        operation: 'backup',
        host: 'gone.example',
        pid: 4242,
        username: 'ops',
        createdAt: old,
        refreshedAt: old,
        leaseMs: 300_000,
      },
      AAD.lock,
      'a'.repeat(32),
    );

    const r = await checkRepository(await fresh(), { readData: true });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.counts.orphanPacks).toBeGreaterThan(0);
    expect(r.counts.duplicateBlobs).toBeGreaterThan(0);
    const kinds = new Set(r.info.map((i) => i.kind));
    expect(kinds).toEqual(new Set(['orphan-pack', 'duplicate-blobs', 'stale-lock']));
    expect(checkVerdict(r)).toBeUndefined();
  });

  it('refuses to run while an exclusive lock is held, and releases its own shared lock', async () => {
    const holder = await fresh();
    const lock = await RepositoryLock.acquire(holder, { exclusive: true, operation: 'prune' });
    try {
      await expect(checkRepository(await fresh())).rejects.toMatchObject({ code: 'REPO_LOCKED' });
    } finally {
      await lock.release();
    }
    await checkRepository(await fresh());
    const again = await RepositoryLock.acquire(holder, { exclusive: true, operation: 'prune' });
    await again.release();
  });
});
