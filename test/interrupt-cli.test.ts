/**
 * Ctrl-C (SIGINT) and SIGTERM during a real `fole-backup restore` process: it
 * stops cleanly — exit 130 / 143 with ABORTED, staging and journal removed,
 * the target as it was, no repository lock left — and a restore run after it
 * works. The signal is a real one, sent by the process to itself right after
 * staging creates its first directory (a preload module, written here, wraps
 * fs.mkdirSync), so it always lands in the middle of staging.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree, treeHash } from './restore-helpers.js';

const PRELOAD = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { isMainThread } from 'node:worker_threads';
if (isMainThread && process.env.SIGNAL_NAME) {
  const mkdirSync = fs.mkdirSync;
  let sent = false;
  fs.mkdirSync = function (p, ...rest) {
    const r = mkdirSync.call(this, p, ...rest);
    if (!sent && String(p).includes(process.env.SIGNAL_MATCH)) {
      sent = true;
      process.kill(process.pid, process.env.SIGNAL_NAME);
    }
    return r;
  };
  syncBuiltinESMExports();
}
`;

let work: string;
let repoDir: string;
let preload: string;
let backupId: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-interrupt-'));
  ({ repoDir, backupId } = await backedUpFoleTree(work));
  preload = join(work, 'signal-preload.mjs');
  writeFileSync(preload, PRELOAD);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('a signal during a restore', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s: stops cleanly with exit %i, leaves the target as it was and nothing beside it',
    async (sig, code) => {
      const parent = join(work, `site-${sig}`);
      const target = join(parent, 'fole');
      // a STORAGE_ROOT to replace (FOLE's layout: core/core.db): the signal must leave it as it is
      mkdirSync(join(target, 'core'), { recursive: true });
      createDatabase(join(target, 'core', 'core.db'), 3);
      writeFileSync(join(target, 'core', 'keep.txt'), 'the tree before');
      const before = treeHash(target);
      const args = [
        '--repo',
        repoDir,
        'restore',
        backupId,
        '--target',
        target,
        '--confirm',
        backupId,
        '--fole-version',
        '2.3.1',
        '--modules',
        'maps,sketch',
      ];
      const r = await runCli(args, {
        FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
        NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`,
        SIGNAL_NAME: sig,
        SIGNAL_MATCH: '.fole-backup-restore-',
      });
      expect(r.stderr).toContain(`${sig}: stopping cleanly`);
      expect(r.stderr).toContain('ABORTED');
      expect(r.code, r.stderr).toBe(code);
      expect(readdirSync(parent)).toEqual(['fole']);
      expect(treeHash(target)).toBe(before);
      expect(readdirSync(join(repoDir, 'locks'))).toEqual([]);
      // and nothing stands in the way of the next restore
      const again = await runCli(args, { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
      expect(again.code, again.stderr).toBe(0);
      expect(readdirSync(parent).sort()).toEqual(['fole', expect.stringMatching(/^fole\.pre-restore-/)]);
    },
  );
});
