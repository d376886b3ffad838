/**
 * Helpers shared by the restore tests: a FOLE-like STORAGE_ROOT with odd modes,
 * fixed mtimes, caches and WAL-only rows; a hash of a whole tree (to prove a
 * target untouched); a dump of a database's rows; and forging a backup whose
 * tree the test chooses (written with the same pieces a backup uses).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { sha256Hex } from '../src/crypto/hash.js';
import { backup } from '../src/backup/backup.js';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import type { TreeEntry } from '../src/snapshot/snapshot.js';
import { loadSnapshot, saveSnapshot } from '../src/snapshot/store.js';
import { readTree, TreeWriter } from '../src/snapshot/tree.js';
import { createDatabase, createWalOnlyDatabase, type WalOnlyDatabase } from './fixtures/sqlite-writer.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';

const T0 = Date.parse('2024-03-01T12:00:00Z');

function write(root: string, rel: string, content: string | Buffer, mode?: number, mtimeMs?: number): void {
  const p = join(root, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, content);
  if (mode !== undefined) chmodSync(p, mode);
  if (mtimeMs !== undefined) utimesSync(p, mtimeMs / 1000, mtimeMs / 1000);
}

export interface FoleTree {
  root: string;
  /** core/core.db, whose newest rows live only in its -wal while this connection is open. */
  core: WalOnlyDatabase;
  databases: string[];
}

/**
 * A FOLE-like STORAGE_ROOT: core.db with WAL-only rows (connection left open),
 * module and project databases (WAL and rollback mode), tiles, uploads (one
 * spanning several chunks), odd modes, fixed mtimes on files and directories,
 * tmp/ and cache/ directories and a symlink that a backup must leave out.
 */
/**
 * A FOLE tree made in `<work>/src` (then `prepare`d, if given) and backed up as
 * FOLE 2.3.1 into a fresh local repository at `<work>/repo` (password
 * TEST_PASSWORD, fast KDF), closed again: what a test restores from.
 */
export async function backedUpFoleTree(
  work: string,
  opts: { bigBytes?: number; prepare?: (root: string) => void } = {},
): Promise<{ repoDir: string; backupId: string }> {
  const src = makeFoleTree(join(work, 'src'), opts.bigBytes === undefined ? {} : { bigBytes: opts.bigBytes });
  opts.prepare?.(src.root);
  const repoDir = join(work, 'repo');
  const repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
  try {
    const { backupId } = await backup(repo, { storageRoot: src.root, foleVersion: '2.3.1' });
    return { repoDir, backupId };
  } finally {
    src.core.db.close();
    await repo.close();
  }
}

export function makeFoleTree(root: string, opts: { bigBytes?: number } = {}): FoleTree {
  mkdirSync(join(root, 'core'), { recursive: true });
  const core = createWalOnlyDatabase(join(root, 'core', 'core.db'), 5, 40);
  core.db.exec('CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT)');
  core.db.prepare('INSERT INTO users VALUES (?, ?)').run('u1', 'ada@example.com');
  write(root, 'core/ai-action-log.jsonl', '{"a":1}\n', 0o600, T0 + 1);
  write(root, 'templates/server-defaults.json', '{"theme":"light"}', 0o644, T0 + 2);
  write(root, 'config/server.json', '{"port":8080}', 0o640, T0 + 3.5);
  createDatabase(join(root, 'modules', 'maps', 'module.db'), 30);
  write(root, 'modules/maps/module-settings.json', '{}', 0o600, T0 + 4);
  write(root, 'modules/maps/tmp/scratch.bin', 'junk');
  mkdirSync(join(root, 'modules', 'sketch', 'module-data'), { recursive: true });
  write(root, 'modules/sketch/module-data/readonly.txt', 'frozen', 0o400, T0 + 5);
  write(root, 'projects/p1/project.json', '{"id":"p1"}', 0o644, T0 + 6);
  createDatabase(join(root, 'projects', 'p1', 'project.db'), 200);
  createDatabase(join(root, 'projects', 'p1', 'maps', 'm1', 'map.db'), 60, 'delete');
  for (let i = 0; i < 12; i++) {
    write(
      root,
      `projects/p1/maps/m1/tiles/1/${i % 2}/${i}.png`,
      Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), randomBytes(900 + i * 37)]),
      0o644,
      T0 + 100 + i,
    );
  }
  write(root, 'projects/p1/files/big.bin', randomBytes(opts.bigBytes ?? 2 * 1024 * 1024 + 333), 0o600, T0 + 7);
  write(root, 'projects/p1/files/empty.txt', '', 0o644, T0 + 8);
  write(root, 'projects/p1/cache/thumb.png', 'cached');
  write(root, 'projects/p1/tmp/upload.part', 'partial');
  write(root, 'projects/p1/logs/app.log', 'line\n'.repeat(500), 0o644, T0 + 9);
  write(root, 'projects/p2/project.json', '{"id":"p2"}', 0o644, T0 + 10);
  write(root, 'AI_AUTOMATION_PAUSED', '', 0o644, T0 + 11);
  symlinkSync('/etc/hostname', join(root, 'projects', 'p1', 'files', 'outside-link'));
  // directory modes and mtimes, deepest first (after their contents)
  chmodSync(join(root, 'modules', 'sketch', 'module-data'), 0o750);
  for (const [rel, t] of [
    ['projects/p1/maps/m1/tiles/1/0', 20],
    ['projects/p1/maps/m1/tiles/1/1', 21],
    ['projects/p1/maps/m1/tiles/1', 22],
    ['modules/sketch/module-data', 23],
    ['modules/sketch', 24],
    ['templates', 25],
    ['config', 26],
  ] as const) {
    utimesSync(join(root, rel), (T0 + t * 1000) / 1000, (T0 + t * 1000) / 1000);
  }
  return {
    root,
    core,
    databases: ['core/core.db', 'modules/maps/module.db', 'projects/p1/maps/m1/map.db', 'projects/p1/project.db'],
  };
}

export interface HashOptions {
  /** Relative paths whose content and mtime are left out (but not their existence, type and mode). */
  ignoreContent?: readonly string[];
  /** Leave the root directory's own mode and mtime out. */
  ignoreRoot?: boolean;
}

/**
 * One line per path (type, mode, mtime, size and SHA-256 of content, link target), sorted. Symlinks are not followed.
 */
export function treeLines(root: string, opts: HashOptions = {}): string[] {
  const lines: string[] = [];
  const ignored = new Set(opts.ignoreContent ?? []);
  const visit = (rel: string): void => {
    const p = rel === '' ? root : join(root, rel);
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    const skip = ignored.has(rel);
    const mtime = skip ? '-' : String(st.mtimeMs);
    if (st.isDirectory()) {
      if (rel !== '' || opts.ignoreRoot !== true) lines.push(`d ${rel || '.'} ${mode} ${mtime}`);
      for (const name of readdirSync(p).sort()) visit(rel === '' ? name : `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      lines.push(`l ${rel} -> ${readlinkSync(p)}`);
    } else if (st.isFile()) {
      lines.push(`f ${rel} ${mode} ${mtime} ${skip ? '-' : `${st.size} ${sha256Hex(readFileSync(p))}`}`);
    } else {
      lines.push(`? ${rel}`);
    }
  };
  visit('');
  return lines;
}

export function treeHash(root: string, opts: HashOptions = {}): string {
  return createHash('sha256').update(treeLines(root, opts).join('\n')).digest('hex');
}

/** Every row of every table (and the schema), as JSON: equal dumps mean row-identical databases. */
export function dumpDatabase(db: Database.Database): string {
  const tables = db
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as { name: string; sql: string }[];
  const out: unknown[] = [];
  for (const t of tables)
    out.push({
      table: t.name,
      sql: t.sql,
      rows: db
        .prepare(`SELECT * FROM "${t.name.replace(/"/g, '""')}" ORDER BY rowid`)
        .raw()
        .all(),
    });
  return JSON.stringify(out, (_k, v: unknown) =>
    Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v,
  );
}

/**
 * dumpDatabase of a file. Opened read-write (nothing is written) so that SQLite
 * removes the -wal/-shm it creates when the connection closes; a read-only
 * connection would leave them behind.
 */
export function dumpDatabaseFile(file: string): string {
  const db = new Database(file, { fileMustExist: true });
  try {
    return dumpDatabase(db);
  } finally {
    db.close();
  }
}

/** Names in `dir` that a restore uses for its own working files (staging, journal). */
export function workingFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('.fole-backup-') || n.startsWith('.tmp-'));
}

/** Every entry of a backup's tree. */
export async function treeOf(repo: Repository, backupId: string): Promise<TreeEntry[]> {
  const snap = await loadSnapshot(repo, backupId);
  const out: TreeEntry[] = [];
  for await (const e of readTree(repo, snap.tree)) out.push(e);
  return out;
}

/** Store `content` as a file's chunks the way a backup does; returns the fields of its tree entry. */
export async function storeContent(
  repo: Repository,
  content: Buffer,
  chunkSize: number,
): Promise<Pick<TreeEntry, 'size' | 'sha256' | 'chunks'>> {
  const chunks: string[] = [];
  for (let o = 0; o < content.length; o += chunkSize) {
    const part = content.subarray(o, Math.min(content.length, o + chunkSize));
    const id = sha256Hex(part);
    await repo.saveBlob('data', id, part);
    chunks.push(id);
  }
  return { size: content.length, sha256: sha256Hex(content), chunks };
}

/**
 * A new backup in `repo` made from backup `baseId` with its tree entries
 * rewritten by `edit` (which may drop, change or add entries; the result is
 * written in the order returned). Returns the new backup id.
 */
export async function forgeBackup(
  repo: Repository,
  baseId: string,
  edit: (entries: TreeEntry[]) => Promise<TreeEntry[]> | TreeEntry[],
): Promise<string> {
  const snap = await loadSnapshot(repo, baseId);
  const entries = await edit(await treeOf(repo, baseId));
  const writer = new TreeWriter(repo);
  for (const e of entries) await writer.add(e);
  const tree = await writer.finish();
  await repo.flush();
  const backupId = randomUUID();
  await saveSnapshot(repo, { ...snap, backupId, manifest: { ...snap.manifest, backupId }, tree });
  return backupId;
}

/** A SQLite database file whose B-tree pages are damaged (header intact): integrity_check reports it. */
export function corruptDatabaseBytes(file: string): Buffer {
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.exec('CREATE TABLE big (x TEXT); CREATE INDEX big_x ON big(x)');
  const ins = db.prepare('INSERT INTO big VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 4000; i++) ins.run(`row-${i}-${'y'.repeat(50)}`);
  })();
  db.pragma('journal_mode = DELETE');
  db.close();
  const bytes = readFileSync(file);
  const mid = Math.floor(bytes.length / 2);
  bytes.fill(0x5a, mid, mid + 4096);
  return bytes;
}
