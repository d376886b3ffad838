/**
 * What every form of repository must take through the real CLI, shared by the suites of the network backends
 * (rest:, sftp://): init, a backup, list, verify --read-data, and a restore whose files are byte for byte
 * those of the tree backed up.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { CliResult } from './cli-helpers.js';

/** Files of makeFoleTree's tree compared byte for byte after the restore (its databases are checked by restore). */
const COMPARED = ['config/server.json', 'templates/server-defaults.json', 'modules/sketch/module-data/readonly.txt'];

/** Run the life cycle with `cli` (which adds --repo and credentials) on `root`, restoring into `target`. */
export async function initBackupRestore(
  cli: (args: string[]) => Promise<CliResult>,
  root: string,
  target: string,
): Promise<string> {
  const init = await cli(['init']);
  expect(init.code, init.stderr).toBe(0);
  const b = await cli(['backup', '--storage-root', root, '--fole-version', '2.3.1', '--json']);
  expect(b.code, b.stderr).toBe(0);
  const backupId = (JSON.parse(b.stdout) as { backupId: string }).backupId;
  const list = await cli(['list', '--json']);
  expect(list.code, list.stderr).toBe(0);
  expect(list.stdout).toContain(backupId);
  const v = await cli(['verify', 'latest', '--read-data']);
  expect(v.code, v.stderr).toBe(0);
  const r = await cli(['restore', backupId, '--target', target, '--confirm', backupId, '--fole-version', '2.3.1']);
  expect(r.code, r.stderr).toBe(0);
  for (const f of COMPARED) expect(readFileSync(join(target, f)).equals(readFileSync(join(root, f))), f).toBe(true);
  return backupId;
}
