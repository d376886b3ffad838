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
import { FoleBackupError } from '../errors.js';

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

/** What a verification reads: nothing, every file, or a drawn share of them. */
export interface DataSelection {
  mode: 'none' | 'all' | 'subset';
  /** The share drawn (100 unless a subset). */
  percent: number;
  /** The seed of the draw (the backup id unless given). */
  seed: string;
}

/**
 * VerifyOptions.readData as a selection. Throws FoleBackupError USAGE for a
 * subset that is not a percentage in (0, 100].
 */
export function dataSelection(
  readData: boolean | { percent: number; seed?: string } | undefined,
  backupId: string,
): DataSelection {
  const mode = readData === undefined || readData === false ? 'none' : readData === true ? 'all' : 'subset';
  const percent = typeof readData === 'object' ? readData.percent : 100;
  const seed = typeof readData === 'object' && readData.seed !== undefined ? readData.seed : backupId;
  if (mode === 'subset' && !(percent > 0 && percent <= 100)) {
    throw new FoleBackupError('USAGE', `read-data subset must be a percentage in (0, 100], not ${percent}`);
  }
  return { mode, percent, seed };
}

/**
 * The draw over one walk of a tree: each file in turn, and afterwards the
 * fallback when the draw picked nothing. `T` is what the caller keeps of the
 * lowest-scoring file, to read it after all.
 */
export class SubsetDraw<T> {
  /** Files and databases drawn, and their bytes. */
  selectedFiles = 0;
  selectedBytes = 0;
  private lowest: { path: string; score: number; size: number; item: T } | undefined;

  constructor(private readonly selection: DataSelection) {}

  /** Whether the file at `path` is drawn. */
  draw(path: string, size: number, item: T): boolean {
    const score = subsetScore(this.selection.seed, path);
    const drawn = score < this.selection.percent / 100;
    if (drawn) {
      this.selectedFiles++;
      this.selectedBytes += size;
    }
    if (this.lowest === undefined || score < this.lowest.score) this.lowest = { path, score, size, item };
    return drawn;
  }

  /**
   * After the walk: the lowest-scoring file when nothing was drawn (it counts
   * as drawn then), else undefined. Call once.
   */
  fallback(): { path: string; item: T } | undefined {
    if (this.selectedFiles > 0 || this.lowest === undefined) return undefined;
    this.selectedFiles = 1;
    this.selectedBytes = this.lowest.size;
    return { path: this.lowest.path, item: this.lowest.item };
  }
}

/** Whether the file at `path` is read, given the selection and the subset's fallback file (if it took one). */
export function isSelected(selection: DataSelection, path: string, fallbackPath: string | undefined): boolean {
  if (selection.mode === 'all') return true;
  if (selection.mode === 'none') return false;
  return subsetScore(selection.seed, path) < selection.percent / 100 || path === fallbackPath;
}
