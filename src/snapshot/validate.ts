/**
 * Validation of what a repository hands back: tree entries and snapshots are
 * input from storage that may be damaged or forged. Anything that is not what a
 * backup writes is refused before anything acts on it: a tree with
 * StopError('CHECKSUM_MISMATCH') naming the path (the data is not what was
 * backed up), a snapshot with StopError('MISSING_MANIFEST').
 *
 * The tree rules, checked per entry (validateTreeEntry) and in context
 * (TreeChecker):
 *
 *   path    relative POSIX, components not '', '.', '..'; no NUL ('\' is an
 *           ordinary name character on POSIX); the string form of a byte
 *           name (src/fs/byte-names.ts): well-formed UTF-16, or escapes
 *           U+DC80..U+DCFF for bytes that are not UTF-8, in canonical form
 *           (what the bytes decode to, so two entries never name one file);
 *           at most 255 bytes per component, 4096 per path, counted on disk.
 *           A database's path is plain UTF-8: SQLite opens it by name
 *   order   strictly increasing in tree order, which rules out duplicates
 *   parent  the parent of every entry is a 'dir' entry seen earlier (the root
 *           for a top-level entry): no entry lies under a file, a database, or
 *           anything never stored (symlinks, sockets, devices are never
 *           stored, so a path "through a symlink" has no such parent). In tree
 *           order a directory's entries follow it contiguously, so a stack of
 *           the directories on the current path is all the state needed.
 *   kind    'dir' | 'file' | 'db'; every other kind is refused, and only the
 *           fields a backup writes for that kind may appear
 *   content size is a safe integer; a file of S bytes has ceil(S / chunk size)
 *           chunks (database snapshots use the repository's dbChunkSize); a
 *           chunk the index knows has exactly the length its place implies; an
 *           empty file's hash is that of no bytes, a one-chunk file's is the
 *           chunk id; a database is pageSize × pageCount bytes
 *   mode    an integer in 0..0o7777; setuid is cleared on everything and setgid
 *           on everything but directories (see SET_ID_BITS)
 *   owner   uid and gid, on any kind, both or neither: integers in
 *           0..MAX_OWNER_ID (backups made before owners were recorded have
 *           neither, and restore as they always did)
 *   time    mtimeMs / ctimeMs finite and within the range of a Date
 */
import { StopError } from '../errors.js';
import { HEX64 } from '../crypto/hash.js';
import { isCanonicalName, isPlainName, nameByteLength } from '../fs/byte-names.js';
import {
  comparePaths,
  SKIPPED_LIMIT,
  type DbInfo,
  type RootMetadata,
  type Snapshot,
  type TreeEntry,
} from './snapshot.js';

/** Longest relative path accepted, in UTF-8 bytes (Linux PATH_MAX). */
const MAX_PATH_BYTES = 4096;
/** Longest path component accepted, in UTF-8 bytes (NAME_MAX of every common filesystem). */
const MAX_NAME_BYTES = 255;

/**
 * Permission bits cleared on read rather than refused. A FOLE STORAGE_ROOT
 * holds data files, never programs: a setuid/setgid file in a backup is at best
 * a mistake and at worst a forged privilege escalation (a restore run as root
 * would create a setuid-root file). Refusing would make an otherwise good
 * backup unrestorable for one bit nobody needs, so the bit is dropped instead.
 * Setgid on a directory only makes new files inherit its group (a common setup
 * for shared data), so directories keep it.
 */
export const SET_ID_BITS = { all: 0o4000, nonDir: 0o2000 } as const;

/**
 * Largest uid or gid accepted: uid_t and gid_t are 32-bit, and the all-ones
 * value means "leave unchanged" to chown, never an owner.
 */
const MAX_OWNER_ID = 0xfffffffe;

/** Sizes a repository cuts content into (RepositoryConfig). */
interface ChunkSizes {
  fileChunkSize: number;
  dbChunkSize: number;
}

/** What the index says about a blob, if it knows it. */
type BlobInfo = (id: string) => { rawLength: number } | undefined;

export interface TreeCheckOptions extends ChunkSizes {
  /**
   * Look a chunk up in the repository index. A chunk the index knows must have
   * the length its place in the file implies. Its type is not checked (saveBlob
   * dedups by content, so a data chunk may be stored as a tree blob). An unknown
   * chunk is left to the loader, which refuses it when it is read, so a tree
   * with missing data can still be listed by verify and compared by an
   * incremental.
   */
  blobInfo?: BlobInfo;
}

const TREE_HINT = 'the backup metadata is damaged or forged; nothing was restored from it — use another backup';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Largest |time| a Date can hold, in ms. */
const MAX_TIME_MS = 8.64e15;

/** An escaped byte of a name (src/fs/byte-names.ts) as JSON.stringify spells it, after an even run of backslashes. */
const ESCAPED_BYTE = /(?<!\\)((?:\\\\)*)\\udc([89a-f][0-9a-f])/g;

/**
 * A printable rendering of an untrusted value for a message: strings quoted
 * with control and line-breaking characters escaped (so a hostile name cannot
 * drive the operator's terminal), a byte of a name that is not UTF-8 as \xNN,
 * long strings cut, anything else by its type.
 */
export function printable(v: unknown, max = 120): string {
  if (typeof v === 'string') {
    const cut = v.length > max ? `${v.slice(0, max)}…` : v;
    // JSON.stringify escapes C0 controls, quotes and lone surrogates; C1 controls, separators and bidi overrides too
    return JSON.stringify(cut)
      .replace(
        /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      )
      .replace(ESCAPED_BYTE, '$1\\x$2');
  }
  if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Characters that do not print as themselves: controls, separators, bidi overrides and isolates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point (terminal safety)
export const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** C0 and C1 control characters and DEL: a terminal acts on them. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point (terminal safety)
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A path for human output: as it is when it prints as itself (UTF-8, no
 * control or line-breaking character), else quoted and escaped by printable()
 * (a byte that is not UTF-8 as \xNN).
 */
export function printablePath(p: string): string {
  return isPlainName(p) && !UNPRINTABLE.test(p) ? p : printable(p, MAX_PATH_BYTES);
}

function bad(what: string, path?: string): StopError {
  return new StopError('CHECKSUM_MISMATCH', `backup tree: ${what}`, {
    hint: TREE_HINT,
    ...(path === undefined ? {} : { path: printable(path).slice(1, -1) }),
  });
}

/** Why `p` is not a safe relative POSIX path, or undefined if it is one. */
export function pathProblem(p: unknown): string | undefined {
  if (typeof p !== 'string') return 'not a string';
  if (p.length === 0) return 'empty path';
  if (p.startsWith('/')) return 'absolute path';
  if (p.includes('\0')) return 'NUL in path';
  const plain = isPlainName(p);
  // an escape that is not what its bytes decode to would name the same file as another string
  if (!plain && !isCanonicalName(p)) return "not valid Unicode, nor the canonical escape of a name's bytes";
  const bytes = plain ? Buffer.byteLength : nameByteLength;
  if (bytes(p) > MAX_PATH_BYTES) return `longer than ${MAX_PATH_BYTES} bytes`;
  for (const part of p.split('/')) {
    if (part === '') return 'empty path component';
    if (part === '.' || part === '..') return `'${part}' component`;
    if (bytes(part) > MAX_NAME_BYTES) return `a name longer than ${MAX_NAME_BYTES} bytes`;
  }
  return undefined;
}

/** A safe relative POSIX path: no absolute, no '.'/'..'/empty components, no NUL, canonical, not over-long. */
export function isSafeRelativePath(p: unknown): p is string {
  return pathProblem(p) === undefined;
}

/** A safe single path component (a module or project id). */
function isSafeName(p: unknown): p is string {
  return isSafeRelativePath(p) && !p.includes('/');
}

const isInt = (n: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): n is number =>
  typeof n === 'number' && Number.isSafeInteger(n) && n >= min && n <= max;
const isOwnerId = (n: unknown): n is number => isInt(n, 0, MAX_OWNER_ID);
const isTime = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && Math.abs(n) <= MAX_TIME_MS;
const isHex = (s: unknown): s is string => typeof s === 'string' && HEX64.test(s);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPageSize = (n: unknown): n is number => isInt(n, 512, 65536) && (n & (n - 1)) === 0;
const isShortString = (s: unknown, max: number): s is string => typeof s === 'string' && s.length <= max;
/** Every element of an array passes `ok` (an index loop: every() skips the holes of a sparse array). */
function isArrayOf<T>(v: unknown, ok: (x: unknown) => x is T): v is T[] {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (!ok(v[i])) return false;
  return true;
}

/** An entry with every field any backup of this format writes (older builds lack `fingerprint`). */
type AnyEntry = TreeEntry & { fingerprint?: string };
type EntryField = keyof AnyEntry;

/**
 * Checks of each TreeEntry field's value. Typed over every key of TreeEntry,
 * so a field added to TreeEntry does not compile until it is validated here.
 */
const FIELD_OK: { [K in EntryField]-?: (v: unknown) => boolean } = {
  path: isSafeRelativePath,
  kind: (v) => v === 'dir' || v === 'file' || v === 'db',
  mode: (v) => isInt(v, 0, 0o7777),
  mtimeMs: isTime,
  uid: isOwnerId,
  gid: isOwnerId,
  size: (v) => isInt(v),
  sha256: isHex,
  chunks: (v) => isArrayOf(v, isHex),
  ino: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  ctimeMs: isTime,
  db: isDbInfo,
  fingerprint: (v) => isShortString(v, 512),
};

/** Which fields a backup writes for each kind (beyond path, kind, mode, mtimeMs). */
const KIND_FIELDS: Record<TreeEntry['kind'], readonly EntryField[]> = {
  dir: ['uid', 'gid'],
  file: ['size', 'sha256', 'chunks', 'ino', 'ctimeMs', 'uid', 'gid'],
  db: ['size', 'sha256', 'chunks', 'db', 'fingerprint', 'uid', 'gid'],
};
const REQUIRED: Record<TreeEntry['kind'], readonly EntryField[]> = {
  dir: [],
  file: ['size', 'sha256', 'chunks'],
  db: ['size', 'sha256', 'chunks', 'db'],
};

function isDbInfo(v: unknown): v is DbInfo {
  if (!isObject(v)) return false;
  for (const k of Object.keys(v)) {
    if (k !== 'pageSize' && k !== 'pageCount' && k !== 'userVersion' && k !== 'journalMode' && k !== 'integrity')
      return false;
  }
  return (
    isPageSize(v.pageSize) &&
    isInt(v.pageCount) &&
    isInt(v.userVersion, -0x80000000, 0xffffffff) &&
    isShortString(v.journalMode, 32) &&
    v.integrity === 'ok'
  );
}

/**
 * Validate one parsed tree entry on its own (everything but its place in the
 * tree). With `sizes`, the chunk count is checked against the repository's
 * chunk sizes; without, only that it is plausible. Returns a fresh object
 * holding exactly the validated fields, with set-id bits cleared.
 */
export function validateTreeValue(v: unknown, sizes?: TreeCheckOptions): TreeEntry {
  if (!isObject(v)) throw bad(`an entry is ${printable(v, 40)}, not an object`);
  const problem = pathProblem(v.path);
  if (problem !== undefined)
    throw bad(`unsafe path ${printable(v.path)} (${problem})`, typeof v.path === 'string' ? v.path : undefined);
  const path = v.path as string;
  // built only when an error is raised: this runs for every entry of every tree
  const at = (): string => printable(path);
  if (!FIELD_OK.kind(v.kind))
    throw bad(
      `${at()}: unknown kind ${printable(v.kind, 40)} (only directories, files and databases are stored)`,
      path,
    );
  const kind = v.kind as TreeEntry['kind'];
  if (kind === 'db' && !isPlainName(path))
    throw bad(
      `${at()}: a database whose name is not UTF-8 (SQLite opens a database by name; a backup stores such a ` +
        `file as a plain file)`,
      path,
    );
  const allowed = KIND_FIELDS[kind];
  for (const k of Object.keys(v)) {
    if (v[k] === undefined || k === 'path' || k === 'kind' || k === 'mode' || k === 'mtimeMs') continue;
    if (!(allowed as readonly string[]).includes(k))
      throw bad(`${at()}: unexpected field ${printable(k, 40)} on a ${kind} entry`, path);
  }
  for (const k of REQUIRED[kind]) if (v[k] === undefined) throw bad(`${at()}: ${kind} entry without ${k}`, path);
  if (!FIELD_OK.mode(v.mode)) throw bad(`${at()}: bad mode ${printable(v.mode, 20)}`, path);
  if (!isTime(v.mtimeMs)) throw bad(`${at()}: bad mtime ${printable(v.mtimeMs, 20)}`, path);
  for (const k of allowed) {
    if (v[k] !== undefined && !FIELD_OK[k](v[k])) throw bad(`${at()}: bad ${k} ${printable(v[k], 40)}`, path);
  }

  // an owner is a pair: a restore never gives an entry half of one
  if ((v.uid === undefined) !== (v.gid === undefined))
    throw bad(`${at()}: ${v.uid === undefined ? 'gid without uid' : 'uid without gid'}`, path);

  const setId = SET_ID_BITS.all | (kind === 'dir' ? 0 : SET_ID_BITS.nonDir);
  const out: AnyEntry = { path, kind, mode: (v.mode as number) & ~setId, mtimeMs: v.mtimeMs as number };
  if (v.uid !== undefined) {
    out.uid = v.uid as number;
    out.gid = v.gid as number;
  }
  if (kind === 'dir') return out;

  const size = v.size as number;
  const sha256 = v.sha256 as string;
  const chunks = [...(v.chunks as string[])];
  checkContent(path, kind, size, sha256, chunks, sizes);
  out.size = size;
  out.sha256 = sha256;
  out.chunks = chunks;
  if (kind === 'file') {
    if (v.ino !== undefined) out.ino = v.ino as number;
    if (v.ctimeMs !== undefined) out.ctimeMs = v.ctimeMs as number;
    return out;
  }
  const d = v.db as DbInfo;
  if (size !== d.pageSize * d.pageCount) {
    throw bad(`${at()}: a database of ${size} bytes is not ${d.pageCount} × ${d.pageSize}-byte pages`, path);
  }
  out.db = {
    pageSize: d.pageSize,
    pageCount: d.pageCount,
    userVersion: d.userVersion,
    journalMode: d.journalMode,
    integrity: 'ok',
  };
  if (v.fingerprint !== undefined) out.fingerprint = v.fingerprint as string;
  return out;
}

/** Size, hash and chunk list agree with each other and with the repository's chunking. */
function checkContent(
  path: string,
  kind: 'file' | 'db',
  size: number,
  sha256: string,
  chunks: string[],
  sizes?: TreeCheckOptions,
): void {
  // built only when an error is raised: this runs for every entry of every tree
  const at = (): string => printable(path);
  const n = chunks.length;
  if (size === 0) {
    if (n !== 0) throw bad(`${at()}: size disagrees with its chunks (0 bytes in ${n} chunks)`, path);
    if (sha256 !== EMPTY_SHA256) throw bad(`${at()}: no content, yet the SHA-256 is not that of no bytes`, path);
    return;
  }
  if (n === 0) throw bad(`${at()}: size disagrees with its chunks (${size} bytes, no chunks)`, path);
  if (n > size) throw bad(`${at()}: size disagrees with its chunks (${n} chunks for ${size} bytes)`, path);
  if (n === 1 && sha256 !== chunks[0]) throw bad(`${at()}: one chunk, yet the SHA-256 is not its chunk's`, path);
  if (sizes === undefined) return;
  const chunkSize = kind === 'db' ? sizes.dbChunkSize : sizes.fileChunkSize;
  // fixed-size chunking: n chunks hold more than (n-1) full chunks and at most n
  if (!((n - 1) * chunkSize < size && size <= n * chunkSize)) {
    const want = Math.floor(size / chunkSize) + (size % chunkSize === 0 ? 0 : 1);
    throw bad(
      `${at()}: size disagrees with its chunks (${size} bytes need ${want} chunks of ${chunkSize}` +
        `, the entry lists ${n})`,
      path,
    );
  }
  if (sizes.blobInfo === undefined) return;
  for (let i = 0; i < n; i++) {
    const info = sizes.blobInfo(chunks[i] as string);
    if (info === undefined) continue;
    const want = i < n - 1 ? chunkSize : size - (n - 1) * chunkSize;
    if (info.rawLength !== want) {
      throw bad(
        `${at()}: size disagrees with its chunks (chunk ${i} holds ${info.rawLength} bytes, its place needs ${want})`,
        path,
      );
    }
  }
}

/** Parse and validate one NDJSON tree line on its own (see validateTreeValue). */
export function validateTreeEntry(line: string, sizes?: TreeCheckOptions): TreeEntry {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw bad('an entry is not JSON');
  }
  return validateTreeValue(v, sizes);
}

/** Checks that paths arrive in strict tree order (which also rules out duplicates). */
export class TreeOrderChecker {
  private last: string | undefined;
  check(path: string): void {
    if (this.last !== undefined) {
      const c = comparePaths(this.last, path);
      if (c >= 0) throw bad(c === 0 ? `duplicate path ${printable(path)}` : `${printable(path)} is out of order`, path);
    }
    this.last = path;
  }
}

/**
 * The whole-tree checker: every entry valid on its own (with the repository's
 * chunk sizes), in strict tree order, and under a directory stored before it.
 * Feed it every line (or parsed entry) of one tree, in order.
 */
export class TreeChecker {
  private readonly order = new TreeOrderChecker();
  /** Directories on the path of the last entry, outermost first. */
  private readonly open: string[] = [];
  private last: TreeEntry | undefined;

  constructor(private readonly options: TreeCheckOptions) {}

  /** Parse, validate and place one NDJSON line; returns the validated entry. */
  line(line: string): TreeEntry {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw bad(`the entry after ${this.last === undefined ? 'the start' : printable(this.last.path)} is not JSON`);
    }
    return this.entry(v);
  }

  /** Validate and place one parsed entry; returns the validated entry. */
  entry(v: unknown): TreeEntry {
    const e = validateTreeValue(v, this.options);
    this.order.check(e.path);
    // leave the directories this entry is not under: their contents are over
    while (this.open.length > 0 && !e.path.startsWith(`${this.open[this.open.length - 1] as string}/`)) this.open.pop();
    const slash = e.path.lastIndexOf('/');
    const parent = slash === -1 ? '' : e.path.slice(0, slash);
    const top = this.open.length === 0 ? '' : (this.open[this.open.length - 1] as string);
    if (parent !== top) {
      const through =
        this.last !== undefined && this.last.kind !== 'dir' && e.path.startsWith(`${this.last.path}/`)
          ? this.last
          : undefined;
      throw bad(
        through !== undefined
          ? `${printable(e.path)} lies under ${printable(through.path)}, which is a ${through.kind}, not a directory`
          : `${printable(e.path)} lies under ${printable(parent)}, which is not a directory in this backup (a ` +
              `symlink or something else never stored)`,
        e.path,
      );
    }
    if (e.kind === 'dir') this.open.push(e.path);
    this.last = e;
    return e;
  }
}

// ---- snapshots ----

function malformed(backupId: string, what: string, path?: string): StopError {
  return new StopError(
    'MISSING_MANIFEST',
    `backup ${printable(backupId, 40).slice(1, -1)}: manifest is malformed: ${what}`,
    {
      hint: "the backup's manifest is damaged or forged; nothing was changed — use another backup",
      ...(path === undefined ? {} : { path: printable(path).slice(1, -1) }),
    },
  );
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PREFIXED_SHA256 = /^sha256:[0-9a-f]{64}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID_RE.test(s);
const isPrefixed = (s: unknown): s is string => typeof s === 'string' && PREFIXED_SHA256.test(s);
const isIsoTime = (s: unknown): s is string =>
  typeof s === 'string' && ISO_TIME.test(s) && Number.isFinite(Date.parse(s));
/** Free text (hosts, actors, versions, reasons): bounded, no NUL. */
const isText = (s: unknown, max = 1024): s is string => typeof s === 'string' && s.length <= max && !s.includes('\0');
const STATS_REQUIRED = ['files', 'dirs', 'databases', 'bytes', 'addedBytes', 'durationMs', 'writersBlockedMs'] as const;

/**
 * Validate a decrypted snapshot object for backup `backupId`. Every field a
 * restore, verify or manifest renderer reads is checked for type and shape,
 * every path in it must be a safe relative path (the one absolute path is
 * `storageRoot`, where the backup was taken from, which is never acted on), and
 * numbers are finite, non-negative integers where they count things. Fields a
 * newer build may add are let through untouched. Throws StopError
 * MISSING_MANIFEST naming the first problem; returns `v` typed.
 */
export function validateSnapshot(v: unknown, backupId: string): Snapshot {
  const no = (what: string, path?: string): StopError => malformed(backupId, what, path);
  if (!isObject(v)) throw no('not an object');
  if (v.formatVersion !== 1) throw no(`formatVersion ${printable(v.formatVersion, 20)}, expected 1`);
  if (v.backupId !== backupId || !isUuid(v.backupId)) throw no(`it names backup ${printable(v.backupId, 40)}`);
  if (v.type !== 'full' && v.type !== 'incremental') throw no(`type ${printable(v.type, 20)}`);
  if (v.type === 'incremental' ? !isUuid(v.parent) || v.parent === backupId : v.parent !== undefined) {
    throw no(`${v.type} backup with parent ${printable(v.parent, 40)}`);
  }
  if (!isArrayOf(v.tags, (t): t is string => isText(t, 256))) throw no('tags');
  if (!isIsoTime(v.createdAt)) throw no(`createdAt ${printable(v.createdAt, 40)}`);
  if (!isText(v.host, 256)) throw no('host');
  if (!isText(v.storageRoot, MAX_PATH_BYTES) || !v.storageRoot.startsWith('/')) throw no('storageRoot');
  if (!isObject(v.actor) || !isText(v.actor.name, 256) || (v.actor.kind !== 'human' && v.actor.kind !== 'agent'))
    throw no('actor');
  if (v.root !== undefined) v.root = checkRoot(v.root, no);
  if (v.auditHead !== undefined && (!isObject(v.auditHead) || !isInt(v.auditHead.seq) || !isHex(v.auditHead.digest))) {
    throw no('auditHead');
  }

  checkManifestHead(v.manifest, backupId, no);

  if (!isArrayOf(v.tree, isHex) || v.tree.length === 0) throw no('tree is not a non-empty list of blob ids');

  const stats = v.stats;
  if (!isObject(stats)) throw no('stats');
  for (const k of STATS_REQUIRED) if (stats[k] === undefined) throw no(`stats.${k} missing`);
  for (const [k, n] of Object.entries(stats)) {
    // counts and bytes are integers; durations may carry fractions of a ms
    const ok = k.endsWith('Ms') ? typeof n === 'number' && Number.isFinite(n) && n >= 0 : isInt(n);
    if (!ok) throw no(`stats.${printable(k, 40).slice(1, -1)} is ${printable(n, 20)}`);
  }

  if (!Array.isArray(v.databases)) throw no('databases');
  const dbPaths = new Set<string>();
  for (const d of v.databases as unknown[]) {
    if (!isObject(d)) throw no('a database record is not an object');
    const problem = pathProblem(d.path);
    if (problem !== undefined)
      throw no(`database path ${printable(d.path)} (${problem})`, typeof d.path === 'string' ? d.path : undefined);
    const p = d.path as string;
    if (!isPlainName(p)) throw no(`database path ${printable(p)} is not UTF-8`, p);
    if (dbPaths.has(p)) throw no(`database ${printable(p)} listed twice`, p);
    dbPaths.add(p);
    if (
      !isHex(d.sha256) ||
      !isInt(d.size) ||
      !isPageSize(d.pageSize) ||
      !isInt(d.pageCount) ||
      !isInt(d.userVersion, -0x80000000, 0xffffffff) ||
      !isShortString(d.journalMode, 32) ||
      d.integrity !== 'ok' ||
      (d.fingerprint !== undefined && !isShortString(d.fingerprint, 512)) ||
      (d.captured !== undefined && typeof d.captured !== 'boolean') ||
      d.size !== d.pageSize * d.pageCount
    ) {
      throw no(`database record ${printable(p)}`, p);
    }
  }

  if (!Array.isArray(v.skipped) || v.skipped.length > SKIPPED_LIMIT) throw no('skipped');
  for (const s of v.skipped as unknown[]) {
    // skipped paths are reported, never acted on: relative, printable text is enough
    if (!isObject(s) || !isText(s.path, MAX_PATH_BYTES) || s.path.startsWith('/') || !isText(s.reason)) {
      throw no('a skipped-path record', isObject(s) && typeof s.path === 'string' ? s.path : undefined);
    }
  }
  if (!isInt(v.skippedCount) || v.skippedCount < v.skipped.length) throw no('skippedCount');
  if (!isArrayOf(v.warnings, (w): w is string => isText(w, 64 * 1024))) throw no('warnings');
  return v as unknown as Snapshot;
}

/** The root's owner and mode: exactly the fields a backup writes, setuid cleared as on every directory. */
function checkRoot(r: unknown, no: (what: string) => StopError): RootMetadata {
  if (!isObject(r)) throw no('root is not an object');
  for (const k of Object.keys(r))
    if (k !== 'mode' && k !== 'uid' && k !== 'gid') throw no(`root: unexpected field ${printable(k, 40)}`);
  if (!isInt(r.mode, 0, 0o7777)) throw no(`root.mode ${printable(r.mode, 20)}`);
  if (!isOwnerId(r.uid) || !isOwnerId(r.gid)) throw no(`root owner ${printable(r.uid, 20)}:${printable(r.gid, 20)}`);
  return { mode: r.mode & ~SET_ID_BITS.all, uid: r.uid, gid: r.gid };
}

function checkManifestHead(m: unknown, backupId: string, no: (what: string, path?: string) => StopError): void {
  if (!isObject(m)) throw no('manifest head is not an object');
  if (m.backupId !== backupId) throw no(`manifest.backupId ${printable(m.backupId, 40)}`);
  if (!isIsoTime(m.createdAt)) throw no(`manifest.createdAt ${printable(m.createdAt, 40)}`);
  if (!isText(m.createdBy, 256)) throw no('manifest.createdBy');
  for (const k of ['foleVersion', 'storageSpecVersion'] as const) {
    const s = m[k];
    if (typeof s !== 'string' || s.length === 0 || s.length > 128 || CONTROL_CHARACTER.test(s))
      throw no(`manifest.${k} ${printable(s, 40)}`);
  }

  if (!Array.isArray(m.modules)) throw no('manifest.modules');
  const modules = new Set<string>();
  for (const name of m.modules as unknown[]) {
    if (!isSafeName(name)) throw no(`module name ${printable(name)}`, typeof name === 'string' ? name : undefined);
    if (modules.has(name)) throw no(`module ${printable(name)} listed twice`);
    modules.add(name);
  }

  if (!Array.isArray(m.projects)) throw no('manifest.projects');
  const projects = new Set<string>();
  for (const p of m.projects as unknown[]) {
    if (!isObject(p)) throw no('a project record is not an object');
    const id = p.projectId;
    if (!isSafeName(id)) throw no(`project id ${printable(id)}`, typeof id === 'string' ? id : undefined);
    if (projects.has(id)) throw no(`project ${printable(id)} listed twice`);
    projects.add(id);
    if (p.projectDb !== null && !isPrefixed(p.projectDb)) throw no(`project ${printable(id)}: projectDb`);
    if (!isArrayOf(p.mapDbs, isPrefixed)) throw no(`project ${printable(id)}: mapDbs`);
    if (!Array.isArray(p.maps)) throw no(`project ${printable(id)}: maps`);
    for (const map of p.maps as unknown[]) {
      if (!isObject(map) || !isSafeName(map.mapId) || !isPrefixed(map.sha256))
        throw no(`project ${printable(id)}: a map record`);
      // a map database lives at projects/<id>/maps/<mapId>/<file>, nowhere else
      const path = map.path;
      const prefix = `projects/${id}/maps/${map.mapId}/`;
      if (!isSafeRelativePath(path) || !path.startsWith(prefix) || path.slice(prefix.length).includes('/')) {
        throw no(`project ${printable(id)}: map path ${printable(path)}`, typeof path === 'string' ? path : undefined);
      }
    }
  }

  const core = m.core;
  if (!isObject(core)) throw no('manifest.core');
  if (core.coreDb !== null && !isPrefixed(core.coreDb)) throw no('manifest.core.coreDb');
  if (!isObject(core.templates)) throw no('manifest.core.templates');
  for (const [path, hash] of Object.entries(core.templates)) {
    const problem = pathProblem(path);
    if (problem !== undefined) throw no(`template path ${printable(path)} (${problem})`, path);
    if (!isPrefixed(hash)) throw no(`template ${printable(path)}: hash`, path);
  }
}
