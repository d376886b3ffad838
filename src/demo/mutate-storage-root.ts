/**
 * Change a generated STORAGE_ROOT the way a day of use would, for the
 * benchmark's "incremental backup after changing 1% of files and 1% of the
 * pages of the largest database".
 *
 * Files: of the regular files a backup would read (not under any tmp/ or
 * cache/ directory, not SQLite databases or their -wal/-shm/-journal side
 * files, not symlinks), round(fileFraction × n) are chosen by a seeded hash of
 * their path and changed by kind: PNG tiles are rewritten, JSON files get a
 * new key, logs and text get lines appended, other binaries get a 4 KiB region
 * overwritten in place.
 *
 * Database: in the largest database (recognised by its header), rows of its
 * largest rowid table, spread evenly, get a same-length new value in their
 * first BLOB (else TEXT) column, so SQLite overwrites the cells in place. The
 * number of rows is estimated from dbstat (overflow pages per row + one leaf
 * each) to hit dbPageFraction of the pages; the pages that actually changed are
 * then counted by hashing every page before and after.
 */

import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import {
  closeSync,
  type Dirent,
  lstatSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { extname, join } from 'node:path';
import { FoleBackupError, abortError, fsError } from '../errors.js';
import { SQLITE_SIDE_SUFFIXES } from '../sqlite/side-files.js';
import { EPHEMERAL_DIR_NAMES } from '../storage/exclusions.js';
import { BASE_TIME_MS, aiActionLog, csvText, jsonFile, logText, pngTile, proseText } from './content.js';
import { Prng, seedFor } from './prng.js';

export interface MutateOptions {
  seed: number;
  /** Fraction (0..1) of the eligible non-database files to change. */
  fileFraction: number;
  /** Fraction (0..1) of the largest database's pages to change. */
  dbPageFraction: number;
  signal?: AbortSignal;
}

interface DatabaseMutation {
  /** Relative path of the database changed. */
  path: string;
  table: string;
  column: string;
  pageSize: number;
  /** Pages in the database before the change. */
  pageCount: number;
  /** round(dbPageFraction × pageCount), at least 1. */
  targetPages: number;
  rowsUpdated: number;
  /** Pages whose bytes differ afterwards (measured, after a checkpoint). */
  pagesChanged: number;
}

export interface MutationResult {
  /** Regular non-database files eligible for change. */
  filesConsidered: number;
  filesChanged: number;
  rewritten: number;
  appended: number;
  patched: number;
  bytesWritten: number;
  /** Relative paths of the changed files, sorted. */
  changedFiles: string[];
  /** null when dbPageFraction is 0 or there is no database. */
  database: DatabaseMutation | null;
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');
const APPEND_EXTS: ReadonlySet<string> = new Set(['.log', '.jsonl', '.md', '.txt', '.csv']);
const PATCH_BYTES = 4096;

interface FileEntry {
  rel: string;
  size: number;
}

/**
 * Apply the changes described above to the tree at `root`. Deterministic for
 * a given tree and seed (which files, which rows, which bytes).
 */
export async function mutateStorageRoot(root: string, opts: MutateOptions): Promise<MutationResult> {
  for (const k of ['fileFraction', 'dbPageFraction'] as const) {
    const v = opts[k];
    if (!(v >= 0 && v <= 1))
      throw new FoleBackupError('USAGE', `mutate storage root: ${k} must be in [0, 1], got ${v}`);
  }
  const { files, databases } = scan(root);

  const k = opts.fileFraction > 0 && files.length > 0 ? Math.max(1, Math.round(files.length * opts.fileFraction)) : 0;
  // Rank by a seeded hash of the path; typed arrays keep a million-file tree cheap.
  const rank = new Uint32Array(files.length);
  for (const [i, f] of files.entries()) rank[i] = seedFor(opts.seed, `mutate:${f.rel}`);
  const order = new Uint32Array(files.length).map((_, i) => i);
  order.sort((x, y) => (rank[x] as number) - (rank[y] as number) || x - y);
  const chosen = [...order.subarray(0, k)].map((i) => files[i] as FileEntry);
  chosen.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));

  const result: MutationResult = {
    filesConsidered: files.length,
    filesChanged: 0,
    rewritten: 0,
    appended: 0,
    patched: 0,
    bytesWritten: 0,
    changedFiles: [],
    database: null,
  };
  for (const [i, f] of chosen.entries()) {
    if (i % 256 === 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (opts.signal?.aborted) throw abortError();
    }
    const how = mutateFile(join(root, f.rel), f, new Prng(seedFor(opts.seed, `mutate-bytes:${f.rel}`)), opts.seed);
    result[how.kind]++;
    result.bytesWritten += how.bytes;
    result.filesChanged++;
    result.changedFiles.push(f.rel);
  }

  if (opts.dbPageFraction > 0 && databases.length > 0) {
    if (opts.signal?.aborted) throw abortError();
    let largest = databases[0] as FileEntry;
    for (const d of databases) if (d.size > largest.size) largest = d;
    const prng = new Prng(seedFor(opts.seed, `mutate-db:${largest.rel}`));
    result.database = mutateDatabase(root, largest.rel, opts.dbPageFraction, prng);
  }
  return result;
}

/** Every regular file under root, split into databases and the rest; excluded directories and side files skipped. */
function scan(root: string): { files: FileEntry[]; databases: FileEntry[] } {
  const files: FileEntry[] = [];
  const databases: FileEntry[] = [];
  const stack: string[] = [''];
  const header = Buffer.alloc(SQLITE_HEADER.length);
  while (stack.length > 0) {
    const dirRel = stack.pop() as string;
    const dirAbs = join(root, dirRel);
    let entries: Dirent[];
    try {
      entries = readdirSync(dirAbs, { withFileTypes: true });
    } catch (err) {
      throw fsError('read', dirAbs, err);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const rel = dirRel === '' ? e.name : `${dirRel}/${e.name}`;
      if (e.isDirectory()) {
        if (!EPHEMERAL_DIR_NAMES.has(e.name)) stack.push(rel);
        continue;
      }
      if (!e.isFile() || SQLITE_SIDE_SUFFIXES.some((s) => e.name.endsWith(s))) continue;
      const size = lstatSync(join(root, rel)).size;
      // A database's size is a whole number of pages (512 B to 64 KiB): only those need their header read.
      if (size >= 512 && size % 512 === 0 && readHeader(join(root, rel), header).equals(SQLITE_HEADER)) {
        databases.push({ rel, size });
      } else {
        files.push({ rel, size });
      }
    }
  }
  return { files, databases };
}

function readHeader(abs: string, buf: Buffer): Buffer {
  const fd = openSync(abs, 'r');
  try {
    buf.fill(0);
    readSync(fd, buf, 0, buf.length, 0);
    return buf;
  } finally {
    closeSync(fd);
  }
}

type ChangeKind = 'rewritten' | 'appended' | 'patched';

function mutateFile(abs: string, f: FileEntry, prng: Prng, seed: number): { kind: ChangeKind; bytes: number } {
  const ext = extname(f.rel).toLowerCase();
  try {
    if (ext === '.png') {
      const data = pngTile(prng, Math.max(64, Math.round(f.size * (0.8 + 0.4 * prng.float()))));
      writeFileSync(abs, data);
      return { kind: 'rewritten', bytes: data.length };
    }
    if (ext === '.json' || ext === '.geojson') {
      const rewritten = rewriteJson(abs, prng, seed);
      if (rewritten !== undefined) return { kind: 'rewritten', bytes: rewritten };
    }
    if (APPEND_EXTS.has(ext) || f.size === 0) {
      const data = appendix(ext, prng);
      writeFileSync(abs, data, { flag: 'a' });
      return { kind: 'appended', bytes: data.length };
    }
    const n = Math.min(f.size, PATCH_BYTES);
    const offset = prng.int(0, f.size - n + 1);
    const fd = openSync(abs, 'r+');
    try {
      writeSync(fd, prng.bytes(n), 0, n, offset);
    } finally {
      closeSync(fd);
    }
    return { kind: 'patched', bytes: n };
  } catch (err) {
    throw fsError('write', abs, err);
  }
}

/** Add a "mutation" key to a JSON object file; undefined if it is not a JSON object. */
function rewriteJson(abs: string, prng: Prng, seed: number): number | undefined {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(abs, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const data = jsonFile({ ...value, mutation: { seed, token: prng.hex(12) } });
  writeFileSync(abs, data);
  return data.length;
}

/** Bytes to append to a file of this kind, in its own format. */
function appendix(ext: string, prng: Prng): Buffer {
  switch (ext) {
    case '.log':
      return logText(prng, prng.int(200, 2000), BASE_TIME_MS + 3e9, 'mutate');
    case '.jsonl':
      return aiActionLog(prng, prng.int(1, 4), []);
    case '.csv': {
      // Rows only: drop the header line csvText starts with.
      const t = csvText(prng, prng.int(200, 2000));
      return t.subarray(t.indexOf(0x0a) + 1);
    }
    case '.md':
    case '.txt':
      return Buffer.concat([proseText(prng, prng.int(100, 2000)), Buffer.from('\n')]);
    default:
      return prng.bytes(prng.int(100, 2000));
  }
}

interface TableStats {
  name: string;
  leaf: number;
  overflow: number;
  pages: number;
}

function mutateDatabase(root: string, rel: string, fraction: number, prng: Prng): DatabaseMutation {
  const abs = join(root, rel);
  const db = new Database(abs);
  let info: Omit<DatabaseMutation, 'pagesChanged'>;
  let before: Buffer;
  try {
    // Bring the main file up to date so that hashing it shows the database's pages.
    db.pragma('wal_checkpoint(TRUNCATE)');
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pageCount = db.pragma('page_count', { simple: true }) as number;
    before = pageHashes(abs, pageSize);
    const targetPages = Math.max(1, Math.round(fraction * pageCount));

    const tables = db
      .prepare(
        `SELECT s.name AS name, sum(s.pagetype = 'leaf') AS leaf, ` +
          `sum(s.pagetype = 'overflow') AS overflow, count(*) AS pages
         FROM dbstat AS s JOIN sqlite_schema AS m ON m.name = s.name AND m.type = 'table'
         GROUP BY s.name ORDER BY pages DESC, s.name`,
      )
      .all() as TableStats[];
    let picked: { t: TableStats; column: string; rowids: number[] } | undefined;
    for (const t of tables) {
      const column = updatableColumn(db, t.name);
      if (column === undefined) continue;
      let rowids: number[];
      try {
        rowids = db
          .prepare(`SELECT rowid FROM ${quoteId(t.name)} ORDER BY rowid`)
          .pluck()
          .all() as number[];
      } catch {
        continue; // WITHOUT ROWID table
      }
      if (rowids.length > 0) {
        picked = { t, column, rowids };
        break;
      }
    }
    if (picked === undefined) {
      throw new FoleBackupError('NOT_FOUND', `mutate ${rel}: no rowid table with a BLOB or TEXT column to change`, {
        path: abs,
      });
    }
    const { t, column, rowids } = picked;
    // An in-place update rewrites the row's overflow pages and its leaf page.
    const overflowPerRow = t.overflow / rowids.length;
    let rows = Math.round(targetPages / (overflowPerRow + 1));
    if (rows > t.leaf && overflowPerRow > 0) rows = Math.round((targetPages - t.leaf) / overflowPerRow);
    rows = Math.min(Math.max(rows, 1), rowids.length);

    const col = quoteId(column);
    const get = db.prepare(
      `SELECT typeof(${col}) AS type, length(CAST(${col} AS BLOB)) AS len FROM ${quoteId(t.name)} WHERE rowid = ?`,
    );
    const set = db.prepare(`UPDATE ${quoteId(t.name)} SET ${col} = ? WHERE rowid = ?`);
    const offset = prng.float();
    let updated = 0;
    db.transaction(() => {
      for (let i = 0; i < rows; i++) {
        const rowid = rowids[Math.floor(((i + offset) * rowids.length) / rows)];
        if (rowid === undefined) continue;
        const cur = get.get(rowid) as { type: string; len: number | null } | undefined;
        if (cur === undefined || cur.len === null) continue;
        if (cur.type === 'blob') set.run(prng.bytes(cur.len), rowid);
        else if (cur.type === 'text') set.run(proseText(prng, cur.len).toString('latin1'), rowid);
        else continue;
        updated++;
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    info = { path: rel, table: t.name, column, pageSize, pageCount, targetPages, rowsUpdated: updated };
  } finally {
    db.close();
  }
  const after = pageHashes(abs, info.pageSize);
  return { ...info, pagesChanged: countDifferentPages(before, after) };
}

/** The first BLOB column of a table, else its first TEXT column. */
function updatableColumn(db: Database.Database, table: string): string | undefined {
  const cols = db.prepare('SELECT name, upper(type) AS type FROM pragma_table_info(?)').all(table) as {
    name: string;
    type: string;
  }[];
  return (cols.find((c) => c.type === 'BLOB') ?? cols.find((c) => c.type === 'TEXT'))?.name;
}

function quoteId(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const HASH_BYTES = 20;

/** SHA-1 of every page of a file, concatenated. */
function pageHashes(abs: string, pageSize: number): Buffer {
  const fd = openSync(abs, 'r');
  try {
    const pagesPerRead = Math.max(1, Math.floor((4 << 20) / pageSize));
    const buf = Buffer.allocUnsafe(pagesPerRead * pageSize);
    const out: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      for (let off = 0; off < n; off += pageSize) {
        out.push(
          createHash('sha1')
            .update(buf.subarray(off, Math.min(off + pageSize, n)))
            .digest(),
        );
      }
      pos += n;
    }
    return Buffer.concat(out);
  } finally {
    closeSync(fd);
  }
}

function countDifferentPages(before: Buffer, after: Buffer): number {
  const a = before.length / HASH_BYTES;
  const b = after.length / HASH_BYTES;
  let changed = Math.abs(a - b);
  for (let i = 0; i < Math.min(a, b); i++) {
    const o = i * HASH_BYTES;
    if (before.compare(after, o, o + HASH_BYTES, o, o + HASH_BYTES) !== 0) changed++;
  }
  return changed;
}
