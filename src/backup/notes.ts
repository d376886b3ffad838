/**
 * What a backup tells its operator besides its figures: warnings, and the
 * paths it left out. Both are recorded in the snapshot; warnings are also shown
 * as they happen.
 */
import type { ProgressReporter } from '../progress/reporter.js';
import { SKIPPED_LIMIT } from '../snapshot/snapshot.js';

/** The slice of BackupNotes a stage writes to. */
export interface NoteSink {
  /** Record a warning and show it now. */
  warn(message: string, path?: string): void;
  /** Record that `path` is not in the backup, and why. */
  skip(path: string, reason: string): void;
}

export class BackupNotes implements NoteSink {
  readonly warnings: string[] = [];
  /** The first SKIPPED_LIMIT paths left out (skippedCount counts them all). */
  readonly skipped: { path: string; reason: string }[] = [];
  private skips = 0;

  constructor(private readonly reporter: ProgressReporter) {}

  get skippedCount(): number {
    return this.skips;
  }

  // arrow functions: stages receive these as plain callbacks
  readonly warn = (message: string, path?: string): void => {
    this.warnings.push(message);
    this.reporter.warn(message, path);
  };

  readonly skip = (path: string, reason: string): void => {
    this.skips++;
    if (this.skipped.length < SKIPPED_LIMIT) this.skipped.push({ path, reason });
  };
}
