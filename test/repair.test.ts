/**
 * Healing a damaged repository, over a real local repository damaged on disk: a flipped byte in a pack, a missing
 * pack, a deleted and an unreadable index file. What check finds is recorded so the next backup stores the data
 * again; repair moves damaged packs aside, rebuilds the index from the packs and leaves a repository that
 * `check --read-data` passes; restores of what was not affected stay byte-exact.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../src/backup/backup.js';
import { StopError } from '../src/errors.js';
import { prune } from '../src/prune/prune.js';
import { repair } from '../src/repair/repair.js';
import type { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restore/restore.js';
import { type CheckReport, checkRepository } from '../src/verify/check-repository.js';
import { verifyBackup } from '../src/verify/verify-backup.js';
import { treeOf, treeLines } from './restore-helpers.js';
import { fixturePerTest } from './verify-fixture.js';

const t = fixturePerTest({ packSize: 32 * 1024 });
const fresh = (): Promise<Repository> => t.fresh();

/** Every file of the repository with its SHA-256: what "nothing was written" compares. */
function repoState(): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      if (d.isDirectory()) walk(join(dir, d.name), `${rel}${d.name}/`);
      else if (!rel.startsWith('audit/') && !rel.startsWith('locks/'))
        out.push(
          `${rel}${d.name} ${createHash('sha256')
            .update(readFileSync(join(dir, d.name)))
            .digest('hex')}`,
        );
    }
  };
  walk(t.fx.repoDir, '');
  return out.sort();
}

/** The pack file holding the first chunk of a backup's file at `path`, and that chunk's place in it. */
async function packOf(backupId: string, path: string): Promise<{ file: string; offset: number; pack: string }> {
  const repo = await fresh();
  await repo.loadIndex();
  const e = (await treeOf(repo, backupId)).find((x) => x.path === path);
  const chunk = e?.chunks?.[0];
  const at = chunk === undefined ? undefined : repo.index.get(chunk);
  if (at === undefined) throw new Error(`no chunk for ${path}`);
  return { file: join(t.fx.repoDir, 'data', at.pack.slice(0, 2), at.pack), offset: at.offset, pack: at.pack };
}

function flipByte(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] = (b[at] ?? 0) ^ 0xff;
  writeFileSync(file, b);
}

/** A second backup with a file of its own (its own pack): what the damage will hit. */
async function backupWithNewFile(): Promise<string> {
  writeFileSync(join(t.fx.root, 'projects', 'p1', 'files', 'new.bin'), randomBytes(40_000));
  return (await backup(await fresh(), { storageRoot: t.fx.root, foleVersion: '1.0.0' })).backupId;
}

/** A second backup with a file of its own, and one byte of that file's chunk flipped where it is stored. */
async function damageNewFile(): Promise<{ second: string; damaged: { file: string; offset: number; pack: string } }> {
  const second = await backupWithNewFile();
  const damaged = await packOf(second, 'projects/p1/files/new.bin');
  flipByte(damaged.file, damaged.offset + 10);
  return { second, damaged };
}

/** `check --read-data` passes, reporting `backups` backups as known damage. */
async function expectKnownDamage(backups: number): Promise<CheckReport> {
  const report = await checkRepository(await fresh(), { readData: true });
  expect(report.problems).toEqual([]);
  expect(report.counts.knownDamageBackups).toBe(backups);
  return report;
}

async function restoreTo(backupId: string, name: string): Promise<string> {
  const target = join(t.fx.work, name);
  await restore(await fresh(), backupId, { target, confirm: backupId, foleVersion: '1.0.0' });
  return target;
}

describe('damage found by check is recorded, and the next backup stores the data again', () => {
  it('a flipped byte: check --read-data records it, a backup re-saves the blob, the new backup verifies', async () => {
    const damaged = await packOf(t.fx.backupId, 'projects/p1/files/big.bin');
    flipByte(damaged.file, damaged.offset + 10);

    const found = await checkRepository(await fresh(), { readData: true });
    expect(found.ok).toBe(false);
    expect(found.recorded).toMatch(/^[0-9a-f]{64}$/);
    // exactly the file whose chunk is damaged is blamed
    const blamed = found.problems.filter((p) => p.kind === 'snapshot');
    expect(blamed.map((p) => p.path)).toEqual(['projects/p1/files/big.bin']);
    // a second check finds the same damage, and records nothing new
    expect((await checkRepository(await fresh(), { readData: true })).recorded).toBeUndefined();

    // no command change: the next backup (incremental: big.bin is unchanged) stores the damaged chunk again
    const next = await backup(await fresh(), { storageRoot: t.fx.root, foleVersion: '1.0.0', incremental: true });
    const verified = await verifyBackup(await fresh(), next.backupId, { readData: true });
    expect(verified.problems).toEqual([]);
    // and the old backup is whole again: its chunk is read from the new copy
    const old = await verifyBackup(await fresh(), t.fx.backupId, { readData: true });
    expect(old.problems).toEqual([]);
    // prune leaves the recorded pack to repair
    await expect(prune(await fresh())).rejects.toThrow(/recorded as damaged or missing/);
  });

  it('verify --read-data records what it finds too, and a missing pack is recorded whole', async () => {
    const { second } = await damageNewFile();
    const v = await verifyBackup(await fresh(), second, { readData: true });
    expect(v.ok).toBe(false);
    expect(v.recorded).toMatch(/^[0-9a-f]{64}$/);
    expect((await verifyBackup(await fresh(), second, { readData: true })).recorded).toBeUndefined();
    const next = await backup(await fresh(), { storageRoot: t.fx.root, foleVersion: '1.0.0', incremental: true });
    expect((await verifyBackup(await fresh(), next.backupId, { readData: true })).problems).toEqual([]);
    expect((await verifyBackup(await fresh(), second, { readData: true })).problems).toEqual([]);

    // a pack that is gone: check records it whole, and the next backup does not count on it
    const gone = await packOf(t.fx.backupId, 'projects/p1/files/big.bin');
    unlinkSync(gone.file);
    expect((await checkRepository(await fresh())).recorded).toMatch(/^[0-9a-f]{64}$/);
    const after = await backup(await fresh(), { storageRoot: t.fx.root, foleVersion: '1.0.0', incremental: true });
    expect((await verifyBackup(await fresh(), after.backupId, { readData: true })).problems).toEqual([]);
  });
});

describe('repair', () => {
  it('does nothing to a sound repository, and a dry run writes nothing', async () => {
    const before = repoState();
    const dry = await repair(await fresh(), { dryRun: true });
    expect(dry).toMatchObject({ nothingToDo: true, dryRun: true, lostBlobs: 0, affected: [] });
    const real = await repair(await fresh());
    expect(real.nothingToDo).toBe(true);
    expect(repoState()).toEqual(before);
  });

  it('moves a damaged pack aside, salvages its sound blobs, and the next backup heals the file', async () => {
    const { second, damaged } = await damageNewFile();
    const before = repoState();

    const dry = await repair(await fresh(), { dryRun: true });
    expect(repoState()).toEqual(before);
    expect(dry.movedAside).toEqual([damaged.pack]);
    expect(dry.affected.map((a) => [a.backupId, a.files])).toEqual([[second, 1]]);
    expect(dry.affected[0]?.examples).toEqual([{ path: 'projects/p1/files/new.bin', heal: 'likely' }]);

    const r = await repair(await fresh());
    expect(r.movedAside).toEqual([damaged.pack]);
    expect(r.lostBlobs).toBe(1);
    expect(existsSync(damaged.file)).toBe(false);
    expect(readFileSync(join(t.fx.repoDir, 'quarantine', `data.${damaged.pack}`)).length).toBe(
      statSync(join(t.fx.repoDir, 'quarantine', `data.${damaged.pack}`)).size,
    );

    // check --read-data passes: the loss is known damage, reported and not failed on
    const after = await expectKnownDamage(1);
    expect(after.info.some((i) => i.kind === 'known-damage' && i.message.includes('projects/p1/files/new.bin'))).toBe(
      true,
    );
    // a restore of the affected backup is refused, naming why; the unaffected one is byte-exact
    await expect(restoreTo(second, 'second')).rejects.toThrow(StopError);
    const first = await restoreTo(t.fx.backupId, 'first');
    expect(treeLines(first, { ignoreRoot: true }).length).toBeGreaterThan(20);
    expect((await verifyBackup(await fresh(), t.fx.backupId, { readData: true })).problems).toEqual([]);

    // the next backup heals it: the old backup is whole again
    await backup(await fresh(), { storageRoot: t.fx.root, foleVersion: '1.0.0' });
    const healed = await checkRepository(await fresh(), { readData: true });
    expect(healed.problems).toEqual([]);
    expect(healed.counts.knownDamageBackups).toBe(0);
    const restored = await restoreTo(second, 'second-healed');
    expect(readFileSync(join(restored, 'projects/p1/files/new.bin'))).toEqual(
      readFileSync(join(t.fx.root, 'projects/p1/files/new.bin')),
    );
    // and a repair run again has nothing to do but replace the records of what is now healed
    await repair(await fresh());
    expect((await repair(await fresh())).nothingToDo).toBe(true);
  });

  it('a missing pack: its blobs are recorded lost, the index files naming it replaced', async () => {
    const second = await backupWithNewFile();
    const gone = await packOf(second, 'projects/p1/files/new.bin');
    unlinkSync(gone.file);
    const r = await repair(await fresh());
    expect(r.missingPacks).toEqual([gone.pack]);
    expect(r.indexFiles.removed).toBeGreaterThan(0);
    expect(r.affected.map((a) => a.backupId)).toEqual([second]);
    await expectKnownDamage(1);
    await prune(await fresh());
    expect((await checkRepository(await fresh(), { readData: true })).problems).toEqual([]);
  });

  it('a stale index: a deleted index file is rebuilt from the packs, an unreadable one moved aside', async () => {
    await backupWithNewFile();
    const [firstIndex, secondIndex] = t.fx.indexFiles();
    if (firstIndex === undefined || secondIndex === undefined) throw new Error('expected two index files');
    unlinkSync(firstIndex);
    writeFileSync(secondIndex, randomBytes(300));
    const stale = await checkRepository(await fresh());
    expect(stale.ok).toBe(false);

    const r = await repair(await fresh());
    expect(r.indexFiles.unreadable).toBe(1);
    expect(r.lostBlobs).toBe(0);
    expect(r.affected).toEqual([]);
    expect(readdirSync(join(t.fx.repoDir, 'quarantine'))).toEqual([`index.${secondIndex.split('/').pop()}`]);
    const after = await checkRepository(await fresh(), { readData: true });
    expect(after.problems).toEqual([]);
    expect(after.counts.orphanPacks).toBe(0);
    await restoreTo(t.fx.backupId, 'first');
  });

  it('an unreadable damage record is a STOP for what reads the index, and repair replaces it', async () => {
    mkdirSync(join(t.fx.repoDir, 'damage'), { recursive: true });
    const planted = join(t.fx.repoDir, 'damage', 'e'.repeat(64));
    writeFileSync(planted, randomBytes(200));
    await expect(backup(await fresh(), { storageRoot: t.fx.root, foleVersion: '1.0.0' })).rejects.toThrow(
      /damage\/e{64}.*|a damage record is damaged/,
    );
    const checked = await checkRepository(await fresh());
    expect(checked.problems.some((p) => p.message.includes('damage records'))).toBe(true);
    const r = await repair(await fresh());
    expect(r.recordsRemoved).toBe(1);
    expect(existsSync(planted)).toBe(false);
    expect((await checkRepository(await fresh(), { readData: true })).problems).toEqual([]);
    await backup(await fresh(), { storageRoot: t.fx.root, foleVersion: '1.0.0' });
  });

  it('a repair killed after its damage record: the repository stays usable and a second repair completes', async () => {
    const { second, damaged } = await damageNewFile();
    // stop it at its first write after the record: the salvage
    const controller = new AbortController();
    const repo = await fresh();
    const saveJson = repo.saveJson.bind(repo);
    repo.saveJson = async (...args) => {
      const name = await saveJson(...args);
      if (args[0] === 'damage') controller.abort();
      return name;
    };
    await expect(repair(repo, { signal: controller.signal })).rejects.toThrow();
    // unaffected backups still restore; the rest is refused, never read from the damaged pack
    await restoreTo(t.fx.backupId, 'first');
    await expect(restoreTo(second, 'second')).rejects.toThrow(/recorded as damaged|lost/);
    const r = await repair(await fresh());
    expect(r.movedAside).toEqual([damaged.pack]);
    expect((await checkRepository(await fresh(), { readData: true })).problems).toEqual([]);
    rmSync(join(t.fx.work, 'first'), { recursive: true, force: true });
  });
});
