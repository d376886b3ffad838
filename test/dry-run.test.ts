/**
 * Every command with --dry-run, run for real through the CLI: afterwards the repository holds exactly what it held
 * (its backups, packs, index, settings, keys, and no lock left), the target of a restore does not exist, and the
 * local state directory is as it was. The one thing a dry run adds is its own audit log entry, as every command
 * run against a repository does (docs/TRUST.md).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree } from './restore-helpers.js';

let stateDir: string;
let work: string;
let repoDir: string;
let backupId: string;
const env = (): Record<string, string> => ({ FOLE_BACKUP_PASSWORD: TEST_PASSWORD, FOLE_BACKUP_STATE_DIR: stateDir });

/** Every file under `dir` with its SHA-256, but the audit log's entries. */
function contents(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    if (!existsSync(d)) return;
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  for (const k of out.keys()) if (k.startsWith('audit/')) out.delete(k);
  return out;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-dry-run-'));
  stateDir = join(work, 'state');
  ({ repoDir, backupId } = await backedUpFoleTree(work));
  // a second backup without big.bin, tagged as a migration's, so forget, prune and migration-rollback have
  // something to plan, and forgetting the first would free big.bin's data
  rmSync(join(work, 'src', 'projects', 'p1', 'files', 'big.bin'));
  const b = await runCli(
    [
      'backup',
      '--repo',
      repoDir,
      '--storage-root',
      join(work, 'src'),
      '--fole-version',
      '2.3.1',
      '--tag',
      'pre-migration:7',
    ],
    env(),
  );
  expect(b.code, b.stderr).toBe(0);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

const target = (): string => join(work, 'restored');

it.each([
  ['forget', ['forget', '--keep-last', '1', '--save-policy', '--dry-run']],
  ['forget --prune', ['forget', '@first', '--prune', '--dry-run']],
  ['prune', ['prune', '--dry-run']],
  ['repair', ['repair', '--dry-run']],
  ['restore', ['restore', 'latest', '--target', '@target', '--fole-version', '2.3.1', '--dry-run']],
  [
    'restore --include',
    ['restore', 'latest', '--target', '@target', '--fole-version', '2.3.1', '--include', 'config', '--dry-run'],
  ],
  ['migration-rollback', ['migration-rollback', '7', '--target', '@target', '--fole-version', '2.3.1', '--dry-run']],
])('%s --dry-run changes nothing', async (_name, args) => {
  const before = { repo: contents(repoDir), state: contents(stateDir) };
  const argv = (args as string[]).map((a) => (a === '@target' ? target() : a === '@first' ? backupId : a));
  const r = await runCli([...argv, '--repo', repoDir], env());
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/dry run/i);
  expect(contents(repoDir)).toEqual(before.repo);
  expect(contents(stateDir)).toEqual(before.state);
  expect(existsSync(target())).toBe(false);
  expect(readdirSync(join(repoDir, 'locks'))).toEqual([]);
});

it('forget --dry-run tells what prune would then free, which is what forget --prune frees', async () => {
  const args = ['forget', backupId, '--min-pack-age', '0', '--repo', repoDir, '--json'];
  const dry = await runCli([...args, '--dry-run'], env());
  expect(dry.code, dry.stderr).toBe(0);
  const wouldFree = (JSON.parse(dry.stdout) as { pruneWouldFree: number }).pruneWouldFree;
  expect(wouldFree).toBeGreaterThan(2 * 1024 * 1024);
  const human = await runCli(args.filter((a) => a !== '--json').concat('--dry-run'), env());
  expect(human.stdout).toMatch(/`fole-backup prune` would then free \d+\.\d MiB/);
  const real = await runCli([...args, '--prune'], env());
  expect(real.code, real.stderr).toBe(0);
  expect((JSON.parse(real.stdout) as { prune: { plan: { freedBytes: number } } }).prune.plan.freedBytes).toBe(
    wouldFree,
  );
});
