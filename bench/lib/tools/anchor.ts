/**
 * What restic and Borg share in this benchmark: the database capture a user
 * must run before each backup (bench/anchors/capture-sqlite.sh, measured as
 * part of the backup), the staging directory it fills, and the exclusions
 * that give the anchors the same file set fole-backup backs up.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { aptInstall, run } from '../measure.js';
import type { StepPart, StepRunner } from './tool.js';

const CAPTURE_SCRIPT = fileURLToPath(new URL('../../anchors/capture-sqlite.sh', import.meta.url));

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

export function stagingDir(workDir: string, tool: string): string {
  return join(workDir, `${tool}-db-staging`);
}

/** restic and borg from Debian, installed if missing (root only). */
export function ensureAnchors(log: (m: string) => void): void {
  const missing: string[] = [];
  if (run('sh', ['-c', 'command -v restic'], { allowFail: true }).status !== 0) missing.push('restic');
  if (run('sh', ['-c', 'command -v borg'], { allowFail: true }).status !== 0) missing.push('borgbackup');
  if (run('sh', ['-c', 'command -v sqlite3'], { allowFail: true }).status !== 0) missing.push('sqlite3');
  if (missing.length === 0) return;
  log(`installing ${missing.join(', ')} with apt-get`);
  aptInstall(missing, log);
}
