/**
 * The storage seam. A Backend stores opaque, immutable objects by (type, name);
 * it knows nothing about encryption, packs or snapshots. Implementations: local
 * directory, S3 bucket, in-memory; wrappers (fault injection, retry) implement the same
 * interface and are stacked in one place (openBackend).
 *
 * Layout names are fixed so every backend stores the same tree:
 *   config            the repository config (the only plaintext object)
 *   keys/<name>       wrapped master keys
 *   data/<name>       pack files (local: data/<first two hex chars>/<name>)
 *   index/<name>      index files
 *   snapshots/<name>  one per backup, named by backup id
 *   locks/<name>      repository locks
 *   settings/<name>   repository-wide settings (e.g. the stored retention policy)
 *   registry/<name>   the chain of actor registry entries (src/trust/)
 *   audit/<name>      the audit log's entries and the disclosures of their redactable values
 *   approvals/<name>  approval requests, approvals and their consumption records
 *   witness/<name>    checkpoints of other repositories' audit logs, when this one is their witness
 *   damage/<name>     records of damaged or missing data that check, verify and repair found
 *   quarantine/<name> damaged packs and index files repair moved aside (data.<name>, index.<name>)
 */

import { FoleBackupError } from '../errors.js';
import { isTempName } from '../fs/durable.js';

/** The kind of an object: the folder it lives in (see the layout above). */
export type ObjectType =
  | 'config'
  | 'keys'
  | 'data'
  | 'index'
  | 'snapshots'
  | 'locks'
  | 'settings'
  | 'registry'
  | 'audit'
  | 'approvals'
  | 'witness'
  | 'damage'
  | 'quarantine';

export const OBJECT_TYPES: readonly ObjectType[] = [
  'config',
  'keys',
  'data',
  'index',
  'snapshots',
  'locks',
  'settings',
  'registry',
  'audit',
  'approvals',
  'witness',
  'damage',
  'quarantine',
];

/** Folders a repository made by an older build may lack: a backend makes them on the first save. */
export const LATER_TYPES: readonly ObjectType[] = OBJECT_TYPES.slice(OBJECT_TYPES.indexOf('settings'));

/** An object's bytes, whole or as parts to be written one after the other. */
export type Bytes = Uint8Array | readonly Uint8Array[];

/** The parts of `data` as one buffer (for backends that keep objects whole). */
export function joinBytes(data: Bytes): Buffer {
  return data instanceof Uint8Array ? Buffer.from(data) : Buffer.concat(data);
}

/** One object of a repository: its kind (the folder it lives in) and its name. */
export interface ObjectHandle {
  type: ObjectType;
  /** Object name: [A-Za-z0-9_.-], 1..128 chars, not starting with '.'; ignored for 'config'. */
  name: string;
}

/** An object as listed: its name, size and (where the backend knows it) modification time. */
export interface ObjectInfo {
  name: string;
  size: number;
  /**
   * When the object was last written (epoch ms), where the backend can tell.
   * Callers that judge an object by its age (a lock nobody can read, a pack
   * prune might delete) MUST treat an object without it as new.
   */
  mtimeMs?: number;
}

/** A byte range of an object: `length` bytes from `offset`. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** One object opened for ranged reads (Backend.openReader). */
export interface ObjectReader {
  /** The object's size when it was opened. */
  readonly size: number;
  /**
   * Like Backend.load(h, range): a buffer of the caller's own. `into` (at least range.length bytes): a buffer of
   * the caller's the reader may read into, the result then viewing its start; a reader that cannot (or may leave a
   * read running after it failed, as one that retries over a network) ignores it. The caller must not touch `into`
   * until the read settles.
   */
  read(range: ByteRange, into?: Uint8Array): Promise<Buffer>;
  /** Release the object; reads under way finish first. Safe to call more than once. */
  close(): Promise<void>;
}

/**
 * A new object whose bytes are appended as they come and whose name is given at the end (Backend.createDraft).
 * Until it is committed, and after a crash, it is a temporary file (listTemporary).
 */
export interface ObjectDraft {
  /**
   * Append `parts` after everything appended before. Appends may overlap (each has its place); the caller MUST
   * NOT modify a part until its append settles. A failed append fails the draft: commit throws its error.
   */
  append(parts: readonly Uint8Array[]): Promise<void>;
  /**
   * Make the draft the object `h` (of the type it was created for), atomically and durably as save() does, once
   * every append has settled. On failure nothing is stored and the draft is gone; NO_SPACE for a full storage.
   */
  commit(h: ObjectHandle): Promise<void>;
  /** Drop the draft (after a failure, or when it is not wanted); never throws. Safe to call more than once. */
  discard(): Promise<void>;
}

/** A temporary file an interrupted save left behind (Backend.listTemporary). */
export interface TemporaryFile {
  /** Where it is in the repository, e.g. "index/.tmp-…", "data/3f/.tmp-…", ".tmp-…". */
  path: string;
  size: number;
  /** Last modification, ms since the epoch: a save under way keeps it recent. */
  mtimeMs: number;
}

/** What a storage service says about a location beyond its objects (an S3 bucket's versioning and Object Lock). */
export interface StorageFacts {
  /** Whether old versions of overwritten and deleted objects are kept. */
  versioning?: 'enabled' | 'suspended' | 'disabled' | 'unknown';
  /** Whether the service proved it enforces Object Lock on this location. */
  objectLock?: boolean;
}

/** What immutability-probe found a storage location really enforces. */
export interface ImmutabilityReport {
  /** True only when an attempt to delete a canary under retention was refused. */
  immutable: boolean;
  /** Whether the service proved it has Object Lock enabled (by the body of its answer, not its status). */
  objectLock: boolean;
  versioning: NonNullable<StorageFacts['versioning']>;
  canary: {
    /** Whether the canary was put with a retention date (only where Object Lock was proved). */
    retention: boolean;
    /** Whether deleting it (the very version put) went through. */
    deleted: boolean;
  } | null;
  /** Why it is or is not immutable, one finding a line. */
  findings: string[];
}

/** Where a repository's objects live (a local directory today). Objects are written whole and atomically, never
 * overwritten in place; every implementation passes test/backend-conformance.ts. */
export interface Backend {
  /** Human-readable location, e.g. "local:/srv/backups/repo". */
  readonly location: string;

  /**
   * Create an empty repository location.
   * MUST throw FoleBackupError('REPO_NOT_EMPTY') if the location already holds anything.
   */
  create(): Promise<void>;

  /** Whether the location exists and holds a `config` object. */
  isRepository(): Promise<boolean>;

  /**
   * Store an object atomically and durably: when the promise resolves the object is
   * on stable storage; a crash at any instant leaves either no object or the whole
   * object under that name, never a part. Saving an existing name replaces it atomically.
   * MUST throw FoleBackupError('NO_SPACE') when the storage is full, leaving no partial object.
   * `data` may come in parts (a pack's blobs as they were sealed): the object is their
   * concatenation, written without copying them into one buffer first.
   */
  save(h: ObjectHandle, data: Bytes): Promise<void>;

  /**
   * Store an object only if none has that name: like save (atomic, durable), but an existing object is never
   * replaced. MUST throw FoleBackupError('ALREADY_EXISTS') if the name is taken, and of two saves racing for one
   * name exactly one MUST succeed. The append-only chains (registry, audit log, an approval's consumption) are
   * made of such objects, so a second writer can never overwrite or fork them.
   */
  saveNew(h: ObjectHandle, data: Bytes): Promise<void>;

  /**
   * Optional: start an object of `type` written piece by piece, named when it is complete (a pack is named by the
   * hash of its bytes), so that a writer need not hold it in memory. Errors (a folder that cannot be written)
   * surface on the first append or on commit. A backend without it is written with save().
   */
  createDraft?(type: Exclude<ObjectType, 'config'>): ObjectDraft;

  /**
   * Read an object, or `range` of it. MUST throw FoleBackupError('NOT_FOUND') if the
   * object does not exist, and 'REPO_CORRUPT' if the range lies beyond its end.
   * The buffer returned is the caller's: the backend keeps no reference to it (restore
   * hands its memory over to a worker thread).
   */
  load(h: ObjectHandle, range?: ByteRange): Promise<Buffer>;

  /**
   * Optional: open one object for many ranged reads (restore reads a pack in
   * dozens of spans; one open instead of an open, a stat and a close per span).
   * Same errors as load: NOT_FOUND here, REPO_CORRUPT for a range beyond the end.
   * The caller MUST close the reader. A backend without it is read with load().
   */
  openReader?(h: ObjectHandle): Promise<ObjectReader>;

  /**
   * Optional: `range` of an object in one request, its bytes as they arrive, in order (pieces of any size, the
   * caller's own). For a remote backend, where a request costs a round trip: restore reads a pack's spans, gaps
   * and all, in one request and keeps only the spans (src/restore/span-stream.ts). Not reading on holds the
   * transfer back; ending the iteration early ends the request. Errors as load's: NOT_FOUND, REPO_CORRUPT for a
   * range beyond the end (on the first piece or, where only the bytes tell, when they stop short).
   */
  loadStream?(h: ObjectHandle, range: ByteRange): AsyncIterable<Uint8Array>;

  /** Size of an object. MUST throw FoleBackupError('NOT_FOUND') if it does not exist. */
  stat(h: ObjectHandle): Promise<ObjectInfo>;

  /** Every complete object of a type (never temporary files), in no particular order. */
  list(type: ObjectType): AsyncIterable<ObjectInfo>;

  /**
   * Optional: the temporary files interrupted saves left behind (a writer killed
   * between creating its temp file and renaming it). A backend whose save leaves
   * nothing partial behind (a single PUT) has none and need not implement it.
   * list() never shows them; `check` reports them and `prune` removes old ones.
   */
  listTemporary?(): AsyncIterable<TemporaryFile>;

  /**
   * Remove a file listTemporary gave. MUST refuse (INTERNAL) a path
   * listTemporary could not have given; one already gone is not an error.
   */
  removeTemporary?(t: TemporaryFile): Promise<void>;

  /** Remove an object. Removing a missing object is not an error. */
  remove(h: ObjectHandle): Promise<void>;

  /** Optional: facts about the storage (init reports them). A backend without it has none to tell. */
  storageFacts?(): Promise<StorageFacts>;

  /**
   * Optional: when an object's retention (S3 Object Lock) ends, epoch ms, or undefined when it has none or it has
   * ended. A backend with it MUST refuse (OBJECT_LOCKED) to remove an object whose retention has not ended, and
   * prune and forget ask it first so they never try.
   */
  retainedUntil?(h: ObjectHandle): Promise<number | undefined>;

  /** Optional: test what the storage really enforces (immutability-probe): canary objects are put and deleted. */
  probeImmutability?(): Promise<ImmutabilityReport>;

  /** Release resources (connections, handles). */
  close(): Promise<void>;
}

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Why `path` could not be one that listTemporary gives (a temp name at the top, in a type folder or in
 * data/<xx>), or undefined: removeTemporary refuses anything else, so it can never delete an object.
 */
export function temporaryPathProblem(path: string): string | undefined {
  const parts = path.split('/');
  const name = parts[parts.length - 1] ?? '';
  const folder = parts.slice(0, -1);
  const folderOk =
    folder.length === 0 ||
    (folder.length === 1 && OBJECT_TYPES.includes(folder[0] as ObjectType) && folder[0] !== 'config') ||
    (folder.length === 2 &&
      folder[0] === 'data' &&
      /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(folder[1] ?? '') &&
      !isTempName(folder[1] ?? ''));
  return folderOk && isTempName(name) ? undefined : 'not a temporary file of this repository';
}

/** Throws if a handle's name could escape its folder or is otherwise invalid. */
export function checkHandle(h: ObjectHandle): void {
  if (h.type === 'config') return;
  if (!NAME_RE.test(h.name)) {
    throw new Error(`invalid object name ${JSON.stringify(h.name)} for type ${h.type}`);
  }
}

/** Whether `name` is a valid object name for `type` (what checkHandle accepts). */
export function isObjectName(type: ObjectType, name: string): boolean {
  try {
    checkHandle({ type, name });
    return true;
  } catch {
    return false;
  }
}

/** Throws INTERNAL for a range no caller may ask for (negative, fractional, unsafe). `where` names the object. */
export function checkRange(where: string, range: ByteRange): void {
  if (
    !Number.isSafeInteger(range.offset) ||
    !Number.isSafeInteger(range.length) ||
    range.offset < 0 ||
    range.length < 0
  ) {
    throw new FoleBackupError(
      'INTERNAL',
      `read ${where}: invalid range offset=${range.offset} length=${range.length}`,
      {
        path: where,
      },
    );
  }
}

/** The REPO_CORRUPT error of a range that lies beyond the end of an object of `size` bytes. */
export function beyondEnd(where: string, range: ByteRange, size: number): FoleBackupError {
  return new FoleBackupError(
    'REPO_CORRUPT',
    `read ${where}: range ${range.offset}+${range.length} lies beyond the end of the object (${size} bytes)`,
    { path: where, hint: 'the object is shorter than the index says; check the repository' },
  );
}
