/**
 * A small backed-up STORAGE_ROOT in a LOCAL repository, for verify and check
 * tests that damage the repository on disk: small packs and chunks so a few
 * hundred KB make several packs and multi-chunk files.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { backup } from '../src/backup/backup.js';
import { Repository } from '../src/repository/repository.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';

export interface Fixture {
  work: string;
  root: string;
  repoDir: string;
  backupId: string;
  /** A fresh handle (nothing cached: sees the repository as it is on disk now). */
  open(): Promise<Repository>;
  /** Absolute paths of every pack file. */
  packs(): string[];
  /** Absolute paths of every index file. */
  indexFiles(): string[];
  cleanup(): void;
}

const CHUNK = 64 * 1024;

export async function makeFixture(opts: { files?: number; packSize?: number } = {}): Promise<Fixture> {
  const work = mkdtempSync(join(tmpdir(), 'fole-verify-test-'));
  const root = join(work, 'storage');
  const repoDir = join(work, 'repo');
  const write = (rel: string, content: string | Buffer): void => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), content);
  };
  createDatabase(join(root, 'core', 'core.db'), 50);
  createDatabase(join(root, 'projects', 'p1', 'project.db'), 100);
  createDatabase(join(root, 'projects', 'p1', 'maps', 'm1', 'map.db'), 30, 'delete');
  write('templates/server-defaults.json', '{"theme":"light"}');
  write('modules/maps/module-settings.json', '{}');
  write('projects/p1/project.json', '{"id":"p1"}');
  write('projects/p1/files/big.bin', randomBytes(3 * CHUNK + 123));
  for (let i = 0; i < (opts.files ?? 20); i++)
    write(`projects/p1/files/f${String(i).padStart(4, '0')}.txt`, `file ${i}\n`.repeat(1 + (i % 7)));

  const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, {
    kdf: FAST_KDF,
    packSize: opts.packSize ?? 64 * 1024,
    fileChunkSize: CHUNK,
  });
  const r = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
  await repo.close();

  const listDeep = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
      d.isDirectory() ? listDeep(join(dir, d.name)) : [join(dir, d.name)],
    );
  return {
    work,
    root,
    repoDir,
    backupId: r.backupId,
    open: () => Repository.open(new LocalBackend(repoDir), TEST_PASSWORD),
    packs: () => listDeep(join(repoDir, 'data')).sort(),
    indexFiles: () => listDeep(join(repoDir, 'index')).sort(),
    cleanup: () => rmSync(work, { recursive: true, force: true }),
  };
}

/**
 * A new fixture for each test of the file (or describe) that calls it, removed after the test; `fresh()` opens a
 * handle that is closed after the test.
 */
export function fixturePerTest(opts: { files?: number; packSize?: number } = {}): {
  readonly fx: Fixture;
  fresh(): Promise<Repository>;
} {
  let current: Fixture | undefined;
  const open: Repository[] = [];
  beforeEach(async () => {
    current = await makeFixture(opts);
  });
  afterEach(async () => {
    for (const r of open.splice(0)) await r.close();
    current?.cleanup();
  });
  const world = {
    get fx(): Fixture {
      if (current === undefined) throw new Error('fixturePerTest: no test is running');
      return current;
    },
    async fresh(): Promise<Repository> {
      const repo = await world.fx.open();
      open.push(repo);
      return repo;
    },
  };
  return world;
}

/**
 * Remove the damage records check and verify wrote (src/repository/damage.ts): a test that undoes the damage it
 * made undoes what was recorded of it too, so the next test starts from a sound repository.
 */
export function clearDamageRecords(repoDir: string): void {
  const dir = join(repoDir, 'damage');
  if (existsSync(dir)) for (const name of readdirSync(dir)) rmSync(join(dir, name));
}
