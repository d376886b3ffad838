/**
 * A repository in registry mode for the CLI trust tests: a backed-up FOLE tree,
 * actor keys made by the real `actor keygen`, a registry bootstrapped with alice
 * as its first sysadmin, and a state directory of the test's own (each test's
 * "machine"). Every command runs through the real CLI.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { runCli, type CliResult } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree } from './restore-helpers.js';

export interface TrustWorld {
  dir: string;
  repoDir: string;
  backupId: string;
  /** The STORAGE_ROOT that was backed up. */
  storageRoot: string;
  env(): Record<string, string>;
  /** The private key file of an actor (`.pub` beside it). */
  key(name: string): string;
  /** --actor NAME --actor-key its key. */
  as(name: string): string[];
  /** Run the CLI on the world's repository (or `repo`), with its password and state directory. */
  cli(args: string[], extra?: Record<string, string>, repo?: string): Promise<CliResult>;
  /** The command line that restores the world's backup into `target`, confirmed (FOLE 2.3.1). */
  restoreArgs(target: string): string[];
  /** The repository opened through the library, as someone holding its password would (the caller closes it). */
  openRepo(): Promise<Repository>;
  /** Register an actor as alice, with a key made by `actor keygen`. */
  add(name: string, kind: 'human' | 'agent', role: string): Promise<void>;
  cleanup(): void;
}

/** Make a world: keys for alice and `others`, a registry with alice as its first sysadmin. */
export async function makeTrustWorld(prefix: string, others: readonly string[]): Promise<TrustWorld> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const { repoDir, backupId } = await backedUpFoleTree(join(dir, 'work'));
  const key = (name: string): string => join(dir, `${name}.key`);
  const env = (): Record<string, string> => ({
    FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
    FOLE_BACKUP_STATE_DIR: join(dir, 'state'),
  });
  const as = (name: string): string[] => ['--actor', name, '--actor-key', key(name)];
  const cli = (args: string[], extra: Record<string, string> = {}, repo = repoDir): Promise<CliResult> =>
    runCli([...args, '--repo', repo], { ...env(), ...extra });
  for (const name of ['alice', ...others]) {
    const r = await runCli(['actor', 'keygen', '--out', key(name)]);
    expect(r.code, r.stderr).toBe(0);
  }
  const boot = await cli(['actor', 'bootstrap', '--admin', 'alice', '--admin-public-key', `${key('alice')}.pub`]);
  expect(boot.code, boot.stderr).toBe(0);
  return {
    dir,
    repoDir,
    backupId,
    storageRoot: join(dir, 'work', 'src'),
    env,
    key,
    as,
    cli,
    restoreArgs: (target) => [
      'restore',
      backupId,
      '--target',
      target,
      '--fole-version',
      '2.3.1',
      '--confirm',
      backupId,
    ],
    openRepo: () => Repository.open(new LocalBackend(repoDir), TEST_PASSWORD),
    async add(name, kind, role) {
      const r = await cli([
        'actor',
        'add',
        name,
        '--kind',
        kind,
        '--role',
        role,
        '--public-key',
        `${key(name)}.pub`,
        ...as('alice'),
      ]);
      expect(r.code, r.stderr).toBe(0);
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Expect a STOP with this code and a message matching `message`. */
export function expectStop(r: CliResult, code: string, message: RegExp): void {
  expect(r.code, r.stderr).toBe(3);
  expect(r.stderr).toContain(`STOP ${code}`);
  expect(r.stderr).toMatch(message);
}
