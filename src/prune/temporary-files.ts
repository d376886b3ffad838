/**
 * Temporary files left by writers that were killed between creating a temp
 * file and renaming it (src/fs/durable.ts). Readers never see them; they only
 * take space. `check` counts them, `prune` removes those old enough that no
 * writer can still be at work on them: a save keeps its temp file's mtime
 * recent while it writes, and renames it within seconds. An open pack's draft
 * (src/repository/open-pack.ts) lives as long as its backup, but prune holds
 * the exclusive lock, which no backup shares; one removed after a forced
 * unlock fails that backup at its rename, leaving nothing partial.
 */
import type { Backend, TemporaryFile } from '../backend/backend.js';

/** A temp file untouched this long belongs to no running writer. */
const TEMP_FILE_MIN_AGE_MS = 3600_000;

/** Every leftover temp file of the backend (none for a backend that leaves none). */
export async function listTemporaryFiles(backend: Backend): Promise<TemporaryFile[]> {
  const out: TemporaryFile[] = [];
  if (backend.listTemporary !== undefined) for await (const t of backend.listTemporary()) out.push(t);
  return out;
}

/**
 * Remove the temp files not modified for `minAgeMs` (with `dryRun`, only
 * count them). Returns how many were (or would be) removed.
 */
export async function removeTemporaryFiles(
  backend: Backend,
  opts: { minAgeMs?: number; dryRun?: boolean; now?: number } = {},
): Promise<number> {
  if (backend.removeTemporary === undefined) return 0;
  const cutoff = (opts.now ?? Date.now()) - (opts.minAgeMs ?? TEMP_FILE_MIN_AGE_MS);
  let n = 0;
  for (const t of await listTemporaryFiles(backend)) {
    if (t.mtimeMs > cutoff) continue;
    if (opts.dryRun !== true) await backend.removeTemporary(t);
    n++;
  }
  return n;
}
