/**
 * Private staging directories for database snapshots, named with our pid and
 * holding a record of their holder (holder.json: host, pid, boot id, PID
 * namespace, start time), so a later run can remove what a killed run left
 * behind — and only that. A pid alone does not say a holder is gone: a backup
 * in another container sharing this staging directory has pids of its own
 * (see src/host/process-identity.ts).
 */
import { lstat, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsError } from '../errors.js';
import { processAlive } from '../host/process-alive.js';
import { holderGone, selfIdentity, type Holder } from '../host/process-identity.js';

const PREFIX = 'fole-backup-staging-';
const HOLDER_FILE = 'holder.json';
/** A staging without a holder record (an older version) and a dead pid is removed once this old. */
const UNRECORDED_STALE_MS = 86_400_000;

/** Remove staging dirs in `parent` whose process is provably gone. Returns what was removed. */
export async function removeStaleStaging(parent: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (!Number.isSafeInteger(pid) || pid === process.pid) continue;
    const dir = join(parent, name);
    if (!(await ours(dir)) || !(await gone(dir, pid))) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/**
 * Whether `dir` is a staging directory as we make them: a directory (not a symlink) of our own user, mode 0700.
 * The parent is usually world-writable (/tmp, /dev/shm): another user's directory of the same name is never
 * removed, and one they could write into (swapping a subdirectory for a symlink while it is removed) is not ours.
 */
async function ours(dir: string): Promise<boolean> {
  const st = await lstat(dir).catch(() => undefined);
  return st?.isDirectory() === true && st.uid === (process.getuid?.() ?? st.uid) && (st.mode & 0o777) === 0o700;
}

async function gone(dir: string, pid: number): Promise<boolean> {
  let holder: Holder | undefined;
  try {
    const v = JSON.parse(await readFile(join(dir, HOLDER_FILE), 'utf8')) as Partial<Record<keyof Holder, unknown>>;
    const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);
    holder = { host: str(v.host) ?? null, pid: typeof v.pid === 'number' ? v.pid : null };
    for (const k of ['bootId', 'pidNs', 'startTime'] as const) {
      const s = str(v[k]);
      if (s !== undefined) holder[k] = s;
    }
  } catch {
    holder = undefined;
  }
  if (holder !== undefined) return holder.pid === pid && holderGone(holder) !== false;
  // no record: an older version's staging (or a kill right after it was made)
  if (processAlive(pid)) return false;
  const age = await stat(dir).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  return age > UNRECORDED_STALE_MS;
}

/**
 * Create a private (0700) staging dir under `parent` (default: the OS temp dir), with its holder record, once what
 * killed runs left there is removed.
 */
export async function makeStaging(parent = tmpdir()): Promise<string> {
  await removeStaleStaging(parent);
  return createStaging(parent);
}

/** makeStaging without the sweep, for a caller that has just swept `parent` itself. */
export async function createStaging(parent: string): Promise<string> {
  let dir: string;
  try {
    dir = await mkdtemp(join(parent, `${PREFIX}${process.pid}-`));
  } catch (err) {
    throw fsError('write', parent, err);
  }
  const holder: Holder = { host: hostname(), pid: process.pid, ...selfIdentity() };
  try {
    await writeFile(join(dir, HOLDER_FILE), JSON.stringify(holder), { mode: 0o600 });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw fsError('write', dir, err);
  }
  return dir;
}
