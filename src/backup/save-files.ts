/**
 * The file stage: turns each planned entry into its tree entry, many at once
 * and in tree order out (restic's file saver). Per entry:
 *
 *   directory                  → its entry, nothing to read
 *   symlink, socket, FIFO…     → left out, and said why
 *   database                   → wait for its capture outcome, then as below
 *   unchanged since the parent → the parent's entry, not read (keptEntry)
 *   anything else              → read, chunked, sealed by the file workers (FilePool);
 *                                a database's copy was handed to them when it was made
 *
 * It starts while the scan is still walking and runs beside the capture: only a
 * database's own entry waits for its copy, and what is saved behind it waits in a
 * spool, not in memory (saveFiles).
 */
import { readlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FoleBackupError, throwIfAborted } from '../errors.js';
import { fsPath } from '../fs/byte-names.js';
import { isInside } from '../fs/inside-root.js';
import { orderedMap } from '../concurrency/ordered-map.js';
import { estimatedSize, Spool } from './spool.js';
import type { DbInfo, SnapshotDatabase, TreeEntry } from '../snapshot/snapshot.js';
import { printable, SET_ID_BITS } from '../snapshot/validate.js';
import type { CapturedDatabase } from '../sqlite/capture.js';
import type { DatabaseOutcome, StoreCopy } from './capture-databases.js';
import type { StoredContent, StoreOutcome, StoreRequest } from './file-pool.js';
import type { NoteSink } from './notes.js';
import { type PlannedEntry, type PlannedRecord, unchangedFile } from './plan.js';
import type { FileProgress } from './progress.js';

/**
 * Entries in flight at once: enough to keep every file worker's queue full (FilePool takes
 * up to 4 jobs of up to 64 small files per worker) while the next ones are planned.
 */
const WINDOW = 2048;
/**
 * Estimated bytes of saved entries held in memory while they wait for a database's entry
 * ahead of them; the rest waits on disk. The first database (core/core.db) waits for the
 * capture, which waits for the end of the scan, so on a large tree most of what is
 * stored meanwhile waits here. 32 MiB keeps the ~60k entries of `tiny-files` in memory:
 * spilled, an unchanged incremental of it wrote, read and parsed 37k of them again, ~0.2 s of
 * the main thread, and held no less memory (the spill's own garbage: peak RSS the same
 * within the noise at a 64 MiB budget). A million files still go to disk.
 */
const WAITING_BUDGET = 32 * 1024 * 1024;

/** Which of the snapshot's counts an entry adds to. */
type SaveKind = 'dir' | 'filesNew' | 'filesChanged' | 'filesUnchanged' | 'dbsCaptured' | 'dbsUnchanged';

/** One entry of the tree, as saved; a database also gets its record in the snapshot. */
export interface SavedEntry {
  entry: TreeEntry;
  kind: SaveKind;
  database?: SnapshotDatabase;
  /** A file or database the parent backup held too (what is not met again was deleted since). */
  inParent?: boolean;
}

/** An entry waiting for its turn: saved, or a database whose entry needs its capture's outcome first. */
type Waiting = SavedEntry | { database: PlannedEntry };

export interface SaveFilesInput {
  /** The STORAGE_ROOT's real path. */
  root: string;
  /** The plan's entries, in tree order, as they are planned. */
  entries: AsyncIterable<PlannedEntry>;
  /** Reads, chunks and stores one file (FilePool.store). */
  store: (req: StoreRequest) => Promise<StoreOutcome>;
  /** Chunk size for files (the repository's fileChunkSize). */
  chunkSize: number;
  /** Whether the repository holds a blob: a parent's entry is kept only while all its chunks are there. */
  hasBlob: (id: string) => boolean;
  /** Each database's capture outcome. */
  databases: { wait(path: string): Promise<DatabaseOutcome> };
  /** Entries in flight at once (default WINDOW). */
  concurrency?: number;
  /** Path prefix, in a private directory, of the files saved entries wait in (see Spool). */
  spoolPrefix: string;
  /** Aborts the stage; `failure` then rejects with why, when the scan or the capture failed. */
  signal: AbortSignal;
  failure: Promise<unknown>;
  notes: NoteSink;
  progress: FileProgress;
}

/**
 * Save every entry of `input.entries`, handing each saved one to `sink` in tree order.
 *
 * Two stages, so that a database's entry never holds up storing: files are stored a
 * window at a time and go on, saved, into a spool (memory up to WAITING_BUDGET, then
 * disk); a database goes on as itself. The second stage takes them in order, waits for
 * each database's outcome there, and hands everything to `sink`. Memory is bounded by
 * the window and the budget, not by how long the capture keeps a database waiting.
 */
export async function saveFiles(input: SaveFilesInput, sink: (saved: SavedEntry) => Promise<void>): Promise<void> {
  const waiting = new Spool<Waiting>(input.spoolPrefix, { budget: WAITING_BUDGET, sizeOf: waitingSize });
  const storing = orderedMap(
    input.entries,
    input.concurrency ?? WINDOW,
    async (planned): Promise<Waiting | undefined> =>
      planned.record.sqlite === true ? { database: planned } : markInParent(await saveFile(input, planned), planned),
    async (w) => {
      if (w !== undefined) await waiting.push([w]);
    },
  ).then(
    () => waiting.end(),
    (err: unknown) => {
      waiting.fail(err);
      throw err;
    },
  );
  const ordering = (async () => {
    for await (const w of waiting.read()) {
      const saved = 'entry' in w ? w : markInParent(await saveDatabase(input, w.database), w.database);
      if (saved !== undefined) await sink(saved);
    }
  })();
  await Promise.all([storing, ordering]);
}

function markInParent(saved: SavedEntry | undefined, { prev }: PlannedEntry): SavedEntry | undefined {
  if (saved !== undefined && saved.entry.kind !== 'dir' && prev !== undefined && prev.kind !== 'dir')
    saved.inParent = true;
  return saved;
}

/**
 * A waiting entry's estimated size in memory. A saved entry of a one-chunk file with a 36-character path measured
 * 360 bytes with its strings (the entry, its SavedEntry, its chunk list, the path, the SHA-256 and the chunk id);
 * this counts 452 for it (two bytes a character, for names that are not Latin-1).
 */
function waitingSize(w: Waiting): number {
  if (!('entry' in w)) {
    const e = w.database.prev ?? w.database.record;
    return estimatedSize(e.path, 'chunks' in e ? (e.chunks?.length ?? 0) : 0);
  }
  return 220 + 2 * w.entry.path.length + 80 * ((w.entry.chunks?.length ?? 0) + 1);
}

async function checkStopped(s: SaveFilesInput): Promise<void> {
  if (s.signal.aborted) {
    await s.failure; // a failed scan or capture: its error, not a generic abort
    throwIfAborted(s.signal);
  }
}

/** Anything but a database: its entry, kept from the parent or stored. */
async function saveFile(s: SaveFilesInput, { record: r, prev }: PlannedEntry): Promise<SavedEntry | undefined> {
  await checkStopped(s);
  warnSetId(r, s.notes);
  if (r.kind === 'dir') return { kind: 'dir', entry: dirEntry(r) };
  if (r.kind === 'symlink') {
    await skipSymlink(s.root, r.path, s.notes);
    return undefined;
  }
  if (r.kind === 'other') {
    s.notes.skip(r.path, 'not a regular file (socket, FIFO or device)');
    return undefined;
  }
  return saveContent(s, r, prev, undefined);
}

/** A database, once the capture has settled it. */
async function saveDatabase(s: SaveFilesInput, { record: r, prev }: PlannedEntry): Promise<SavedEntry | undefined> {
  await checkStopped(s);
  warnSetId(r, s.notes);
  const outcome = await s.databases.wait(r.path);
  if (outcome.vanished === true) {
    s.notes.skip(r.path, 'vanished during backup');
    return undefined;
  }
  warnStoredAsBytes(r.path, outcome, s.notes);
  return saveContent(s, r, prev, outcome);
}

/** A file's or a database's entry: kept from the parent when provably unchanged, else stored. */
async function saveContent(
  s: SaveFilesInput,
  r: PlannedRecord,
  prev: TreeEntry | undefined,
  outcome: DatabaseOutcome | undefined,
): Promise<SavedEntry | undefined> {
  // an incremental keeps what provably did not change, without reading it
  const kept = keptEntry(r, prev, outcome, s.hasBlob);
  if (kept !== undefined) {
    s.progress.kept(r.path, kept.entry.size ?? 0);
    return kept;
  }
  const db = outcome?.captured;
  if (db !== undefined && outcome?.stored === undefined)
    throw new FoleBackupError('INTERNAL', `capture did not store ${r.path}`, { path: r.path });
  const out = await (outcome?.stored ??
    s.store({ path: join(s.root, r.path), chunkSize: s.chunkSize, size: r.size, onBytes: s.progress.reading(r.path) }));
  s.progress.stored();
  if (db !== undefined && out.status !== 'stored') {
    // a failed capture removes every copy it made, stored ones too: its error (a damaged database's STOP) is the
    // one to report, not the copy it took away
    await s.failure;
    requireStoredCopy(r.path, out);
  }
  if (out.status === 'vanished') {
    s.notes.skip(r.path, 'vanished during backup');
    return undefined;
  }
  if (out.status === 'not-a-file') {
    s.notes.skip(r.path, 'replaced by a non-file during backup');
    return undefined;
  }
  if (db !== undefined) return capturedEntry(r, db, out.content);
  if (out.changedWhileReading)
    s.notes.warn(`${printable(r.path)} kept changing while it was read; stored the last read`, r.path);
  const entry: TreeEntry = {
    path: r.path,
    kind: 'file',
    mode: out.stat.mode & 0o7777,
    mtimeMs: out.stat.mtimeMs,
    uid: out.stat.uid,
    gid: out.stat.gid,
    size: out.content.size,
    sha256: out.content.sha256,
    chunks: out.content.chunks,
    ino: out.stat.ino,
    ctimeMs: out.stat.ctimeMs,
  };
  return { kind: prev === undefined ? 'filesNew' : 'filesChanged', entry };
}

/**
 * What an incremental keeps from its parent without reading: a database whose
 * fingerprint the capture found unchanged, or a regular file with the parent's
 * size, times and inode (unchangedFile) — either only while every chunk of the
 * parent's entry is still in the repository. Undefined: read and store it.
 * Mode, owner (and a database's mtime) are taken as scanned.
 */
export function keptEntry(
  r: PlannedRecord,
  prev: TreeEntry | undefined,
  outcome: DatabaseOutcome | undefined,
  hasBlob: (id: string) => boolean,
): SavedEntry | undefined {
  const fingerprint = outcome?.unchanged;
  if (fingerprint !== undefined) {
    if (prev?.kind !== 'db' || prev.fingerprint !== fingerprint || !hasChunks(prev, hasBlob)) {
      // the parent's record disagrees with what capture was told: never guess, fail loudly
      throw new FoleBackupError('INTERNAL', `incremental: parent backup has no usable snapshot of ${r.path}`, {
        path: r.path,
        hint: 'run a full backup (without --incremental)',
      });
    }
    const info = prev.db as DbInfo;
    return {
      kind: 'dbsUnchanged',
      entry: { ...prev, mode: r.mode, mtimeMs: r.mtimeMs, uid: r.uid, gid: r.gid },
      database: {
        path: r.path,
        sha256: prev.sha256 ?? '',
        size: prev.size ?? 0,
        ...info,
        fingerprint,
        captured: false,
      },
    };
  }
  if (r.sqlite !== true && unchangedFile(r, prev) && hasChunks(prev, hasBlob)) {
    // the owner as scanned: a parent made before owners were recorded has none
    return { kind: 'filesUnchanged', entry: { ...prev, mode: r.mode, uid: r.uid, gid: r.gid } };
  }
  return undefined;
}

function hasChunks(e: TreeEntry, hasBlob: (id: string) => boolean): boolean {
  return (e.chunks ?? []).every(hasBlob);
}

/**
 * A captured database's copy must have been stored. The copy is ours, in our private staging: gone or not a file
 * means something removed it under us (a logout's removal of a user's /dev/shm files, say), and a captured
 * database is never left out of a backup as a file that vanished would be.
 */
export function requireStoredCopy(
  path: string,
  out: StoreOutcome,
): asserts out is Extract<StoreOutcome, { status: 'stored' }> {
  if (out.status === 'stored') return;
  throw new FoleBackupError('READ_ERROR', `the captured copy of ${path} was removed while it was stored`, {
    path,
    hint: 'run the backup again; if it happens again, name a --staging-dir on disk',
  });
}

/** Puts each database copy into the repository as soon as the capture has made it (capture-databases' StoreCopy). */
export function storeDatabaseCopy(
  store: (req: StoreRequest) => Promise<StoreOutcome>,
  chunkSize: number,
  progress: FileProgress,
): StoreCopy {
  // stored when made, not when the tree order reaches it: a large database then hashes and
  // seals beside the small files instead of holding the ordered window while one worker
  // goes through it alone
  return (path, db) => {
    const stored = store({ path: db.file, chunkSize, size: db.size, first: true, onBytes: progress.reading(path) });
    stored.catch(() => {}); // awaited by the database's tree entry; a failure surfaces there
    return stored;
  };
}

function capturedEntry(r: PlannedRecord, db: CapturedDatabase, c: StoredContent): SavedEntry {
  const info: DbInfo = {
    pageSize: db.pageSize,
    pageCount: db.pageCount,
    userVersion: db.userVersion,
    journalMode: db.journalMode,
    integrity: db.integrity,
  };
  return {
    kind: 'dbsCaptured',
    entry: {
      path: r.path,
      kind: 'db',
      mode: r.mode,
      mtimeMs: r.mtimeMs,
      uid: r.uid,
      gid: r.gid,
      size: c.size,
      sha256: c.sha256,
      chunks: c.chunks,
      db: info,
      fingerprint: db.fingerprint,
    },
    database: { path: r.path, sha256: c.sha256, size: c.size, ...info, fingerprint: db.fingerprint, captured: true },
  };
}

function dirEntry(r: PlannedRecord): TreeEntry {
  return { path: r.path, kind: 'dir', mode: r.mode, mtimeMs: r.mtimeMs, uid: r.uid, gid: r.gid };
}

/** Set-ID bits are stored but never restored (SET_ID_BITS): say so instead of dropping them silently. */
function warnSetId(r: PlannedRecord, notes: NoteSink): void {
  const setId = r.mode & (r.kind === 'dir' ? SET_ID_BITS.all : SET_ID_BITS.all | SET_ID_BITS.nonDir);
  if (setId === 0 || (r.kind !== 'dir' && r.kind !== 'file')) return;
  notes.warn(
    `${printable(r.path)} has the ${setId & SET_ID_BITS.all ? 'set-user-ID' : 'set-group-ID'} bit: ` +
      'a restore never sets it (a STORAGE_ROOT holds data, not programs)',
    r.path,
  );
}

async function skipSymlink(root: string, path: string, notes: NoteSink): Promise<void> {
  const target = await readlink(fsPath(join(root, path)), 'utf8').catch(() => '?');
  const outside = !isInside(resolve(dirname(join(root, path)), target), root);
  // names and targets are quoted and escaped: a line feed or an escape sequence in
  // one must not forge or hide a line of the report
  const [name, to] = [printable(path, 4096), printable(target, 4096)];
  notes.skip(path, `symlink to ${to} (never followed nor stored)${outside ? ': points outside STORAGE_ROOT' : ''}`);
  notes.warn(
    outside
      ? `SECURITY: symlink ${name} points outside STORAGE_ROOT (to ${to}); not followed, not stored — ` +
          'find out who created it'
      : `skipped symlink ${name} -> ${to} (symlinks are never followed nor stored)`,
    path,
  );
}

/** A file that looks like a database but is kept as bytes: the operator is told why. */
function warnStoredAsBytes(path: string, outcome: DatabaseOutcome, notes: NoteSink): void {
  const name = printable(path);
  if (outcome.damaged !== undefined) {
    // not one of FOLE's databases: its bytes are kept exactly
    notes.warn(
      `${name} looks like a SQLite database but is damaged, so it was stored byte for byte ` +
        `as an ordinary file (${outcome.damaged})`,
      path,
    );
  }
  if (outcome.sameFileAs !== undefined) {
    // an upload under two names: one is captured as a database, this one is kept as bytes
    const other = printable(outcome.sameFileAs);
    notes.warn(
      `${name} is the same file as ${other} (a hard link): only ${other} is read as a database, ` +
        `${name} was stored byte for byte as an ordinary file; if a program writes to it, the copy may be inconsistent`,
      path,
    );
  }
  if (outcome.locked !== undefined) {
    // not one of FOLE's databases either: one stuck program must not stop every backup
    notes.warn(
      `${name} is a SQLite database locked by a writer for longer than the busy timeout, ` +
        `so it was stored byte for byte as an ordinary file; the copy may be inconsistent (${outcome.locked})`,
      path,
    );
  }
}
