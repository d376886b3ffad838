/**
 * What every form of repository must take through the real CLI, shared by the suites of the network backends
 * (rest:, sftp://, s3:): init, a backup, list, verify --read-data, and a restore whose files are byte for byte
 * those of the tree backed up; and an offsite copy into or out of one.
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

/** What `copy --json` reports, as far as the copy suites look. */
export interface CopyJson {
  copied: { backupId: string }[];
  skipped: string[];
  blobsCopied: number;
  to: { id: string };
  trail: { origin: string; auditEntries: { carried: number; total: number } };
}

/**
 * Make `to` a twin of `from` and copy every backup into it with `cli` (which adds the target's password and the
 * backend flags; the source's password comes from the environment it sets): `backupIds` arrive, a second run
 * copies nothing, and `check --read-data` finds the target clean. Returns the first run's report.
 */
export async function copyToTwin(
  cli: (args: string[]) => Promise<CliResult>,
  from: string,
  to: string,
  backupIds: readonly string[],
): Promise<CopyJson> {
  const init = await cli(['init', '--repo', to, '--from-repo', from]);
  expect(init.code, init.stderr).toBe(0);
  const copy = async (): Promise<CopyJson> => {
    const r = await cli(['copy', '--from-repo', from, '--to-repo', to, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as CopyJson;
  };
  const first = await copy();
  expect(first.copied.map((c) => c.backupId).sort()).toEqual([...backupIds].sort());
  const again = await copy();
  expect(again).toMatchObject({ copied: [], blobsCopied: 0, trail: { auditEntries: { carried: 0 } } });
  expect(again.skipped.sort()).toEqual([...backupIds].sort());
  const check = await cli(['check', '--read-data', '--repo', to]);
  expect(check.code, check.stdout + check.stderr).toBe(0);
  return first;
}
