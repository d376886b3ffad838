/**
 * Typed errors. Every failure the library raises is a FoleBackupError with a
 * stable `code`; the STOP conditions — the tool refuses, and a human must
 * decide — are StopError (CLI exit 3). The CLI maps errors to exit codes in exactly one place
 * (src/cli/output.ts).
 */

/** STOP codes (restore's are listed in docs/RESTORE.md). Raised before anything live is touched. */
export type StopCode =
  | 'MISSING_MANIFEST'
  | 'CHECKSUM_MISMATCH'
  | 'DB_INTEGRITY_ERROR'
  | 'PERMISSION_DENIED'
  | 'VERSION_MISMATCH'
  | 'MODULE_SET_MISMATCH'
  | 'AMBIGUOUS_INTENT'
  | 'UNCLEAR_RESTORE_TARGET'
  /** The operation needs approvals it does not have: a request was stored for a human to approve. */
  | 'APPROVAL_REQUIRED'
  /** This machine's clock is earlier than the newest audit entry: an expired approval must not come back. */
  | 'CLOCK_SKEW'
  /** The actor registry or the audit log fails verification (an edited, forged or missing entry). */
  | 'TRUST_BROKEN'
  /** The registry or audit log is older than, or not an extension of, the newest one this client has verified. */
  | 'TRUST_ROLLBACK';

/** Ordinary error codes: the operation failed; no human decision is needed to retry. */
export type ErrorCode =
  | 'USAGE'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'REPO_NOT_FOUND'
  | 'REPO_NOT_EMPTY'
  | 'REPO_FORMAT_UNSUPPORTED'
  | 'REPO_CORRUPT'
  | 'REPO_LOCKED'
  /** A lock this operation held was lost (its lease lapsed, or another process removed it) before it committed. */
  | 'LOCK_LOST'
  | 'STORAGE_LOCKED'
  | 'DB_LOCKED'
  | 'NOT_A_STORAGE_ROOT'
  /** A path the tool will not go through: a symlink, or a real path outside the root it belongs to. */
  | 'UNSAFE_PATH'
  | 'READ_ERROR'
  | 'WRITE_ERROR'
  /** The storage service refused the credentials or their permissions (an S3 or REST 403, an SSH login). */
  | 'ACCESS_DENIED'
  /** A server whose identity (its SSH host key) is not the one trusted: nothing is sent to it. */
  | 'UNTRUSTED_HOST'
  /** An object under retention (S3 Object Lock) cannot be removed before its retention ends. */
  | 'OBJECT_LOCKED'
  | 'NO_SPACE'
  | 'ABORTED'
  | 'INTERNAL';

export interface ErrorOptions {
  /** What the operator can do about it. */
  hint?: string;
  /** The path (in STORAGE_ROOT or in the repository) the error is about. */
  path?: string;
  /** Facts a script acts on, added to the error's JSON form (e.g. an approval request's id). */
  details?: Record<string, string>;
  cause?: unknown;
}

/** Every failure fole-backup reports: a stable `code` (see docs/MANUAL.md for what each means and what to do), a
 * lowercase "what: cause" message, an optional `hint` saying what to do and the `path` it concerns. */
export class FoleBackupError extends Error {
  readonly code: ErrorCode | StopCode;
  readonly hint: string | undefined;
  readonly path: string | undefined;
  readonly details: Record<string, string> | undefined;

  constructor(code: ErrorCode | StopCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FoleBackupError';
    this.code = code;
    this.hint = options.hint;
    this.path = options.path;
    this.details = options.details;
  }

  toJSON(): { code: string; message: string; hint?: string; path?: string } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.path === undefined ? {} : { path: this.path }),
    };
  }
}

/** A STOP: the tool refuses and a human must decide. */
export class StopError extends FoleBackupError {
  declare readonly code: StopCode;
  /** What the refusing command did change, when not nothing (check records the damage it found). */
  readonly changed: string | undefined;
  constructor(code: StopCode, message: string, options: ErrorOptions & { changed?: string } = {}) {
    super(code, message, options);
    this.name = 'StopError';
    this.changed = options.changed;
  }
}

/** Whether `err` is a STOP: the operation refused because going on needs a human's decision (exit code 3). */
export function isStop(err: unknown): err is StopError {
  return err instanceof StopError;
}

/** Node's errno code of an error, if it has one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const c = (err as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}

/**
 * Wrap a filesystem error as a FoleBackupError that names the path and says
 * what to do. `what` is the operation, e.g. "read", "write".
 */
export function fsError(what: string, path: string, err: unknown): FoleBackupError {
  if (err instanceof FoleBackupError) return err;
  const errno = errnoCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  switch (errno) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new FoleBackupError('NO_SPACE', `${what} ${path}: no space left on device`, {
        path,
        cause: err,
        hint: 'free space on that filesystem (or prune the repository) and run again; nothing partial was kept',
      });
    case 'EACCES':
    case 'EPERM':
      return new FoleBackupError(what === 'read' ? 'READ_ERROR' : 'WRITE_ERROR', `${what} ${path}: permission denied`, {
        path,
        cause: err,
        hint: 'run as a user that can access it (usually the FOLE service user) or fix its permissions',
      });
    case 'ENOENT':
      return new FoleBackupError('NOT_FOUND', `${what} ${path}: no such file or directory`, { path, cause: err });
    case 'EROFS':
      return new FoleBackupError('WRITE_ERROR', `${what} ${path}: read-only filesystem`, {
        path,
        cause: err,
        hint: 'mount the filesystem read-write or choose another location',
      });
    default:
      return new FoleBackupError(what === 'read' ? 'READ_ERROR' : 'WRITE_ERROR', `${what} ${path}: ${detail}`, {
        path,
        cause: err,
      });
  }
}

export function abortError(): FoleBackupError {
  return new FoleBackupError('ABORTED', 'operation aborted', { hint: 'run it again; nothing partial was kept' });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError();
}

/**
 * An error as plain data, to cross a worker-thread boundary (structured clone
 * keeps neither the class nor `code`/`hint`): errorFromData gives back the same
 * class, code, message, hint and path, and the cause's message and errno.
 */
export interface ErrorData {
  stop: boolean;
  code: ErrorCode | StopCode;
  message: string;
  hint?: string;
  path?: string;
  cause?: { message: string; code?: string };
}

export function errorToData(err: unknown): ErrorData {
  if (!(err instanceof FoleBackupError)) {
    return { stop: false, code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
  }
  const cause = err.cause;
  const errno = errnoCode(cause);
  return {
    stop: err instanceof StopError,
    code: err.code,
    message: err.message,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
    ...(err.path === undefined ? {} : { path: err.path }),
    ...(cause === undefined
      ? {}
      : {
          cause: {
            message: cause instanceof Error ? cause.message : String(cause),
            ...(errno === undefined ? {} : { code: errno }),
          },
        }),
  };
}

export function errorFromData(d: ErrorData): FoleBackupError {
  const options: ErrorOptions = {
    ...(d.hint === undefined ? {} : { hint: d.hint }),
    ...(d.path === undefined ? {} : { path: d.path }),
    ...(d.cause === undefined
      ? {}
      : { cause: Object.assign(new Error(d.cause.message), d.cause.code === undefined ? {} : { code: d.cause.code }) }),
  };
  return d.stop
    ? new StopError(d.code as StopCode, d.message, options)
    : new FoleBackupError(d.code, d.message, options);
}
