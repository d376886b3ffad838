/**
 * fole-backup's library API: what a FOLE server, an HTTP API or an agent
 * interface calls to back up, verify, browse and restore a STORAGE_ROOT.
 * Everything here is stable within a major version; modules not exported here
 * are internal and may change in any release. See docs/API.md.
 *
 * Two subpaths carry what a server does not need:
 * - `fole-backup/demo`: a demo STORAGE_ROOT generator (tests, benchmarks, `fole-backup demo`);
 * - `fole-backup/backend/local`, `fole-backup/backend/memory`: Backend implementations
 *   (a repository is normally opened by its location with openRepository).
 */

// errors: every failure is a FoleBackupError with a stable code; a StopError asks a human
export { FoleBackupError, StopError, isStop, type ErrorCode, type StopCode } from './errors.js';

// repositories
export type { Backend, ObjectHandle, ObjectInfo, ObjectType, ByteRange, TemporaryFile } from './backend/backend.js';
export { openBackend } from './backend/open.js';
export { initRepository, openRepository, type RepositoryLocation } from './repository/open-repository.js';
export type { Repository, InitOptions, OpenOptions } from './repository/repository.js';
export { FORMAT_VERSION, type RepositoryConfig } from './repository/format.js';
export { addKey, listKeys, removeKey, type KeyInfo } from './repository/keys.js';
export { RepositoryLock, listLocks, unlockRepository, type LockInfo, type UnlockResult } from './repository/lock.js';

// backing up
export {
  backup,
  checkStorageRoot,
  STORAGE_SPEC_VERSION,
  type BackupOptions,
  type BackupResult,
} from './backup/backup.js';
export {
  acquireStorageLock,
  readStorageLock,
  type AcquireOptions as StorageLockOptions,
  type HeldStorageLock,
  type LockRow as StorageLockRow,
} from './storage/global-lock.js';

// listing and reading backups
export type { Snapshot, TreeEntry, ManifestHead, SnapshotDatabase } from './snapshot/snapshot.js';
export { listSnapshots, loadSnapshot, resolveBackupId } from './snapshot/store.js';
export { parseFoleVersion, compareSemver, checkBackupLabels, type Semver } from './snapshot/fields.js';
export { readManifest, renderManifest, type SpecManifest, type TextSink } from './manifest/manifest.js';

// checking
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

// restoring: plan (pure, refuses with STOPs) then restore (plans again and executes)
export { restore, type RestoreOptions, type RestoreResult } from './restore/restore.js';
export {
  planRestore,
  type RestorePlan,
  type PlanInput,
  type PlanOptions,
  type PlanSnapshot,
  type TargetState,
  type TargetKind,
} from './restore/plan.js';
export { inspectTarget } from './restore/target.js';
export { recover, type RecoverResult } from './restore/recover.js';
export type { RestoreJournal, JournalState } from './restore/journal.js';
export { migrationRollback, migrationTag, type MigrationRollbackResult } from './restore/migration-rollback.js';

// retention
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
export {
  repair,
  type RepairOptions,
  type RepairReport,
  type AffectedBackup,
  type Heal,
} from './repair/repair.js';

// copies
export { copyBackups, type CopyOptions, type CopyReport } from './copy/copy.js';

// progress
export type { ProgressReporter, ProgressSnapshot } from './progress/reporter.js';
export { silentReporter } from './progress/reporter.js';

// trust: actors, permissions and the gate every operation passes (docs/TRUST.md)
export {
  openGate,
  authenticate,
  signRequest,
  requirePermission,
  REQUEST_WINDOW_MS,
  type Credentials,
  type Principal,
  type TrustContext,
  type GateOptions,
  type RequestBody,
} from './trust/gate.js';
export { RequestNonces } from './trust/request-nonces.js';
export {
  authorize,
  PERMISSIONS,
  ROLES,
  AGENT_FORBIDDEN,
  PROJECT_SCOPABLE,
  type Permission,
  type Role,
  type Scope,
  type Grant,
  type ActorKind,
  type ActorPermissions,
  type Authorization,
} from './trust/permissions.js';
export { OPERATIONS, type OperationName } from './trust/operations.js';
export { generateActorKey, signerFromPem, type ActorSigner, type GeneratedActorKey } from './trust/actor-key.js';
export { readActorKeyFile, readPublicKeyFile, writeActorKeyFiles } from './trust/actor-key-file.js';
export { bootstrapRegistry, changeRegistry, listActors, type ActorListing } from './trust/actors.js';
export { readRegistry } from './trust/registry-store.js';
export type {
  RegistryState,
  RegistryAction,
  ActorRecord,
  ChainHead,
  NewActor,
} from './trust/registry.js';
export { defaultStateDir } from './trust/trust-state.js';
export type { Envelope, EnvelopeSignature } from './trust/envelope.js';
export { singleOperator } from './trust/gate.js';
export { passApprovals, type ApprovalStep } from './trust/approval-flow.js';
export {
  createRequest,
  loadRequest,
  approveRequest,
  denyRequest,
  requestStatus,
  listRequestIds,
  consumeRequest,
  type LoadedRequest,
  type RequestStatus,
} from './trust/approvals-store.js';
export {
  requiredApprovals,
  evaluateApprovals,
  planDigestOf,
  DEFAULT_EXPIRY_MS,
  MAX_EXPIRY_MS,
  type ApprovalRequestBody,
  type ApprovalBody,
  type ApprovalVerdict,
  type GatedOperation,
} from './trust/approvals.js';
export { readAudit, appendAudit, type AuditLog, type AuditInput } from './trust/audit-store.js';
export { recordOperation, type OperationRecord, type Outcome } from './trust/audit-record.js';
export { exportAudit, verifyAuditFile, type FileVerification } from './trust/audit-export.js';
export {
  makeCheckpoint,
  checkAgainstWitness,
  type CheckpointBody,
  type StoredCheckpoint,
  type WitnessCheck,
} from './trust/witness.js';
export { readCheckpoints, storeCheckpoint, checkpointName } from './trust/witness-store.js';
export {
  verifyAuditChain,
  type AuditEntryBody,
  type AuditResult,
  type AuditProblem,
  type VerifiedEntry,
} from './trust/audit.js';
export { findExposedSecrets, DEFAULT_SCAN, type Exposure, type DoctorOptions } from './trust/doctor.js';
export { restoreApprovalPlan, assertTargetAsApproved, type RestoreApprovalPlan } from './restore/approval-plan.js';
export { forgetApprovalPlan, type ForgetApprovalPlan } from './retention/approval-plan.js';
