/**
 * A repository inside the STORAGE_ROOT is refused even when it is reached
 * through a bind mount, where no comparison of paths can see it: the scan knows
 * the repository by device and inode. Needs root and a private mount namespace
 * (unshare -m); nothing is left mounted on the machine.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { makeTree } from './fixtures/make-tree.js';
import { TEST_PASSWORD, makeLocalRepo } from './repo-helpers.js';
import { canRun } from './needs.js';

const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-bindmount-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Run the CLI in a private mount namespace where `source` is bind-mounted on `target`. */
const withBind = (source: string, target: string) => ({
  wrapper: [
    'unshare',
    '-m',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mount --bind "$0" "$1" && shift && exec "$@"',
    source,
    target,
  ],
});

describe('a repository reached through a bind mount inside the STORAGE_ROOT', () => {
  it('is refused with exit 2 before anything is stored, and a plain backup of the same root works', async () => {
    const tree = await makeTree(
      { 'core/core.db': { db: ['CREATE TABLE t(x)'] }, 'projects/p1/project.json': '{}' },
      { root: join(work, 'storage') },
    );
    const repoDir = join(work, 'repo');
    await (await makeLocalRepo(repoDir)).close();
    const mountPoint = join(tree.root, 'projects', 'p1', 'backups');
    mkdirSync(mountPoint);
    const probe = await runCli(['--version'], env, withBind(repoDir, mountPoint));
    if (!canRun(probe.code === 0, 'root and mount namespaces (unshare -m)')) return;

    const r = await runCli(
      ['backup', '--repo', repoDir, '--storage-root', tree.root, '--fole-version', '1.0.0'],
      env,
      withBind(repoDir, mountPoint),
    );
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /projects\/p1\/backups in the STORAGE_ROOT is the repository .*reached another way \(a bind mount/,
    );
    expect(readdirSync(join(repoDir, 'snapshots'))).toEqual([]);

    const plain = await runCli(
      ['backup', '--repo', repoDir, '--storage-root', tree.root, '--fole-version', '1.0.0'],
      env,
    );
    expect(plain.code, plain.stderr).toBe(0);
  });
});
