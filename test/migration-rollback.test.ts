/**
 * Migration rollback (src/restore/migration-rollback.ts): the newest VERIFIED backup tagged for the
 * migration is restored through the normal restore protocol; a damaged newer
 * one is passed over and named; nothing happens without the exact confirmation.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { backup } from '../src/backup/backup.js';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { migrationRollback } from '../src/restore/migration-rollback.js';
import { loadSnapshot } from '../src/snapshot/store.js';
import type { RestoreResult } from '../src/restore/execute.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';

let work: string;
let root: string;
let repoDir: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-migr-'));
  root = join(work, 'storage');
  repoDir = join(work, 'repo');
  createDatabase(join(root, 'core', 'core.db'), 10);
  mkdirSync(join(root, 'projects', 'p1'), { recursive: true });
  writeFileSync(join(root, 'projects', 'p1', 'project.json'), '{"v":1}');
});

afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('migration rollback', () => {
  it('stops when no backup carries the tag', async () => {
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
    await backup(repo, { storageRoot: root, foleVersion: '2.0.0' });
    await expect(migrationRollback(repo, '42', { target: root, foleVersion: '2.0.0' })).rejects.toMatchObject({
      code: 'MISSING_MANIFEST',
    });
  });

  it('names the backup it chose and waits for that exact confirmation', async () => {
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
    const tagged = await backup(repo, { storageRoot: root, foleVersion: '2.0.0', tags: ['pre-migration:42'] });
    await backup(repo, { storageRoot: root, foleVersion: '2.0.0', tags: ['pre-migration:41'] });
    const err = await migrationRollback(repo, '42', { target: root, foleVersion: '2.0.0' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AMBIGUOUS_INTENT', message: expect.stringContaining(tagged.backupId) });
    expect(readFileSync(join(root, 'projects', 'p1', 'project.json'), 'utf8')).toBe('{"v":1}');
  });

  it('passes over a newer tagged backup that fails verification and restores the newest verified one', async () => {
    const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
    const good = await backup(repo, { storageRoot: root, foleVersion: '2.0.0', tags: ['pre-migration:7'] });
    // a newer tagged backup whose only new data then gets damaged on disk
    writeFileSync(join(root, 'projects', 'p1', 'unique.bin'), randomBytes(200_000));
    const bad = await backup(repo, { storageRoot: root, foleVersion: '2.0.0', tags: ['pre-migration:7'] });
    const fresh = await Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);
    await fresh.loadIndex();
    const packs = new Set<string>();
    for (const e of fresh.index.entries()) packs.add(e.pack);
    const before = new Set<string>();
    // packs written by the first backup are those its tree blobs live in: the bad backup added at least one more
    for (const id of (await loadSnapshot(fresh, good.backupId)).tree) before.add(fresh.index.get(id)?.pack ?? '');
    const newer = [...packs].filter((p) => !before.has(p));
    expect(newer.length).toBeGreaterThan(0);
    for (const p of newer) {
      const file = join(repoDir, 'data', p.slice(0, 2), p);
      const bytes = readFileSync(file);
      const at = Math.floor(bytes.length / 3);
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0x10, at);
      writeFileSync(file, bytes);
    }
    // the migration broke the live tree
    writeFileSync(join(root, 'projects', 'p1', 'project.json'), '{"v":"migrated"}');
    const target = root;
    const r = await migrationRollback(fresh, '7', { target, foleVersion: '2.0.0', confirm: good.backupId });
    expect(r.backupId).toBe(good.backupId);
    expect(r.passedOver.map((p) => p.backupId)).toEqual([bad.backupId]);
    const restored = r.restore as RestoreResult;
    expect(restored.previousTree).not.toBeNull();
    expect(readFileSync(join(target, 'projects', 'p1', 'project.json'), 'utf8')).toBe('{"v":1}');
    expect(() => readFileSync(join(target, 'projects', 'p1', 'unique.bin'))).toThrow();
  });
});
