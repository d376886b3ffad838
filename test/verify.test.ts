/**
 * verifyBackup over a real local repository: a fresh backup is clean at every
 * level; a missing or truncated pack, a damaged snapshot object and a database
 * that fails integrity_check are each reported with their code and path; the
 * run keeps going after a problem; --read-data-subset reads about its share.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { StopError } from '../src/errors.js';
import { renderManifest } from '../src/manifest/manifest.js';
import { Repository } from '../src/repository/repository.js';
import type { Snapshot, TreeEntry } from '../src/snapshot/snapshot.js';
import { loadSnapshot, saveSnapshot } from '../src/snapshot/store.js';
import { readTree, TreeWriter } from '../src/snapshot/tree.js';
import { parsePercent, subsetScore } from '../src/verify/subset.js';
import { verifyBackup, verifyVerdict } from '../src/verify/verify-backup.js';
import { readBack, TEST_PASSWORD } from './repo-helpers.js';
import { makeFixture, type Fixture } from './verify-fixture.js';

let fx: Fixture;
const open: Repository[] = [];

async function fresh(): Promise<Repository> {
  const repo = await fx.open();
  open.push(repo);
  return repo;
}

async function treeOf(repo: Repository, backupId: string): Promise<TreeEntry[]> {
  const snap = await loadSnapshot(repo, backupId);
  const out: TreeEntry[] = [];
  for await (const e of readTree(repo, snap.tree)) out.push(e);
  return out;
}

/** A pack holding file data but none of the backup's file list, and a file that needs it. */
async function dataOnlyPack(): Promise<{ name: string; path: string; file: string }> {
  const repo = await fresh();
  const snap = await loadSnapshot(repo, fx.backupId);
  await repo.loadIndex();
  const treePacks = new Set(snap.tree.map((t) => repo.index.get(t)?.pack));
  for (const e of await treeOf(repo, fx.backupId)) {
    for (const c of e.chunks ?? []) {
      const pack = repo.index.get(c)?.pack as string;
      if (!treePacks.has(pack))
        return { name: pack, path: fx.packs().find((p) => basename(p) === pack) as string, file: e.path };
    }
  }
  throw new Error('fixture has no data-only pack');
}

beforeEach(async () => {
  fx = await makeFixture();
});

afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  fx.cleanup();
});

describe('verifyBackup', () => {
  it(
    'finds nothing wrong with a fresh backup, ' + 'with and without reading the data, and leaves no scratch files',
    async () => {
      const repo = await fresh();
      const quick = await verifyBackup(repo, 'latest');
      expect(quick.ok).toBe(true);
      expect(quick.problems).toEqual([]);
      expect(quick.backupId).toBe(fx.backupId);
      expect(quick.levels).toEqual(['manifest', 'index', 'tree', 'packs', 'render']);
      expect(quick.readData).toBe('none');
      expect(quick.counts.databases).toBe(3);
      expect(quick.counts.files).toBeGreaterThan(20);
      expect(quick.counts.packs).toBe(fx.packs().length);
      expect(quick.counts.bytesRead).toBe(0);
      expect(verifyVerdict(quick)).toBeUndefined();

      // the fingerprint is that of the manifest `fole-backup manifest` prints
      const hash = createHash('sha256');
      await renderManifest(repo, await loadSnapshot(repo, fx.backupId), (t) => void hash.update(t));
      expect(quick.manifestSha256).toBe(hash.digest('hex'));

      const scratchParent = mkdtempSync(join(tmpdir(), 'fole-verify-scratch-'));
      try {
        const full = await verifyBackup(await fresh(), fx.backupId, { readData: true, scratchParent });
        expect(full.ok).toBe(true);
        expect(full.levels).toContain('read-data');
        expect(full.counts.filesRead).toBe(full.counts.files);
        expect(full.counts.databasesChecked).toBe(3);
        expect(full.counts.bytesVerified).toBe(full.counts.bytes);
        const packBytes = fx.packs().reduce((s, p) => s + readFileSync(p).length, 0);
        expect(full.counts.bytesRead).toBeGreaterThanOrEqual(packBytes);
        expect(readdirSync(scratchParent)).toEqual([]);
      } finally {
        rmSync(scratchParent, { recursive: true, force: true });
      }
      // the shared lock is gone again
      expect(readdirSync(join(fx.repoDir, 'locks'))).toEqual([]);
    },
  );

  it('reports a missing pack from the index and a stat alone, without reading file data', async () => {
    const victim = await dataOnlyPack();
    unlinkSync(victim.path);
    let dataBytes = 0;
    class Counting extends LocalBackend {
      override async load(...args: Parameters<LocalBackend['load']>): Promise<Buffer> {
        const b = await super.load(...args);
        if (args[0].type === 'data') dataBytes += b.length;
        return b;
      }
    }
    const repo = await Repository.open(new Counting(fx.repoDir), TEST_PASSWORD);
    open.push(repo);
    const r = await verifyBackup(repo, fx.backupId);
    expect(r.ok).toBe(false);
    const p = r.problems.find((x) => x.kind === 'pack');
    expect(p).toMatchObject({ code: 'CHECKSUM_MISMATCH', object: `data/${victim.name}` });
    expect(p?.message).toMatch(/missing/);
    expect(p?.path).toBeDefined();
    // only the file list was read, never the content
    expect(dataBytes).toBeLessThan(r.counts.bytes / 10);
    const v = verifyVerdict(r);
    expect(v).toBeInstanceOf(StopError);
    expect(v?.code).toBe('CHECKSUM_MISMATCH');
  });

  it('reports a truncated pack, and with --read-data the files that need it', async () => {
    const victim = await dataOnlyPack();
    truncateSync(victim.path, Math.floor(readFileSync(victim.path).length / 2));
    const quick = await verifyBackup(await fresh(), fx.backupId);
    expect(quick.ok).toBe(false);
    expect(quick.problems.find((x) => x.kind === 'pack')?.message).toMatch(/too short/);

    const full = await verifyBackup(await fresh(), fx.backupId, { readData: true });
    expect(full.ok).toBe(false);
    expect(full.problems.some((x) => x.object === `data/${victim.name}`)).toBe(true);
    // every other file was still read and verified
    expect(full.counts.filesRead).toBeGreaterThan(0);
  });

  it('keeps going after the first problem, listing up to the limit and counting the rest', async () => {
    const repo = await fresh();
    await repo.loadIndex();
    const snap = await loadSnapshot(repo, fx.backupId);
    const treePacks = new Set(snap.tree.map((t) => repo.index.get(t)?.pack));
    const victims = fx.packs().filter((p) => !treePacks.has(basename(p)));
    expect(victims.length).toBeGreaterThanOrEqual(2);
    for (const v of victims) unlinkSync(v);
    const r = await verifyBackup(await fresh(), fx.backupId, { maxProblems: 1 });
    expect(r.problems).toHaveLength(1);
    expect(r.problemCount).toBeGreaterThanOrEqual(victims.length);
    expect(r.problemCodes.CHECKSUM_MISMATCH).toBe(r.problemCount);
    // the run still went through every level
    expect(r.levels).toEqual(['manifest', 'index', 'tree', 'packs', 'render']);
  });

  it('stops with MISSING_MANIFEST when the snapshot object is damaged', async () => {
    const file = join(fx.repoDir, 'snapshots', fx.backupId);
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0x10;
    writeFileSync(file, bytes);
    const r = await verifyBackup(await fresh(), fx.backupId, { readData: true });
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({
      code: 'MISSING_MANIFEST',
      kind: 'manifest',
      object: `snapshots/${fx.backupId}`,
    });
    expect(r.levels).toEqual([]);
    expect(verifyVerdict(r)?.code).toBe('MISSING_MANIFEST');
    // "latest" cannot even be resolved: every snapshot must load to know which is newest
    await expect(verifyBackup(await fresh(), 'latest')).rejects.toMatchObject({ code: 'MISSING_MANIFEST' });
  });

  it('stops with MISSING_MANIFEST for a backup id the repository does not have', async () => {
    await expect(verifyBackup(await fresh(), randomUUID())).rejects.toBeInstanceOf(StopError);
    await expect(verifyBackup(await fresh(), randomUUID())).rejects.toMatchObject({ code: 'MISSING_MANIFEST' });
  });

  it('reports DB_INTEGRITY_ERROR for a stored database whose restored copy is corrupt', async () => {
    // forge, with the key, a backup whose project.db hashes right but is not a sound database
    const repo = await fresh();
    const snap = await loadSnapshot(repo, fx.backupId);
    const entries = await treeOf(repo, fx.backupId);
    const db = entries.find((e) => e.path === 'projects/p1/project.db') as TreeEntry;
    const content = await readBack(repo, db);
    const pageSize = db.db?.pageSize ?? 4096;
    // scribble over the second page (a b-tree page) but keep the file's size and header
    for (let i = pageSize; i < 2 * pageSize; i++) content[i] = (i * 7919) & 0xff;
    const sha = createHash('sha256').update(content).digest('hex');
    const chunks: string[] = [];
    for (let o = 0; o < content.length; o += repo.config.dbChunkSize) {
      const piece = content.subarray(o, o + repo.config.dbChunkSize);
      const id = createHash('sha256').update(piece).digest('hex');
      await repo.saveBlob('data', id, piece);
      chunks.push(id);
    }
    const tree = new TreeWriter(repo);
    for (const e of entries) await tree.add(e === db ? { ...e, sha256: sha, chunks } : e);
    const treeIds = await tree.finish();
    await repo.flush();
    const forgedId = randomUUID();
    const forged: Snapshot = {
      ...snap,
      backupId: forgedId,
      manifest: {
        ...snap.manifest,
        backupId: forgedId,
        projects: snap.manifest.projects.map((p) => (p.projectId === 'p1' ? { ...p, projectDb: `sha256:${sha}` } : p)),
      },
      tree: treeIds,
      databases: snap.databases.map((d) => (d.path === db.path ? { ...d, sha256: sha } : d)),
    };
    await saveSnapshot(repo, forged);

    const structural = await verifyBackup(await fresh(), forgedId);
    expect(structural.problems).toEqual([]);
    const r = await verifyBackup(await fresh(), forgedId, { readData: true });
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({
      code: 'DB_INTEGRITY_ERROR',
      kind: 'database',
      path: 'projects/p1/project.db',
    });
    expect(r.counts.databasesChecked).toBe(3);
    expect(verifyVerdict(r)?.code).toBe('DB_INTEGRITY_ERROR');
  });
});

describe('verify --read-data-subset', () => {
  it('reads about the requested share of the files, the same ones for the same seed', async () => {
    fx.cleanup();
    fx = await makeFixture({ files: 400 });
    const repo = await fresh();
    const r = await verifyBackup(repo, fx.backupId, { readData: { percent: 10, seed: 'week-1' } });
    expect(r.ok).toBe(true);
    expect(r.readData).toBe('subset');
    expect(r.levels).toContain('read-data-subset');
    const total = r.counts.files;
    const picked = r.subset?.selectedFiles ?? 0;
    // a binomial draw: 10% of ~410 is 41, the bounds are more than 3 standard deviations away
    expect(picked).toBeGreaterThanOrEqual(total * 0.04);
    expect(picked).toBeLessThanOrEqual(total * 0.18);
    expect(r.counts.filesRead).toBe(picked);
    expect(r.counts.bytesVerified).toBe(r.subset?.selectedBytes);
    // only the chunks of those files were read (sealing adds 28 bytes per chunk; compression only shrinks)
    expect(r.counts.bytesRead).toBeLessThanOrEqual((r.subset?.selectedBytes ?? 0) + 28 * 8 * picked);

    const again = await verifyBackup(await fresh(), fx.backupId, { readData: { percent: 10, seed: 'week-1' } });
    expect(again.subset).toEqual(r.subset);
    const other = await verifyBackup(await fresh(), fx.backupId, { readData: { percent: 10, seed: 'week-2' } });
    expect(other.subset?.seed).toBe('week-2');
  });

  it('defaults the seed to the backup id and never checks nothing', async () => {
    const r = await verifyBackup(await fresh(), fx.backupId, { readData: { percent: 0.001 } });
    expect(r.subset).toMatchObject({ percent: 0.001, seed: fx.backupId, selectedFiles: 1 });
    expect(r.counts.filesRead).toBe(1);
  });

  it('scores paths uniformly and parses percentages', () => {
    const n = 20_000;
    let below = 0;
    for (let i = 0; i < n; i++) if (subsetScore('s', `projects/p/${i}.png`) < 0.25) below++;
    expect(below / n).toBeGreaterThan(0.23);
    expect(below / n).toBeLessThan(0.27);
    expect(parsePercent('10%')).toBe(10);
    expect(parsePercent('2.5')).toBe(2.5);
    expect(parsePercent('100%')).toBe(100);
    for (const bad of ['0%', '101%', '-5%', 'ten', '', '10%%']) expect(parsePercent(bad)).toBeUndefined();
  });
});
