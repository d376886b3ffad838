/**
 * Which files `verify --read-data-subset N%` reads. Each file (and database)
 * is in the subset when the SHA-256 of `seed NUL path`, read as a number in
 * [0, 1), is below N/100: an independent, uniformly random draw per file that
 * is nevertheless deterministic — the same seed picks the same files, so a
 * finding can be re-checked, and a new seed (e.g. the ISO week) picks a new
 * sample. Deciding file by file needs no memory and no second look at the tree.
 * If the draw picks nothing at all from a non-empty backup, the file with the
 * lowest score is taken, so a subset check never checks nothing.
 */
import { createHash } from 'node:crypto';

/** A file's score for `seed`, uniform in [0, 1). */
export function subsetScore(seed: string, path: string): number {
  const h = createHash('sha256').update(seed).update('\0').update(path).digest();
  // 48 bits are plenty for a percentage and stay exact in a double
  return h.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * Parse "10%", "10" or "0.5%" into a percentage in (0, 100]. Returns undefined
 * for anything else.
 */
export function parsePercent(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]);
  return Number.isFinite(n) && n > 0 && n <= 100 ? n : undefined;
}
