/**
 * A backup may never write what its own reader refuses, and a repository that
 * already holds an unreadable snapshot (written by an older build, damaged on
 * disk, emptied) still lists, forgets, backs up incrementally and restores.
 */
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { backup } from '../src/backup/backup.js';
import { Repository } from '../src/repository/repository.js';
import { AAD } from '../src/repository/format.js';
import { loadSnapshot, saveSnapshot } from '../src/snapshot/store.js';
import { runCli } from './cli-helpers.js';
import { makeTree } from './fixtures/make-tree.js';
import { TEST_PASSWORD, makeLocalRepo } from './repo-helpers.js';
import { canRun } from './needs.js';

const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
let work: string;
let repoDir: string;
let root: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-poison-'));
  repoDir = join(work, 'repo');
  const repo = await makeLocalRepo(repoDir);
  await repo.close();
  root = await tree();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function tree(): Promise<string> {
  const t = await makeTree(
    {
      'core/core.db': {
        db: ['CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)', "INSERT INTO users(name) VALUES ('ann')"],
      },
      'projects/p1/project.json': '{"id":"p1"}',
    },
    { root: join(work, 'storage') },
  );
  return t.root;
}

const cli = (...args: string[]) => runCli([...args, '--repo', repoDir], env);

describe('values a backup records are checked where they enter', () => {
  it('refuses every value its reader or a restore would refuse, with exit 2, and writes nothing', async () => {
    const before = readdirSync(join(repoDir, 'snapshots')).length;
    const cases: [string[], RegExp][] = [
      [['--fole-version', '2.3.1\r'], /carriage return .*Windows line endings/],
      [['--fole-version', '2.3'], /not a version MAJOR\.MINOR\.PATCH/],
      [['--fole-version', 'garbage'], /not a version/],
      [['--fole-version', '2.3.1+build.5'], /not a version/],
      [['--fole-version', `2.3.1-${'a'.repeat(130)}`], /at most 128/],
      [['--fole-version', '2.3.1-be\u001b[2Jta'], /escape/],
      [['--fole-version', '2.3.1', '--actor', 'x'.repeat(257)], /257 characters long, at most 256/],
      [['--fole-version', '2.3.1', '--actor', 'ann\nSECURITY: fake'], /line feed/],
      [['--fole-version', '2.3.1', '--tag', 't'.repeat(300)], /at most 256/],
      [['--fole-version', '2.3.1', '--tag', 'ok', '--tag', 'bad\u202etag'], /U\+202E/],
      [['--fole-version', '2.3.1', '--tag', ''], /empty/],
    ];
    for (const [flags, message] of cases) {
      const r = await cli('backup', '--storage-root', root, ...flags);
      expect(r.code, `${JSON.stringify(flags)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(readdirSync(join(repoDir, 'snapshots')).length).toBe(before);
    // the environment is an entry too
    const viaEnv = await runCli(['backup', '--storage-root', root, '--repo', repoDir], {
      ...env,
      FOLE_VERSION: '2.3.1\r',
    });
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.stderr).toMatch(/FOLE_VERSION/);
  });

  it('accepts a pre-release version, and a restore accepts that backup', async () => {
    const r = await cli('backup', '--storage-root', root, '--fole-version', '2.4.0-rc.1', '--json');
    expect(r.code, r.stderr).toBe(0);
    const id = (JSON.parse(r.stdout) as { backupId: string }).backupId;
    const target = join(work, 'restored-rc');
    const plan = await cli('restore', id, '--target', target, '--fole-version', '2.4.0', '--dry-run');
    expect(plan.code, plan.stderr).toBe(0);
    const older = await cli('restore', id, '--target', target, '--fole-version', '2.4.0-beta', '--dry-run');
    expect(older.code).toBe(3);
    expect(older.stderr).toMatch(/VERSION_MISMATCH/);
    // a target version that is no version at all is a typo: a usage error, as for backup
    for (const args of [
      ['--fole-version', '2.4'],
      ['--fole-version', '2.4.0\r'],
    ]) {
      const typo = await cli('restore', id, '--target', target, ...args, '--dry-run');
      expect(typo.code, typo.stderr).toBe(2);
    }
    const viaEnv = await runCli(['restore', id, '--target', target, '--dry-run', '--repo', repoDir], {
      ...env,
      FOLE_VERSION: 'v2.4.0',
    });
    expect(viaEnv.code).toBe(2);
    expect(viaEnv.stderr).toMatch(/FOLE_VERSION/);
    const migration = await cli(
      'migration-rollback',
      '1\u001b[2J',
      '--target',
      target,
      '--fole-version',
      '2.4.0',
      '--dry-run',
    );
    expect(migration.code).toBe(2);
    expect(migration.stderr).toMatch(/invalid migration id .*escape/);
  });

  it("runs the reader's own validator on a snapshot before writing it", async () => {
    const repo = await Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);
    try {
      // the library is an entry as well: a caller that skips the CLI is refused the same way
      await expect(backup(repo, { storageRoot: root, foleVersion: '1.0.0\r' })).rejects.toMatchObject({
        code: 'USAGE',
      });
      // and a value the entry rules let through but the reader refuses never reaches the repository
      const ok = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
      const snap = await loadSnapshot(repo, ok.backupId);
      const forged = { ...snap, warnings: ['x'.repeat(70 * 1024)] };
      await expect(saveSnapshot(repo, forged)).rejects.toMatchObject({
        code: 'INTERNAL',
        message: expect.stringMatching(/reader/),
      });
      expect((await loadSnapshot(repo, ok.backupId)).warnings).toEqual(snap.warnings);
    } finally {
      await repo.close();
    }
  });
});

describe('values that come from the host or a stored backup', () => {
  it('checks the default actor (user@host): a host name can hold anything', async () => {
    const python =
      'import socket, os, sys\n' +
      'socket.sethostname(b"evil\\nhost\\x1b[2J")\n' +
      'os.execvp(sys.argv[1], sys.argv[1:])';
    const probe = await runCli(['--version'], env, { wrapper: ['unshare', '-u', 'python3', '-c', python] });
    if (!canRun(probe.code === 0, 'UTS namespaces (unshare -u) and python3')) return;
    const r = await runCli(['backup', '--storage-root', root, '--repo', repoDir, '--fole-version', '1.0.0'], env, {
      wrapper: ['unshare', '-u', 'python3', '-c', python],
    });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/the default actor \(user@host; give --actor instead\) .* line feed/);
    const named = await runCli(
      ['backup', '--storage-root', root, '--repo', repoDir, '--fole-version', '1.0.0', '--actor', 'ann'],
      env,
      { wrapper: ['unshare', '-u', 'python3', '-c', python] },
    );
    expect(named.code, named.stderr).toBe(0);
  });

  it('refuses a --keep-tag no backup can carry, and shows a stored root path with a line break escaped', async () => {
    const tag = await cli('forget', '--keep-last', '5', '--keep-tag', 'x\ny', '--save-policy', '--dry-run');
    expect(tag.code).toBe(2);
    expect(tag.stderr).toMatch(/--keep-tag .* line feed/);

    const odd = await makeTree({ 'core/core.db': { db: ['CREATE TABLE t(x)'] } }, { root: join(work, 'ro\not\r') });
    const b = await cli('backup', '--storage-root', odd.root, '--fole-version', '1.0.0', '--json');
    expect(b.code, b.stderr).toBe(0);
    const id = (JSON.parse(b.stdout) as { backupId: string }).backupId;
    const plan = await cli(
      'restore',
      id,
      '--target',
      join(work, 'restored-odd'),
      '--fole-version',
      '1.0.0',
      '--dry-run',
    );
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('ro\\not\\r');
    expect(plan.stdout.split('\n').some((l) => l.startsWith('ot'))).toBe(false);
  });
});

describe('the FOLE version recorded in the STORAGE_ROOT', () => {
  it('is used when none is given, checked by the same rule, and never read through a symlink', async () => {
    const t = await makeTree(
      {
        'core/core.db': { db: ['CREATE TABLE t(x)'] },
        'config/server.json': JSON.stringify({ listen: ':8080', foleVersion: '2.5.0' }),
      },
      { root: join(work, 'recorded') },
    );
    const noEnv = { ...env, FOLE_VERSION: '' };
    const r = await runCli(['backup', '--storage-root', t.root, '--repo', repoDir, '--json'], noEnv);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/FOLE version 2\.5\.0 \(from config\/server\.json\)/);
    const id = (JSON.parse(r.stdout) as { backupId: string }).backupId;
    const m = await runCli(['manifest', id, '--repo', repoDir], env);
    expect(JSON.parse(m.stdout)).toMatchObject({ foleVersion: '2.5.0' });

    writeFileSync(t.path('config/server.json'), `\uFEFF${JSON.stringify({ foleVersion: '2.5.1' })}`);
    const bom = await runCli(['backup', '--storage-root', t.root, '--repo', repoDir], noEnv);
    expect(bom.code, bom.stderr).toBe(0);
    expect(bom.stderr).toMatch(/FOLE version 2\.5\.1/);

    for (const [content, message] of [
      [JSON.stringify({ foleVersion: '2.5.0\r' }), /carriage return/],
      [JSON.stringify({ foleVersion: 25 }), /not a string/],
      ['{not json', /not JSON/],
    ] as const) {
      writeFileSync(t.path('config/server.json'), content);
      const bad = await runCli(['backup', '--storage-root', t.root, '--repo', repoDir], noEnv);
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toMatch(message);
    }
    rmSync(t.path('config/server.json'));
    symlinkSync(join(work, 'elsewhere.json'), t.path('config/server.json'));
    writeFileSync(join(work, 'elsewhere.json'), JSON.stringify({ foleVersion: '9.9.9' }));
    const link = await runCli(['backup', '--storage-root', t.root, '--repo', repoDir], noEnv);
    expect(link.code).toBe(2);
    expect(link.stderr).toMatch(/symlink/);
    rmSync(t.path('config/server.json'));
    const none = await runCli(['backup', '--storage-root', t.root, '--repo', repoDir], noEnv);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no FOLE version given/);
  });
});

describe('a repository holding an unreadable snapshot', () => {
  let good: string;
  let poisoned: string;
  let emptied: string;

  beforeAll(async () => {
    const repo = await Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);
    try {
      good = (await backup(repo, { storageRoot: root, foleVersion: '1.0.0' })).backupId;
      // what an older build wrote for `--fole-version "$(cat VERSION)"` with a CRLF file
      const base = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
      const snap = await loadSnapshot(repo, base.backupId);
      snap.manifest.foleVersion = '1.0.0\r';
      await repo.saveJson('snapshots', snap, AAD.snapshot(snap.backupId), snap.backupId);
      poisoned = snap.backupId;
      // and one emptied by a damaged disk
      emptied = (await backup(repo, { storageRoot: root, foleVersion: '1.0.0' })).backupId;
    } finally {
      await repo.close();
    }
    writeFileSync(join(repoDir, 'snapshots', emptied), '');
  });

  it('lists what it can and marks the damaged ones', async () => {
    const r = await cli('list', '--json');
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { backupId: string; damaged?: string }[];
    expect(rows.find((x) => x.backupId === good)?.damaged).toBeUndefined();
    expect(rows.find((x) => x.backupId === poisoned)?.damaged).toMatch(/foleVersion/);
    expect(rows.find((x) => x.backupId === emptied)?.damaged).toMatch(/unreadable|damaged/);
    const human = await cli('list');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`${poisoned}\\s+DAMAGED`));
    expect(human.stderr).toMatch(/2 backups are damaged.*forget/s);
  });

  it('takes an incremental backup from the newest readable parent', async () => {
    const r = await cli('backup', '--storage-root', root, '--fole-version', '1.0.0', '--incremental', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { type: string; parent: string; warnings: string[] };
    expect(out.type).toBe('incremental');
    expect([good]).toContain(out.parent);
    expect(r.stderr + out.warnings.join('\n')).toMatch(/damaged/);
  });

  it('refuses prune, naming the damaged backups and what deals with them', async () => {
    const r = await cli('prune', '--dry-run');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(poisoned);
    expect(r.stderr).toContain(emptied);
    expect(r.stderr).toMatch(/forget/);
  });

  it('resolves latest to the newest readable backup and restores it', async () => {
    const r = await cli(
      'restore',
      'latest',
      '--target',
      join(work, 'restored-latest'),
      '--fole-version',
      '1.0.0',
      '--dry-run',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/damaged/);
  });

  it('forgets a damaged backup by its id, and then prune runs', async () => {
    const dry = await cli('forget', poisoned, emptied, '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(readdirSync(join(repoDir, 'snapshots'))).toContain(poisoned);
    const r = await cli('forget', poisoned, emptied);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(repoDir, 'snapshots'))).not.toContain(poisoned);
    expect(readdirSync(join(repoDir, 'snapshots'))).not.toContain(emptied);
    expect((await cli('prune')).code).toBe(0);
    const check = await cli('check');
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });
});
