/**
 * The capture stage: every database the plan found, at one instant, into
 * private staging (src/sqlite/capture.ts says how). It starts once the scan has
 * found them all; the instant is taken first, and copying then runs while the
 * file stage stores everything else. A database's entry waits for its own
 * outcome (DatabaseOutcomes), nothing else does, and each copy goes into the
 * repository as soon as it is made, while it is checked.
 */
import { rm } from 'node:fs/promises';
import { FoleBackupError } from '../errors.js';
import { withSideFiles } from '../sqlite/side-files.js';
import type { SnapshotDatabase } from '../snapshot/snapshot.js';
import type { CapturedDatabase, CaptureResult, MemoryStaging, SettledDatabase } from '../sqlite/capture.js';
import { captureOnThread } from '../sqlite/capture-thread.js';
import { CORE_DB, isFoleDatabasePath } from '../storage/fole-layout.js';
import { GLOBAL_LOCK_ID } from '../storage/global-lock.js';
import type { StoreOutcome } from './file-pool.js';
import { deferred, type Deferred } from '../concurrency/deferred.js';

/**
 * What the capture did with one database, and its copy on its way into the repository
 * (`stored`, present with `captured`). Damaged, locked and hard-linked databases are not
 * FOLE's own: they are stored as bytes.
 */
export interface DatabaseOutcome extends Omit<SettledDatabase, 'path'> {
  stored?: Promise<StoreOutcome>;
}

export interface CaptureInput {
  /** The STORAGE_ROOT's real path. */
  root: string;
  /** Relative paths of every database to capture (BackupPlan.databases). */
  databases: readonly string[];
  /** A private directory for the copies. */
  stagingDir: string;
  /** A private directory in memory for the copies that fit (src/backup/memory-staging.ts). */
  memoryStaging?: MemoryStaging;
  /** How long to wait for SQLite writers to release their locks. */
  busyTimeoutMs?: number;
  /** The parent backup's databases (an incremental): an untouched one is not copied again. */
  parentDatabases: readonly SnapshotDatabase[];
  signal: AbortSignal;
}

/** Puts a copy into the repository; the promise settles once it is stored. */
export type StoreCopy = (path: string, copy: Pick<CapturedDatabase, 'file' | 'size'>) => Promise<StoreOutcome>;

/**
 * Capture every database of `input` at one instant, settling each one's outcome
 * in `outcomes` as it is done and handing each copy to `storeCopy` at once.
 */
export function captureStorageDatabases(
  input: CaptureInput,
  outcomes: DatabaseOutcomes,
  storeCopy: StoreCopy,
): Promise<CaptureResult> {
  // a copy is stored while it is checked (one large database: the two at once, not one
  // after the other); the outcome waits for the check, which may still find it damaged
  const storing = new Map<string, Promise<StoreOutcome>>();
  // on a thread of its own: its SQLite work is synchronous and would hold up this one
  return captureOnThread({
    storageRoot: input.root,
    databases: [...input.databases],
    stagingDir: input.stagingDir,
    ...(input.memoryStaging === undefined ? {} : { memoryStaging: input.memoryStaging }),
    ...(input.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: input.busyTimeoutMs }),
    signal: input.signal,
    dropLockRow: { path: CORE_DB, lockId: GLOBAL_LOCK_ID },
    // FOLE's own databases must be sound (a damaged one is a STOP: a human decides) and
    // are waited for (DB_LOCKED); any other file that merely looks like SQLite and is
    // damaged, or locked by a writer past the busy timeout, is stored as it is
    optional: input.databases.filter((p) => !isFoleDatabasePath(p)),
    unchangedIfFingerprint: unchangedIfFingerprint(input.parentDatabases),
    onCopied: (c) => storing.set(c.path, storeCopy(c.path, c)),
    onDatabase: ({ path, ...d }) => {
      const early = storing.get(path);
      storing.delete(path);
      if (d.captured === undefined) {
        outcomes.settle(path, d);
        return;
      }
      const stored = early ?? storeCopy(path, d.captured);
      outcomes.settle(path, { ...d, stored });
      // checked and stored, nothing reads the copy again: its room (memory, or the page cache) is freed now, not
      // when the backup ends (a failed store fails the backup, which removes the staging anyway)
      const copy = d.captured.file;
      stored.then(
        () => removeCopyFiles(copy),
        () => undefined,
      );
    },
  });
}

/** A stored copy and any side file SQLite left beside it; what cannot be removed now goes with the staging. */
function removeCopyFiles(copy: string): void {
  for (const f of withSideFiles(copy)) rm(f, { force: true }).catch(() => undefined);
}

/**
 * The parent's fingerprint of each database it may keep without copying: core.db
 * always changes (it holds our lock row during the capture), others are kept when
 * untouched.
 */
export function unchangedIfFingerprint(parentDatabases: readonly SnapshotDatabase[]): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const d of parentDatabases) if (d.path !== CORE_DB && d.fingerprint !== undefined) kept[d.path] = d.fingerprint;
  return kept;
}

/**
 * Each database's outcome, waited for by its tree entry: the file stage may
 * reach an entry before the capture has settled it (or even started), and a
 * capture may settle one before its entry is reached.
 */
export class DatabaseOutcomes {
  private readonly outcomes = new Map<string, Deferred<DatabaseOutcome>>();
  private closed = false;
  /** Why the outcomes were closed: a failure, or undefined once the capture is done. */
  private failure: unknown;

  /** The outcome for `path`, once the capture has settled it. */
  wait(path: string): Promise<DatabaseOutcome> {
    return this.slot(path).promise;
  }

  settle(path: string, outcome: DatabaseOutcome): void {
    this.slot(path).resolve(outcome);
  }

  /** The capture is done: an outcome it did not settle is an internal error, never a silent wait. */
  finish(): void {
    this.close(undefined);
  }

  /** The scan or the capture failed: every outcome still waited for fails with `err`. */
  fail(err: unknown): void {
    this.close(err);
  }

  private close(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.failure = err;
    for (const [path, d] of this.outcomes) d.reject(err ?? notSettled(path));
  }

  private slot(path: string): Deferred<DatabaseOutcome> {
    let d = this.outcomes.get(path);
    if (d === undefined) {
      d = deferred<DatabaseOutcome>();
      this.outcomes.set(path, d);
      if (this.closed) d.reject(this.failure ?? notSettled(path));
    }
    return d;
  }
}

function notSettled(path: string): FoleBackupError {
  return new FoleBackupError('INTERNAL', `capture did not settle ${path}`, { path });
}
