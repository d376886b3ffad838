/**
 * What restic and Borg share in this benchmark: the database capture a user
 * must run before each backup (bench/anchors/capture-sqlite.sh, measured as
 * part of the backup), the integrity check of every restored database that the
 * spec's restore protocol asks for (bench/anchors/check-sqlite.sh, measured as
 * part of the restore), the staging directory the capture fills, and the
 * exclusions that give the anchors the same file set fole-backup backs up.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { aptInstall, run } from '../measure.js';
import type { AnchorName, StepPart, StepRunner } from './tool.js';

const CAPTURE_SCRIPT = fileURLToPath(new URL('../../anchors/capture-sqlite.sh', import.meta.url));
const CHECK_SCRIPT = fileURLToPath(new URL('../../anchors/check-sqlite.sh', import.meta.url));

/** Name patterns fole-backup leaves out (src/storage/exclusions.ts); DBs come from staging instead. */
export const EXCLUDED_NAMES = ['*.db', '*-wal', '*-shm', '*-journal'];
export const EXCLUDED_DIRS = ['tmp', 'cache'];

/** Run the capture hook into `staging`, measured. */
export async function captureDatabases(
  runner: StepRunner,
  root: string,
  staging: string,
): Promise<StepPart & { ok: boolean }> {
  return runner.measure('capture databases (sqlite3 .backup)', 'sh', [CAPTURE_SCRIPT, root, staging]);
}

/** Run the restore hook on a restored tree: integrity_check of every database in it, measured. */
export async function checkDatabases(runner: StepRunner, restored: string): Promise<StepPart & { ok: boolean }> {
  return runner.measure('check databases (sqlite3 integrity_check)', 'sh', [CHECK_SCRIPT, restored]);
}

export function stagingDir(workDir: string, tool: string): string {
  return join(workDir, `${tool}-db-staging`);
}

/** The anchors asked for (restic, borg) and sqlite3 for their hook, from Debian, installed if missing (root only). */
export function ensureAnchors(anchors: readonly AnchorName[], log: (m: string) => void): void {
  const missing: string[] = [];
  const has = (cmd: string): boolean => run('sh', ['-c', `command -v ${cmd}`], { allowFail: true }).status === 0;
  if ((anchors.includes('restic') || anchors.includes('restic-plain')) && !has('restic')) missing.push('restic');
  if (anchors.includes('borg') && !has('borg')) missing.push('borgbackup');
  if (!has('sqlite3')) missing.push('sqlite3');
  if (missing.length === 0) return;
  log(`installing ${missing.join(', ')} with apt-get`);
  aptInstall(missing, log);
}
