/**
 * `fole-backup backup` as an operator runs it, on what an unlucky server
 * holds: a damaged upload that looks like SQLite (stored as it is, with a
 * warning; restored byte for byte), a damaged FOLE database (STOP), and a
 * repository or staging directory placed inside the STORAGE_ROOT (refused: it
 * would be backed up into itself).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { createDamagedDatabase } from './fixtures/sqlite-writer.js';
import { TEST_PASSWORD, makeLocalRepo } from './repo-helpers.js';
import { makeFoleTree } from './restore-helpers.js';

let work: string;
let root: string;
const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };

async function initRepo(dir: string): Promise<void> {
  const repo = await makeLocalRepo(dir);
  await repo.close();
}

const backupArgs = (repoDir: string, ...more: string[]): string[] => [
  'backup',
  '--repo',
  repoDir,
  '--storage-root',
  root,
  '--fole-version',
  '2.3.1',
  '--json',
  ...more,
];

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-cli-'));
  root = join(work, 'storage');
  makeFoleTree(root, { bigBytes: 1000 }).core.db.close();
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('backup of a tree with a damaged SQLite file', () => {
  it(
    'stores a damaged upload byte for byte with a warning naming it (exit 0), and restore gives the exact ' +
      'bytes back',
    async () => {
      const upload = 'projects/p1/files/upload.bin';
      createDamagedDatabase(join(root, upload));
      const bytes = readFileSync(join(root, upload));
      const repoDir = join(work, 'repo');
      await initRepo(repoDir);
      const b = await runCli(backupArgs(repoDir), env);
      expect(b.code, b.stderr).toBe(0);
      const result = JSON.parse(b.stdout) as { backupId: string; warnings: string[]; databases: number };
      expect(result.warnings.filter((w) => w.includes(upload))).toEqual([expect.stringContaining('damaged')]);
      expect(result.databases).toBe(4);
      const target = join(work, 'restored');
      const r = await runCli(
        [
          'restore',
          result.backupId,
          '--repo',
          repoDir,
          '--target',
          target,
          '--confirm',
          result.backupId,
          '--fole-version',
          '2.3.1',
        ],
        env,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(target, upload)).equals(bytes)).toBe(true);
    },
  );

  it("stops with DB_INTEGRITY_ERROR (exit 3) when FOLE's own project.db is damaged", async () => {
    createDamagedDatabase(join(root, 'projects', 'p1', 'project.db'));
    const repoDir = join(work, 'repo');
    await initRepo(repoDir);
    const b = await runCli(backupArgs(repoDir), env);
    expect(b.code, b.stderr).toBe(3);
    expect(b.stderr).toContain('STOP DB_INTEGRITY_ERROR');
    expect(b.stderr).toContain('projects/p1/project.db');
    expect(readdirSync(join(repoDir, 'snapshots'))).toEqual([]);
  });
});

describe('backup of a tree whose core.db is not a sound database', () => {
  const damage: [string, (file: string) => void][] = [
    ['is text', (f) => writeFileSync(f, 'hello\n')],
    [
      'is damaged in its first pages',
      (f) => {
        const bytes = readFileSync(f);
        bytes.fill(0x5a, 100, bytes.length);
        writeFileSync(f, bytes);
      },
    ],
  ];
  for (const [what, make] of damage) {
    it(`stops with DB_INTEGRITY_ERROR (exit 3) and a hint when core/core.db ${what}`, async () => {
      const file = join(root, 'core', 'core.db');
      for (const s of ['-wal', '-shm']) rmSync(file + s, { force: true });
      make(file);
      const repoDir = join(work, 'repo');
      await initRepo(repoDir);
      const b = await runCli(backupArgs(repoDir), env);
      expect(b.code, b.stderr).toBe(3);
      expect(b.stderr).toContain('STOP DB_INTEGRITY_ERROR');
      expect(b.stderr).toContain('core/core.db');
      expect(b.stderr).toContain('hint:');
      expect(readdirSync(join(repoDir, 'snapshots'))).toEqual([]);
    });
  }
});

describe('a repository or staging directory inside the STORAGE_ROOT', () => {
  /** Expect a usage error (exit 2) naming both paths, and no backup written. */
  async function expectRefused(args: string[], repoDir: string, names: string[]): Promise<void> {
    const b = await runCli(args, env);
    expect(b.code, b.stderr).toBe(2);
    expect(b.stderr).toContain('usage error');
    for (const n of names) expect(b.stderr).toContain(n);
    expect(readdirSync(join(repoDir, 'snapshots'))).toEqual([]);
  }

  it('refuses a repository inside the STORAGE_ROOT, also when reached through a symlink', async () => {
    const repoDir = join(root, 'backups', 'repo');
    mkdirSync(join(root, 'backups'));
    await initRepo(repoDir);
    await expectRefused(backupArgs(repoDir), repoDir, [repoDir, root]);
    const link = join(work, 'repo-link');
    symlinkSync(repoDir, link);
    await expectRefused(backupArgs(link), repoDir, [repoDir, root]);
  });

  it('refuses a STORAGE_ROOT inside the repository', async () => {
    const repoDir = join(work, 'repo');
    await initRepo(repoDir);
    const inner = join(repoDir, 'fole');
    makeFoleTree(inner, { bigBytes: 10 }).core.db.close();
    const b = await runCli(['backup', '--repo', repoDir, '--storage-root', inner, '--fole-version', '2.3.1'], env);
    expect(b.code, b.stderr).toBe(2);
    expect(b.stderr).toContain(inner);
    expect(readdirSync(join(repoDir, 'snapshots'))).toEqual([]);
  });

  it('refuses a --staging-dir inside the STORAGE_ROOT', async () => {
    const repoDir = join(work, 'repo');
    await initRepo(repoDir);
    const staging = join(root, 'staging');
    mkdirSync(staging);
    await expectRefused(backupArgs(repoDir, '--staging-dir', staging), repoDir, [staging, root]);
    expect(readdirSync(staging)).toEqual([]);
  });
});

describe('--quiet', () => {
  /** The symlink out of the tree that makeFoleTree plants, which a backup warns about. */
  const OUTSIDE_LINK = 'projects/p1/files/outside-link';

  /** A quiet backup into a new repository: it succeeds and prints nothing on stdout. */
  async function quietBackup(repoDir: string): Promise<{ stderr: string }> {
    await initRepo(repoDir);
    const b = await runCli(quietArgs(repoDir), env);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toBe('');
    return b;
  }
  const quietArgs = (repoDir: string): string[] =>
    backupArgs(repoDir)
      .filter((a) => a !== '--json')
      .concat('-q');

  it('prints nothing at all when a backup succeeds cleanly, yet list still prints its table', async () => {
    rmSync(join(root, OUTSIDE_LINK));
    const repoDir = join(work, 'repo');
    expect((await quietBackup(repoDir)).stderr).toBe('');
    const l = await runCli(['list', '--repo', repoDir, '-q'], env);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toMatch(/1 backups?:/);
  });

  it('still says a warning (on stderr) and prints the summary with --json', async () => {
    const repoDir = join(work, 'repo');
    const b = await quietBackup(repoDir);
    expect(b.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^fole-backup: warning: SECURITY: symlink "projects\/p1\/files\/outside-link"/),
    ]);
    const j = await runCli([...quietArgs(repoDir), '--json'], env);
    expect(JSON.parse(j.stdout)).toHaveProperty('backupId');
  });
});
