/**
 * Reading from a repository that cannot be written — an offsite mount, an
 * append-only or locked copy, what disaster recovery reads from. list, check,
 * verify and restore work without a flag and say once that no lock could be
 * taken. Two ways a repository is read-only: a read-only bind mount (root; in a
 * mount namespace of the child's own, so nothing leaks onto this machine) and
 * directories without write permission (for anyone but root: run as nobody).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../src/backup/backup.js';
import { runCli, type CliRunOptions } from './cli-helpers.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { TEST_PASSWORD, makeLocalRepo } from './repo-helpers.js';
import { canRun } from './needs.js';

const NOBODY = 65534;
const NO_LOCK = /no repository lock could be taken/g;
let work: string;
let root: string;
let backupId: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-ro-'));
  chmodSync(work, 0o755);
  root = join(work, 'storage');
  createDatabase(join(root, 'core', 'core.db'), 200);
  mkdirSync(join(root, 'projects', 'p0'), { recursive: true });
  writeFileSync(join(root, 'projects', 'p0', 'project.json'), '{"id":"p0"}');
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A fresh repository holding one backup of `root`. */
async function makeRepoDir(name: string): Promise<string> {
  const dir = join(work, name);
  const repo = await makeLocalRepo(dir);
  backupId = (await backup(repo, { storageRoot: root, foleVersion: '1.0.0' })).backupId;
  return dir;
}

/**
 * list, check, verify, restore and a copy out of it each succeed, and each that would lock says once that it
 * could not.
 */
async function readEverything(repoDir: string, outDir: string, opts: CliRunOptions): Promise<void> {
  const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD, FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD };
  const offsite = join(outDir, 'offsite');
  const runs: [string, string[], boolean][] = [
    ['list', ['list', '--repo', repoDir], false],
    ['check', ['check', '--repo', repoDir, '--read-data'], true],
    ['verify', ['verify', 'latest', '--repo', repoDir], true],
    [
      'restore',
      [
        'restore',
        backupId,
        '--repo',
        repoDir,
        '--target',
        join(outDir, 'restored'),
        '--confirm',
        backupId,
        '--fole-version',
        '1.0.0',
      ],
      true,
    ],
    ['init --from-repo', ['init', '--repo', offsite, '--from-repo', repoDir], false],
    ['copy', ['copy', '--from-repo', repoDir, '--to-repo', offsite], true],
  ];
  for (const [what, args, locks] of runs) {
    const r = await runCli(args, env, opts);
    expect(r.code, `${what}: ${r.stderr}`).toBe(0);
    expect(r.stderr.match(NO_LOCK)?.length ?? 0, `${what}: ${r.stderr}`).toBe(locks ? 1 : 0);
  }
  expect(readdirSync(join(outDir, 'restored', 'projects', 'p0'))).toContain('project.json');
}

const mountOk = canRun(
  process.getuid?.() === 0 &&
    spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs none /mnt && umount /mnt']).status === 0,
  'root and mount namespaces (unshare -m)',
);

describe('a read-only repository', () => {
  it.runIf(mountOk)(
    'is read through a read-only bind mount (as root)',
    async () => {
      const repoDir = await makeRepoDir('repo-mount');
      const ro = join(work, 'ro-view');
      mkdirSync(ro);
      const out = join(work, 'out-mount');
      mkdirSync(out);
      // the child's own mount namespace: the read-only view exists only for it
      const wrapper = [
        'unshare',
        '-m',
        'sh',
        '-c',
        'mount --bind "$0" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"',
        repoDir,
        ro,
      ];
      const probe = spawnSync(
        wrapper[0] as string,
        [...wrapper.slice(1), 'sh', '-c', `touch ${JSON.stringify(join(ro, 'locks', 'x'))}`],
        { encoding: 'utf8' },
      );
      expect(probe.stderr).toMatch(/Read-only file system/);
      await readEverything(ro, out, { wrapper });
    },
    180_000,
  );

  it.runIf(canRun(process.getuid?.() === 0, 'root (to run as nobody)'))(
    'is read from directories without write permission (as nobody: root ignores permissions)',
    async () => {
      const repoDir = await makeRepoDir('repo-chmod');
      const out = join(work, 'out-chmod');
      mkdirSync(out);
      chownSync(out, NOBODY, NOBODY);
      // nobody owns the files (to read them) but may write in no directory of the repository
      const walk = (p: string): void => {
        chownSync(p, NOBODY, NOBODY);
        if (statSync(p).isDirectory()) {
          for (const e of readdirSync(p)) walk(join(p, e));
          chmodSync(p, 0o555);
        }
      };
      walk(repoDir);
      await readEverything(repoDir, out, { uid: NOBODY, gid: NOBODY });
    },
    180_000,
  );
});
