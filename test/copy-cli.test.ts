/**
 * `fole-backup copy` end to end through the real CLI, between real local repositories with different passwords:
 * all, then again (nothing copied), one id, a restore from the copy, `check --read-data` on it, a copy killed
 * mid-way and run again, and the refusals that write nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Repository } from '../src/repository/repository.js';
import { backup } from '../src/backup/backup.js';
import { LocalBackend } from '../src/backend/local.js';
import { listSnapshots } from '../src/snapshot/store.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree, treeLines } from './restore-helpers.js';
import { runCli, spawnCli, waitExit, type CliResult } from './cli-helpers.js';
import { expectStop, makeTrustWorld } from './trust-world.js';

const B_PASSWORD = 'another password entirely';

let dir: string;
let repoA: string;
let srcRoot: string;
let first: string;
let second: string;

const env = (extra: Record<string, string> = {}): Record<string, string> => ({
  FOLE_BACKUP_PASSWORD: B_PASSWORD,
  FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD,
  FOLE_BACKUP_STATE_DIR: join(dir, 'state'),
  ...extra,
});

const copy = (args: string[], to: string, extra: Record<string, string> = {}): Promise<CliResult> =>
  runCli(['copy', ...args, '--from-repo', repoA, '--to-repo', to, '--json'], env(extra));

async function twin(name: string): Promise<string> {
  const to = join(dir, name);
  const r = await runCli(['init', '--repo', to, '--from-repo', repoA, '--json'], env());
  expect(r.code, r.stderr).toBe(0);
  return to;
}

/** Every object of a repository but its locks and audit log: what a refused copy must not change. */
function objects(repo: string): string[] {
  return readdirSync(repo, { recursive: true, encoding: 'utf8' })
    .filter((f) => !f.startsWith('locks') && !f.startsWith('audit'))
    .sort();
}

/** The lock files of a repository (none when it never had a locks/ folder). */
const locks = (repo: string): string[] => {
  try {
    return readdirSync(join(repo, 'locks'));
  } catch {
    return [];
  }
};

const ids = async (repo: string, password: string): Promise<string[]> => {
  const r = await Repository.open(new LocalBackend(repo), password);
  try {
    return (await listSnapshots(r)).map((s) => s.backupId).sort();
  } finally {
    await r.close();
  }
};

/** `check --read-data` finds the repository clean. */
async function expectReadDataCheck(repo: string): Promise<void> {
  const r = await runCli(['check', '--read-data', '--repo', repo], env());
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fole-copy-'));
  ({ repoDir: repoA, backupId: first } = await backedUpFoleTree(join(dir, 'work')));
  srcRoot = join(dir, 'work', 'src');
  writeFileSync(join(srcRoot, 'projects', 'p1', 'files', 'second.txt'), 'only in the second backup\n');
  const a = await Repository.open(new LocalBackend(repoA), TEST_PASSWORD);
  try {
    ({ backupId: second } = await backup(a, { storageRoot: srcRoot, foleVersion: '2.3.1' }));
  } finally {
    await a.close();
  }
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('copy', () => {
  it('init --from-repo makes a twin with the same sizes but its own id', async () => {
    const to = join(dir, 'twin');
    const r = await runCli(['init', '--repo', to, '--from-repo', repoA, '--json'], env());
    expect(r.code, r.stderr).toBe(0);
    const made = JSON.parse(r.stdout);
    const a = await Repository.open(new LocalBackend(repoA), TEST_PASSWORD);
    try {
      expect(made.id).not.toBe(a.config.id);
      expect(made.twinOf).toBe(repoA);
      expect([made.packSize, made.fileChunkSize, made.dbChunkSize]).toEqual([
        a.config.packSize,
        a.config.fileChunkSize,
        a.config.dbChunkSize,
      ]);
    } finally {
      await a.close();
    }
    const none = await runCli(['init', '--repo', join(dir, 'no-twin'), '--from-repo', join(dir, 'absent')], env());
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/--from-repo: no repository at/);
    expect(existsSync(join(dir, 'no-twin'))).toBe(false);
  });

  it('copies all, then nothing the second time; the copy restores byte-exact and checks clean', async () => {
    const to = await twin('all');
    const r = await copy(['--read-data'], to);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.copied.map((c: { backupId: string }) => c.backupId).sort()).toEqual([first, second].sort());
    expect(rep.blobsCopied).toBeGreaterThan(0);
    expect(rep.verified.packsRead).toBe(rep.packsWritten);
    expect(rep.verified.blobsRead).toBe(rep.blobsCopied);
    expect(await ids(to, B_PASSWORD)).toEqual([first, second].sort());

    const again = await copy([], to);
    expect(again.code, again.stderr).toBe(0);
    const rep2 = JSON.parse(again.stdout);
    expect(rep2.copied).toEqual([]);
    expect(rep2.skipped.sort()).toEqual([first, second].sort());
    expect(rep2.blobsCopied).toBe(0);
    expect(rep2.packsWritten).toBe(0);

    await expectReadDataCheck(to);

    for (const [repo, password, target] of [
      [repoA, TEST_PASSWORD, join(dir, 'restored-a')],
      [to, B_PASSWORD, join(dir, 'restored-b')],
    ] as const) {
      const res = await runCli(
        ['restore', second, '--target', target, '--fole-version', '2.3.1', '--confirm', second, '--repo', repo],
        env({ FOLE_BACKUP_PASSWORD: password }),
      );
      expect(res.code, res.stderr).toBe(0);
    }
    // the root's own mtime is the restore's, not the backup's
    expect(treeLines(join(dir, 'restored-b'), { ignoreRoot: true })).toEqual(
      treeLines(join(dir, 'restored-a'), { ignoreRoot: true }),
    );
  }, 180_000);

  it('copies one backup named by a prefix', async () => {
    const to = await twin('one');
    const r = await copy([first.slice(0, 8)], to);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).copied.map((c: { backupId: string }) => c.backupId)).toEqual([first]);
    expect(await ids(to, B_PASSWORD)).toEqual([first]);
    const human = await runCli(['copy', '--from-repo', repoA, '--to-repo', to], env());
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^copied 1 backup from .* at [\d.]+ [KMG]?i?B\/s /);
    expect(human.stdout).toContain(`copied   ${second}`);
    expect(human.stdout).toContain(`skipped  ${first}`);
  }, 120_000);

  it('refuses an unknown id, a wrong source password and the same repository, writing nothing', async () => {
    const to = await twin('refused');
    const before = objects(to);
    const unknown = await copy(['0123abcd-0000-4000-8000-000000000000'], to);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/no such backup/);
    const wrong = await copy([], to, { FOLE_BACKUP_FROM_PASSWORD: 'not the password' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/source: .*wrong password/);
    expect(wrong.stderr).toMatch(/FOLE_BACKUP_FROM_PASSWORD/);
    expect(objects(to)).toEqual(before);
    expect(await ids(to, B_PASSWORD)).toEqual([]);

    const aBefore = objects(repoA);
    const same = await runCli(
      ['copy', '--from-repo', repoA, '--to-repo', repoA],
      env({ FOLE_BACKUP_PASSWORD: TEST_PASSWORD }),
    );
    expect(same.code, same.stderr).toBe(2);
    expect(same.stderr).toMatch(/same repository/);
    expect(objects(repoA)).toEqual(aBefore);
  }, 120_000);

  let big: Promise<{ repoDir: string; backupId: string }> | undefined;

  it.each(['SIGKILL', 'SIGINT'] as const)(
    'stopped mid-way by %s, the copy leaves the target valid, and a rerun completes it',
    async (sig) => {
      big ??= backedUpFoleTree(join(dir, 'big'), { bigBytes: 56 * 1024 * 1024 });
      const source = await big;
      const to = join(dir, `stopped-${sig}`);
      // small packs in the target: with several uploads at once, 16 MiB packs would leave the copy nearly done by
      // the time its first index file shows, and the signal would come too late to stop it mid-way
      await (await Repository.init(new LocalBackend(to), B_PASSWORD, { kdf: FAST_KDF, packSize: 1024 * 1024 })).close();
      const args = ['copy', '--from-repo', source.repoDir, '--to-repo', to, '--json'];
      // the SIGKILL case leaves its lock in the shared source: a clean stop adds none to what is there
      const sourceLocks = locks(source.repoDir);
      const child = spawnCli(args, env());
      const exited = waitExit(child);
      // the copy indexes the packs it uploads as it goes: once an index file is there, a rerun has work to skip
      const indexed = (): number => readdirSync(join(to, 'index')).filter((f) => /^[0-9a-f]{64}$/.test(f)).length;
      const t0 = Date.now();
      while (indexed() === 0 && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 20));
      child.kill(sig);
      const how = await exited;
      if (sig === 'SIGKILL') expect(how.signal).toBe('SIGKILL');
      else {
        // a clean stop: ABORTED, and neither repository keeps a lock of it
        expect(how.code).toBe(130);
        expect(locks(to)).toEqual([]);
        expect(locks(source.repoDir)).toEqual(sourceLocks);
      }
      expect(indexed()).toBeGreaterThan(0);
      expect(await ids(to, B_PASSWORD)).toEqual([]);
      const mid = await runCli(['check', '--repo', to], env());
      expect(mid.code, mid.stdout + mid.stderr).toBe(0);

      const rerun = await runCli([...args, '--read-data'], env());
      expect(rerun.code, rerun.stderr).toBe(0);
      const rep = JSON.parse(rerun.stdout);
      expect(rep.copied.map((c: { backupId: string }) => c.backupId)).toEqual([source.backupId]);
      expect(rep.blobsPresent).toBeGreaterThan(0);
      expect(await ids(to, B_PASSWORD)).toEqual([source.backupId]);
      await expectReadDataCheck(to);
    },
    300_000,
  );
});

describe('copy through the gate', () => {
  it('needs backup.export in the source, and teaches in --help', async () => {
    const world = await makeTrustWorld('fole-copy-trust-', ['viewer']);
    try {
      await world.add('viewer', 'human', 'auditor');
      const to = join(world.dir, 'offsite');
      const made = await runCli(['init', '--repo', to, '--from-repo', world.repoDir], {
        FOLE_BACKUP_PASSWORD: B_PASSWORD,
      });
      expect(made.code, made.stderr).toBe(0);
      const copyAs = (name: string): Promise<CliResult> =>
        runCli(['copy', '--from-repo', world.repoDir, '--to-repo', to, '--json', ...world.as(name)], {
          ...world.env(),
          FOLE_BACKUP_PASSWORD: B_PASSWORD,
          FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD,
        });
      expectStop(await copyAs('viewer'), 'PERMISSION_DENIED', /copying backups out of this repository/);
      expect(await ids(to, B_PASSWORD)).toEqual([]);
      // the refusal is in the target's audit log, as every command is
      const log = await runCli(['audit', 'log', '--json', '--repo', to], { FOLE_BACKUP_PASSWORD: B_PASSWORD });
      expect(log.code, log.stderr).toBe(0);
      const last = JSON.parse(log.stdout).entries.at(-1);
      expect([last.op, last.result.code]).toEqual(['copy-to', 'PERMISSION_DENIED']);
      const r = await copyAs('alice');
      expect(r.code, r.stderr).toBe(0);
      expect(await ids(to, B_PASSWORD)).toEqual([world.backupId]);

      const help = await runCli(['copy', '--help']);
      expect(help.stdout).toMatch(/Resumable/);
      expect(help.stdout).toMatch(/--to-repo sftp:\/\//);
    } finally {
      world.cleanup();
    }
  }, 120_000);
});
