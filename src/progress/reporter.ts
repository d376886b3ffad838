/**
 * How long operations report progress. The library never prints: it calls a
 * ProgressReporter, and the CLI (or a server) decides how to render it.
 */

export interface ProgressSnapshot {
  /** Files (and databases) done so far. */
  files: number;
  /** Content bytes done so far. */
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
  /** False while the totals still grow (a backup's scan is still finding files): no ETA can be told yet. */
  totalsFinal?: boolean;
  /** Path being worked on. */
  current?: string;
}

/** Where long operations report phases, progress and warnings (the CLI draws them on stderr). */
export interface ProgressReporter {
  /** A new phase begins ("scan", "capture databases", "store files", …). */
  phase(name: string): void;
  /** Work done in the current phase; may be called very often. */
  progress(p: ProgressSnapshot): void;
  /** Something the operator should know that did not stop the operation. */
  warn(message: string, path?: string): void;
}

/** A ProgressReporter that reports nothing. */
export const silentReporter: ProgressReporter = {
  phase() {},
  progress() {},
  warn() {},
};
