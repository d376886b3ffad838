/**
 * fole-backup's public library API. The CLI (src/cli) is a thin layer over
 * exactly these exports; a server or an agent interface uses the same.
 */
export { FoleBackupError, StopError, isStop, type ErrorCode, type StopCode } from './errors.js';

export type { Backend, ObjectHandle, ObjectInfo, ObjectType, ByteRange, TemporaryFile } from './backend/backend.js';
export { LocalBackend } from './backend/local.js';
export { MemoryBackend } from './backend/memory.js';
export { openBackend } from './backend/open.js';

export { Repository, type InitOptions, type OpenOptions } from './repository/repository.js';
export { initRepository, openRepository, type RepositoryLocation } from './repository/open-repository.js';
export { RepositoryLock, listLocks, unlockRepository, type LockInfo, type UnlockResult } from './repository/lock.js';
export { FORMAT_VERSION, type RepositoryConfig } from './repository/format.js';

export {
  backup,
  checkStorageRoot,
  STORAGE_SPEC_VERSION,
  type BackupOptions,
  type BackupResult,
} from './backup/backup.js';
export type { Snapshot, TreeEntry, ManifestHead, SnapshotDatabase } from './snapshot/snapshot.js';
export { parseFoleVersion, compareSemver, checkBackupLabels, type Semver } from './snapshot/fields.js';
export { listSnapshots, loadSnapshot, resolveBackupId } from './snapshot/store.js';
export { readTree } from './snapshot/tree.js';
export { readManifest, renderManifest, type SpecManifest, type TextSink } from './manifest/manifest.js';
export {
  verifyBackup,
  verifyVerdict,
  type VerifyOptions,
  type VerifyReport,
  type VerifyCounts,
  type VerifyLevel,
} from './verify/verify-backup.js';
export {
  checkRepository,
  checkVerdict,
  type CheckOptions,
  type CheckReport,
  type CheckCounts,
  type CheckLevel,
} from './verify/check-repository.js';
export type { Problem, Info, InfoKind, CheckedThing, ReportBase } from './verify/findings.js';
export { restore, type RestoreOptions, type RestoreResult } from './restore/restore.js';
export {
  planRestore,
  checkIntent,
  checkFoleVersion,
  checkModules,
  checkTarget,
  type RestorePlan,
  type PlanInput,
  type PlanOptions,
  type PlanSnapshot,
  type TargetState,
  type TargetKind,
} from './restore/plan.js';
export { inspectTarget } from './restore/target.js';
export {
  recover,
  decideRecovery,
  type RecoverResult,
  type RecoveryDecision,
  type Presence,
} from './restore/recover.js';
export type { RestoreJournal, JournalState } from './restore/journal.js';

export {
  acquireStorageLock,
  readStorageLock,
  GLOBAL_LOCK_ID,
  type AcquireOptions as StorageLockOptions,
  type HeldStorageLock,
  type LockRow as StorageLockRow,
} from './storage/global-lock.js';
export { captureDatabases, type CaptureOptions, type CaptureResult, type CapturedDatabase } from './sqlite/capture.js';

export type { ProgressReporter, ProgressSnapshot } from './progress/reporter.js';
export { silentReporter } from './progress/reporter.js';
export { generateStorageRoot, PRESETS, type StorageRootSpec } from './demo/generate-storage-root.js';
export { migrationRollback, migrationTag, type MigrationRollbackResult } from './restore/migration-rollback.js';
export {
  forget,
  saveRetentionPolicy,
  loadRetentionPolicy,
  type ForgetOptions,
  type ForgetResult,
} from './retention/forget.js';
export {
  applyRetention,
  type RetentionPolicy,
  type RetentionDecision,
  type BackupSummary,
} from './retention/policy.js';
export { prune, type PruneOptions, type PruneResult } from './prune/prune.js';
export { addKey, listKeys, removeKey, type KeyInfo } from './repository/keys.js';
