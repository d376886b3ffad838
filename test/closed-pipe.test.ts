/**
 * A reader that goes away mid-command (`fole-backup backup 2>&1 | head`): the
 * closed pipe must not end a backup half-way (no backup, a stale lock), while
 * `manifest latest | head` may stop as soon as its reader has had enough.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { type CliExit, runCli, spawnCli, waitExit } from './cli-helpers.js';

const PASSWORD = 'closed-pipe-password';
const env = { FOLE_BACKUP_PASSWORD: PASSWORD };
let work: string;
let root: string;
let repoDir: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-pipe-'));
  root = join(work, 'storage');
  repoDir = join(work, 'repo');
  createDatabase(join(root, 'core', 'core.db'), 500);
  createDatabase(join(root, 'projects', 'p0', 'project.db'), 2000);
  mkdirSync(join(root, 'projects', 'p0', 'files'), { recursive: true });
  for (let f = 0; f < 200; f++)
    writeFileSync(join(root, 'projects', 'p0', 'files', `f${f}.bin`), randomBytes(5000 + f * 50));
  const init = await runCli(['init', '--repo', repoDir], env);
  expect(init.code, init.stderr).toBe(0);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Run the CLI with both of its output pipes closed by the reader before it writes anything. */
function runWithReadersGone(args: string[]): Promise<CliExit> {
  const child = spawnCli(args, env);
  child.stdout?.destroy();
  child.stderr?.destroy();
  return waitExit(child);
}

async function backups(): Promise<{ backupId: string }[]> {
  const r = await runCli(['list', '--repo', repoDir, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { backupId: string }[];
}

describe('a reader that closes the pipe', () => {
  it('does not stop a backup: it finishes, releases its locks, and the next backup finds no stale lock', async () => {
    const before = (await backups()).length;
    const r = await runWithReadersGone([
      'backup',
      '--repo',
      repoDir,
      '--storage-root',
      root,
      '--fole-version',
      '1.0.0',
      '--json',
    ]);
    expect(r).toEqual({ code: 0, signal: null });
    expect((await backups()).length).toBe(before + 1);
    expect(readdirSync(join(repoDir, 'locks'))).toEqual([]);
    const next = await runCli(
      ['backup', '--repo', repoDir, '--storage-root', root, '--fole-version', '1.0.0', '--incremental'],
      env,
    );
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).not.toMatch(/stale/);
  });

  it('ends `manifest` quietly with status 0 (it only reads)', async () => {
    const r = await runWithReadersGone(['manifest', 'latest', '--repo', repoDir]);
    expect(r).toEqual({ code: 0, signal: null });
  });
});
