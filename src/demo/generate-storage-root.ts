/**
 * A seeded, reproducible generator of a FOLE-like STORAGE_ROOT (core/, modules/,
 * projects/…, as src/storage/fole-layout.ts names FOLE's places),
 * for the demo (`npm start`), the tests and the benchmark.
 *
 * Determinism: every name comes from a stream seeded by (seed, 'names'), and
 * every file's size and bytes from a stream seeded by (seed, its relative
 * path), so the same seed and spec give the same file names and the same
 * contents for every non-database file, whatever the order of writing.
 * Databases hold deterministic rows too, but their files may differ in
 * incidental bytes (SQLite's change counters, free space).
 *
 * Databases are built in rollback mode without syncs (a multi-GB database
 * would otherwise be written twice, once to -wal and once by the checkpoint)
 * and then switched to WAL, which is how FOLE runs them. core.db and the first
 * module's module.db are left with committed rows that live only in their
 * -wal file, as a live FOLE server leaves them: copying `*.db` bytes alone
 * loses those rows.
 */

import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { FoleBackupError, errnoCode, fsError, throwIfAborted } from '../errors.js';
import {
  BASE_TIME_MS,
  aiActionLog,
  binaryFile,
  csvText,
  geojsonText,
  jsonFile,
  logText,
  pngTile,
  proseText,
  slug,
  word,
} from './content.js';
import { Prng, seedFor } from './prng.js';
import { Progress, TreeWriter, formatBytes } from './tree-writer.js';

export { mutateStorageRoot } from './mutate-storage-root.js';
export type { MutationResult } from './mutate-storage-root.js';

export interface StorageRootSpec {
  seed: number;
  /** projects/<projectId>/ (ids derived from the seed, like 'p-3f2a9c'). */
  projects: number;
  /** projects/<id>/maps/<mapId>/ with map.db, tiles/, files/, tmp/. */
  mapsPerProject: number;
  /** tiles/<z>/<x>/<y>.png: a PNG signature then random bytes (incompressible), a full pyramid from z=0 up. */
  tilesPerMap: number;
  /** Mean tile size; each tile is uniform in [0.5, 1.5) times this. */
  tileBytes: number;
  /** projects/<id>/files/*: about half compressible (GeoJSON, CSV, Markdown), half not (JPEG, PDF, ZIP). */
  uploadsPerProject: number;
  /** Mean upload size; sizes range from 1/20 to 4 times this. */
  uploadBytes: number;
  /** Feature rows in each project.db; each map.db gets a quarter as many annotation rows (plus one row per tile). */
  dbRowsPerProject: number;
  /** How many projects (the first ones) get a large project.db. */
  largeDbs: number;
  /** Target file size of each large project.db (filled with attachment rows: random blobs plus text). */
  largeDbBytes: number;
  /** modules/<name>/ with module.db, module-settings.json, module-data/, state/, tmp/. */
  modules: string[];
  /**
   * With it, each large project.db's target size is drawn (seeded by its path) uniformly from
   * [largeDbBytes, largeDbBytesMax]: databases of many sizes. Absent: every large project.db is largeDbBytes.
   */
  largeDbBytesMax?: number;
  /**
   * With it, each upload's size is drawn uniformly from [uploadBytes, uploadBytesMax] instead of the mix of
   * 1/20 to 4 times uploadBytes: large uploads only.
   */
  uploadBytesMax?: number;
  /**
   * With it, each map's tiles sit at one zoom level in columns of this many tiles (tiles/<z>/<x>/<y>.png), so a
   * map has a directory per column, as the deep zoom levels of a real tile store do. Absent: a full pyramid
   * from z=0, which holds many tiles per directory.
   */
  tilesPerColumn?: number;
  /**
   * With it, about this many bytes of rows are committed to every project.db and map.db after it is built and
   * left only in its -wal (never checkpointed), as a busy server leaves them: databases whose content is
   * mostly in -wal. Absent or 0: only core.db and the first module.db have a (small) -wal tail.
   */
  walTailBytes?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const PRESETS: Record<'demo' | 'small' | 'default' | 'large', StorageRootSpec> = {
  /** `npm start`: about 10 MB, about 360 files, 7 databases; a fraction of a second. */
  demo: {
    seed: 1,
    projects: 2,
    mapsPerProject: 1,
    tilesPerMap: 150,
    tileBytes: 4 * KiB,
    uploadsPerProject: 8,
    uploadBytes: 192 * KiB,
    dbRowsPerProject: 400,
    largeDbs: 1,
    largeDbBytes: 4 * MiB,
    modules: ['ai-assistant', 'importer'],
  },
  /** CI-sized: about 23 MB, about 1,900 files, 13 databases; about a second. */
  small: {
    seed: 2,
    projects: 3,
    mapsPerProject: 2,
    tilesPerMap: 300,
    tileBytes: 4 * KiB,
    uploadsPerProject: 12,
    uploadBytes: 128 * KiB,
    dbRowsPerProject: 1000,
    largeDbs: 1,
    largeDbBytes: 8 * MiB,
    modules: ['ai-assistant', 'importer', 'print'],
  },
  /** Benchmark: about 1 GB, about 100k files (98.8k tiles), two 240 MiB databases, 106 databases. */
  default: {
    seed: 3,
    projects: 20,
    mapsPerProject: 4,
    tilesPerMap: 1235,
    tileBytes: 4 * KiB,
    uploadsPerProject: 30,
    uploadBytes: 160 * KiB,
    dbRowsPerProject: 5000,
    largeDbs: 2,
    largeDbBytes: 240 * MiB,
    modules: ['ai-assistant', 'importer', 'print', 'sync', 'analytics'],
  },
  /** Benchmark: about 10 GB, about 1M files (1M tiles), four 1.1 GiB databases, 906 databases. */
  large: {
    seed: 4,
    projects: 100,
    mapsPerProject: 8,
    tilesPerMap: 1250,
    tileBytes: 4 * KiB,
    uploadsPerProject: 40,
    uploadBytes: 256 * KiB,
    dbRowsPerProject: 10_000,
    largeDbs: 4,
    largeDbBytes: 1152 * MiB,
    modules: ['ai-assistant', 'importer', 'print', 'sync', 'analytics'],
  },
};

export interface GenerateOptions {
  /** Called about every 5% of the estimated work, and once at the end. */
  onProgress?: (msg: string) => void;
  /** Also create projects/<first>/files/link-to-outside → /etc/hostname (a symlink a backup must skip and report). */
  withSymlink?: boolean;
  signal?: AbortSignal;
}

export interface GeneratedStorageRoot {
  root: string;
  /** Regular files created, each database counted once (its main file; -wal/-shm side files are not counted). */
  files: number;
  /** Total size of those files. */
  bytes: number;
  /** Relative ('/'-separated) paths of every database, sorted. */
  databases: string[];
  /** Project ids, in generation order. */
  projects: string[];
  /** Relative paths of symlinks created (only with `withSymlink`). */
  symlinks: string[];
}

/** Where a symlink created by `withSymlink` points: outside any STORAGE_ROOT. */
export const OUTSIDE_SYMLINK_TARGET = '/etc/hostname';

interface ProjectPlan {
  id: string;
  name: string;
  ownerId: string;
  mapIds: string[];
  large: boolean;
}

interface UserPlan {
  id: string;
  email: string;
  name: string;
  role: string;
}

interface TileRecord {
  z: number;
  x: number;
  y: number;
  bytes: number;
  etag: string;
}

/**
 * Create a STORAGE_ROOT at `root` (which must not exist or be empty) from `spec`.
 * MUST give the same names and non-database bytes for the same spec. Throws
 * FoleBackupError USAGE for an invalid spec, ALREADY_EXISTS for a non-empty root,
 * ABORTED when the signal fires (leaving a partial tree behind).
 */
export async function generateStorageRoot(
  root: string,
  spec: StorageRootSpec,
  opts: GenerateOptions = {},
): Promise<GeneratedStorageRoot> {
  validateSpec(spec);
  throwIfAborted(opts.signal);
  prepareRoot(root);
  const progress = new Progress(estimateBytes(spec), opts.onProgress);
  const w = new TreeWriter(root, progress, opts.signal);
  const g = new RootBuilder(w, spec);

  const { users, projects } = planNames(spec);
  await g.templatesAndConfig(projects);
  await g.core(users, projects);
  for (const [i, m] of spec.modules.entries()) await g.module(m, i === 0);
  for (const p of projects) {
    throwIfAborted(opts.signal);
    await g.project(p);
  }

  const symlinks: string[] = [];
  const first = projects[0];
  if (opts.withSymlink === true && first !== undefined) {
    const rel = `projects/${first.id}/files/link-to-outside`;
    try {
      symlinkSync(OUTSIDE_SYMLINK_TARGET, w.abs(rel));
    } catch (err) {
      throw fsError('create symlink', w.abs(rel), err);
    }
    symlinks.push(rel);
  }

  let dbBytes = 0;
  for (const rel of g.databases) dbBytes += statSync(w.abs(rel)).size;
  const result: GeneratedStorageRoot = {
    root,
    files: w.files + g.databases.length,
    bytes: w.bytes + dbBytes,
    databases: [...g.databases].sort(),
    projects: projects.map((p) => p.id),
    symlinks,
  };
  progress.finish(`${result.files} files, ${formatBytes(result.bytes)}, ${result.databases.length} databases`);
  return result;
}

/** The optional fields that are counts or sizes: absent, or a non-negative integer. */
const OPTIONAL_COUNTS = ['largeDbBytesMax', 'uploadBytesMax', 'tilesPerColumn', 'walTailBytes'] as const;

function validateSpec(spec: StorageRootSpec): void {
  const counts: (keyof StorageRootSpec)[] = [
    'projects',
    'mapsPerProject',
    'tilesPerMap',
    'tileBytes',
    'uploadsPerProject',
    'uploadBytes',
    'dbRowsPerProject',
    'largeDbs',
    'largeDbBytes',
  ];
  for (const k of counts) {
    const v = spec[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new FoleBackupError('USAGE', `storage root spec: ${k} must be a non-negative integer, got ${String(v)}`);
    }
  }
  for (const k of OPTIONAL_COUNTS) {
    const v = spec[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
      throw new FoleBackupError('USAGE', `storage root spec: ${k} must be a non-negative integer, got ${String(v)}`);
    }
  }
  const atLeast = (k: 'largeDbBytesMax' | 'uploadBytesMax', min: 'largeDbBytes' | 'uploadBytes'): void => {
    const v = spec[k];
    if (v !== undefined && v < spec[min])
      throw new FoleBackupError('USAGE', `storage root spec: ${k} (${v}) is below ${min} (${spec[min]})`);
  };
  atLeast('largeDbBytesMax', 'largeDbBytes');
  atLeast('uploadBytesMax', 'uploadBytes');
  if (spec.tilesPerColumn === 0)
    throw new FoleBackupError('USAGE', 'storage root spec: tilesPerColumn must be at least 1');
  if (!Number.isSafeInteger(spec.seed))
    throw new FoleBackupError('USAGE', 'storage root spec: seed must be an integer');
  if (spec.largeDbs > spec.projects) {
    throw new FoleBackupError(
      'USAGE',
      `storage root spec: largeDbs (${spec.largeDbs}) exceeds projects (${spec.projects})`,
    );
  }
  const seen = new Set<string>();
  for (const m of spec.modules) {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(m) || seen.has(m)) {
      throw new FoleBackupError('USAGE', `storage root spec: bad or duplicate module name ${JSON.stringify(m)}`);
    }
    seen.add(m);
  }
}

function prepareRoot(root: string): void {
  try {
    if (readdirSync(root).length > 0) {
      throw new FoleBackupError('ALREADY_EXISTS', `generate storage root ${root}: directory is not empty`, {
        path: root,
        hint: 'choose a new or empty directory',
      });
    }
    return;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err instanceof FoleBackupError ? err : fsError('read', root, err);
  }
  try {
    mkdirSync(root, { recursive: true });
  } catch (err) {
    throw fsError('create directory', root, err);
  }
}

/** The expected total size of a generated tree (progress percentages, the benchmark's scaling). */
export function estimateBytes(spec: StorageRootSpec): number {
  const maps = spec.projects * spec.mapsPerProject;
  const mean = (lo: number, hi: number | undefined): number => (hi === undefined ? lo : (lo + hi) / 2);
  return (
    maps * spec.tilesPerMap * spec.tileBytes +
    spec.projects * spec.uploadsPerProject * mean(spec.uploadBytes, spec.uploadBytesMax) +
    spec.largeDbs * mean(spec.largeDbBytes, spec.largeDbBytesMax) +
    (spec.projects + maps) * (spec.walTailBytes ?? 0) +
    spec.projects * spec.dbRowsPerProject * 300 * (1 + spec.mapsPerProject / 4) +
    spec.projects * 200 * KiB +
    maps * 40 * KiB +
    spec.modules.length * 400 * KiB +
    200 * KiB
  );
}

function uniqueId(prng: Prng, prefix: string, used: Set<string>): string {
  for (;;) {
    const id = prefix + prng.hex(6);
    if (!used.has(id)) {
      used.add(id);
      return id;
    }
  }
}

const ROLES: readonly string[] = ['admin', 'editor', 'editor', 'viewer', 'viewer', 'viewer'];

function planNames(spec: StorageRootSpec): { users: UserPlan[]; projects: ProjectPlan[] } {
  const prng = new Prng(seedFor(spec.seed, 'names'));
  const used = new Set<string>();
  const users: UserPlan[] = [];
  const userCount = Math.max(3, Math.ceil(spec.projects * 1.5));
  for (let i = 0; i < userCount; i++) {
    const first = word(prng);
    const last = word(prng);
    users.push({
      id: uniqueId(prng, 'u-', used),
      email: `${first}.${last}.${i}@example.org`,
      name: `${first[0]?.toUpperCase() ?? ''}${first.slice(1)} ${last[0]?.toUpperCase() ?? ''}${last.slice(1)}`,
      role: i === 0 ? 'admin' : prng.pick(ROLES),
    });
  }
  const projects: ProjectPlan[] = [];
  for (let i = 0; i < spec.projects; i++) {
    const id = uniqueId(prng, 'p-', used);
    const mapIds: string[] = [];
    for (let k = 0; k < spec.mapsPerProject; k++) mapIds.push(uniqueId(prng, 'm-', used));
    projects.push({
      id,
      name: slug(prng, 3),
      ownerId: prng.pick(users).id,
      mapIds,
      large: i < spec.largeDbs,
    });
  }
  return { users, projects };
}

/** The stream for one file: a function of the seed and the file's relative path only. */
function fileRng(seed: number, rel: string): Prng {
  return new Prng(seedFor(seed, rel));
}

/** Upload size multipliers (mean 1): many small files, some large ones. */
const SIZE_FACTORS: readonly number[] = [0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 4.0];

interface UploadKind {
  ext: string;
  make(prng: Prng, size: number): Buffer;
}

const magic = (s: string): Buffer => Buffer.from(s, 'latin1');
const UPLOAD_KINDS: readonly UploadKind[] = [
  { ext: 'geojson', make: geojsonText },
  { ext: 'csv', make: csvText },
  { ext: 'md', make: proseText },
  { ext: 'jpg', make: (p, n) => binaryFile(p, n, magic('\xff\xd8\xff\xe0\x00\x10JFIF\x00')) },
  { ext: 'pdf', make: (p, n) => binaryFile(p, n, magic('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n')) },
  { ext: 'zip', make: (p, n) => binaryFile(p, n, magic('PK\x03\x04\x14\x00\x00\x00\x08\x00')) },
];

/** Tile coordinates of a full pyramid from z=0, row by row, `count` of them. */
function* pyramid(count: number): Generator<[number, number, number]> {
  let emitted = 0;
  for (let z = 0; ; z++) {
    const n = 1 << z;
    for (let x = 0; x < n; x++) {
      for (let y = 0; y < n; y++) {
        if (emitted >= count) return;
        emitted++;
        yield [z, x, y];
      }
    }
  }
}

/** Tile coordinates at one deep zoom level, `perColumn` tiles per x column, `count` of them. */
function* columns(count: number, perColumn: number): Generator<[number, number, number]> {
  const z = 17;
  for (let i = 0; i < count; i++) yield [z, 68_000 + Math.floor(i / perColumn), 45_000 + (i % perColumn)];
}

const CORE_SCHEMA = `
  CREATE TABLE users(
    id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL, role TEXT NOT NULL, created_at INTEGER NOT NULL, last_login_at INTEGER);
  CREATE TABLE projects(
    id TEXT PRIMARY KEY, name TEXT NOT NULL, owner_id TEXT NOT NULL REFERENCES users(id),
    storage_path TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE TABLE project_members(
    project_id TEXT NOT NULL REFERENCES projects(id), user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL, PRIMARY KEY(project_id, user_id)) WITHOUT ROWID;
  CREATE TABLE dal_locks(
    lock_id TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT, pid INTEGER,
    acquired_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL, lease_expires_at INTEGER NOT NULL);
  CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
  PRAGMA user_version = 7;
`;

const PROJECT_SCHEMA = `
  CREATE TABLE layers(id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, style TEXT NOT NULL);
  CREATE TABLE features(
    id INTEGER PRIMARY KEY, layer_id INTEGER NOT NULL REFERENCES layers(id),
    geometry TEXT NOT NULL, properties TEXT NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX features_layer ON features(layer_id, updated_at);
  CREATE TABLE attachments(
    id INTEGER PRIMARY KEY, feature_id INTEGER, name TEXT NOT NULL, mime TEXT NOT NULL,
    data BLOB NOT NULL, note TEXT);
  CREATE TABLE project_settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
  PRAGMA user_version = 3;
`;

const MAP_SCHEMA = `
  CREATE TABLE map_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE annotations(
    id INTEGER PRIMARY KEY, z INTEGER NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL,
    label TEXT NOT NULL, geometry TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE tile_index(
    z INTEGER NOT NULL, x INTEGER NOT NULL, y INTEGER NOT NULL, bytes INTEGER NOT NULL, etag TEXT NOT NULL,
    PRIMARY KEY(z, x, y)) WITHOUT ROWID;
  PRAGMA user_version = 2;
`;

const MODULE_SCHEMA = `
  CREATE TABLE module_kv(key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE jobs(
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, payload TEXT NOT NULL,
    created_at INTEGER NOT NULL, finished_at INTEGER);
  PRAGMA user_version = 1;
`;

/** Bytes of large-database rows per transaction: bounds the time between progress reports and abort checks. */
const LARGE_DB_BATCH_BYTES = 32 * MiB;

class RootBuilder {
  readonly databases: string[] = [];

  constructor(
    private readonly w: TreeWriter,
    private readonly spec: StorageRootSpec,
  ) {}

  private rng(rel: string): Prng {
    return fileRng(this.spec.seed, rel);
  }

  async templatesAndConfig(projects: readonly ProjectPlan[]): Promise<void> {
    const w = this.w;
    await w.file(
      'templates/server-defaults.json',
      jsonFile({
        locale: 'en',
        units: 'metric',
        defaultBasemap: 'osm-light',
        maxUploadBytes: 256 * MiB,
        tileFormat: 'png',
        aiAutomation: { enabled: true, requireApproval: true },
      }),
    );
    await w.file(
      'templates/projects/default-project.json',
      jsonFile({ layers: ['points', 'lines', 'areas'], visibility: 'team', retentionDays: 365 }),
    );
    await w.file(
      'templates/maps/basemap-style.json',
      jsonFile({ version: 8, name: 'basemap', sources: {}, layers: [{ id: 'background', type: 'background' }] }),
    );
    await w.file(
      'templates/maps/overrides/high-contrast.json',
      jsonFile({ extends: 'basemap', paint: { 'background-color': '#000000', 'line-color': '#ffff00' } }),
    );
    await w.file('templates/modules/ai-assistant/prompts.json', jsonFile({ classify: 'Classify {{feature}}.' }));
    await w.file(
      'config/server.json',
      jsonFile({ listen: '127.0.0.1:8080', storageRoot: '.', logLevel: 'info', projects: projects.length }),
    );
    await w.file('config/modules.json', jsonFile({ enabled: this.spec.modules }));
    await w.file('config/auth/oidc.json', jsonFile({ issuer: 'https://id.example.org', clientId: 'fole-server' }));
  }

  async core(users: readonly UserPlan[], projects: readonly ProjectPlan[]): Promise<void> {
    await this.w.file(
      'core/ai-action-log.jsonl',
      aiActionLog(
        this.rng('core/ai-action-log.jsonl'),
        20 + projects.length * 5,
        projects.map((p) => p.id),
      ),
    );
    const rel = 'core/core.db';
    const prng = this.rng(rel);
    this.w.dir('core');
    // Users and migrations reach the main file; the project registry and the last
    // logins are committed only to -wal, as a running server leaves them.
    buildDatabase(this.w.abs(rel), (db) => {
      db.exec(CORE_SCHEMA);
      const mig = db.prepare('INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)');
      for (let v = 1; v <= 7; v++) mig.run(v, `migration-${v}-${word(prng)}`, BASE_TIME_MS + v * 86_400_000);
      const ins = db.prepare(
        'INSERT INTO users(id, email, display_name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      );
      for (const u of users) {
        ins.run(
          u.id,
          u.email,
          u.name,
          `scrypt$${prng.hex(32)}$${prng.hex(64)}`,
          u.role,
          BASE_TIME_MS + prng.int(0, 1e9),
        );
      }
    });
    writeWalTail(this.w.abs(rel), (db) => {
      const insP = db.prepare(
        'INSERT INTO projects(id, name, owner_id, storage_path, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      );
      const insM = db.prepare('INSERT INTO project_members(project_id, user_id, role) VALUES (?, ?, ?)');
      for (const p of projects) {
        const created = BASE_TIME_MS + prng.int(0, 1e9);
        insP.run(p.id, p.name, p.ownerId, `projects/${p.id}`, created, created + prng.int(0, 1e9));
        insM.run(p.id, p.ownerId, 'owner');
        const other = prng.pick(users).id;
        if (other !== p.ownerId) insM.run(p.id, other, 'editor');
      }
      const login = db.prepare('UPDATE users SET last_login_at = ? WHERE id = ?');
      for (const u of users) login.run(BASE_TIME_MS + 2e9 + prng.int(0, 1e8), u.id);
    });
    this.databases.push(rel);
    this.w.progress.advance(statSync(this.w.abs(rel)).size, rel);
  }

  async module(name: string, leaveWalTail: boolean): Promise<void> {
    const w = this.w;
    const base = `modules/${name}`;
    await w.file(
      `${base}/module-settings.json`,
      jsonFile({ name, enabled: true, version: `1.${name.length}.0`, options: { concurrency: 2, retries: 3 } }),
    );
    const idx = this.rng(`${base}/module-data/index.json`);
    const assets: string[] = [];
    for (let i = 0; i < 2; i++) assets.push(`assets/${slug(idx, 2)}-${i}.bin`);
    await w.file(`${base}/module-data/index.json`, jsonFile({ assets }));
    for (const a of assets) {
      const rel = `${base}/module-data/${a}`;
      const prng = this.rng(rel);
      await w.file(rel, prng.bytes(prng.int(16 * KiB, 128 * KiB)));
    }
    await w.file(`${base}/state/state.json`, jsonFile({ lastRun: new Date(BASE_TIME_MS).toISOString(), cursor: 42 }));
    const junk = this.rng(`${base}/tmp`);
    const junkRel = `${base}/tmp/job-${junk.hex(8)}.tmp`;
    await w.file(junkRel, this.rng(junkRel).bytes(8 * KiB));

    const rel = `${base}/module.db`;
    const prng = this.rng(rel);
    const jobs = Math.max(20, Math.ceil(this.spec.dbRowsPerProject / 4));
    const insertJobs = (db: Database.Database, from: number, to: number): void => {
      const ins = db.prepare(
        'INSERT INTO jobs(id, kind, status, payload, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)',
      );
      for (let i = from; i < to; i++) {
        const t = BASE_TIME_MS + i * 60_000;
        const status = prng.pick(['done', 'done', 'failed']);
        ins.run(i + 1, word(prng), status, JSON.stringify({ target: slug(prng, 3) }), t, t + prng.int(100, 60_000));
      }
    };
    buildDatabase(w.abs(rel), (db) => {
      db.exec(MODULE_SCHEMA);
      const kv = db.prepare('INSERT INTO module_kv(key, value) VALUES (?, ?)');
      for (let i = 0; i < 20; i++) kv.run(`${word(prng)}.${i}`, JSON.stringify({ v: prng.int(0, 1e6) }));
      insertJobs(db, 0, jobs);
    });
    if (leaveWalTail) writeWalTail(w.abs(rel), (db) => insertJobs(db, jobs, jobs + 25));
    this.databases.push(rel);
    w.progress.advance(statSync(w.abs(rel)).size, rel);
  }

  async project(p: ProjectPlan): Promise<void> {
    const w = this.w;
    const base = `projects/${p.id}`;
    await w.file(
      `${base}/project.json`,
      jsonFile({
        id: p.id,
        name: p.name,
        ownerId: p.ownerId,
        createdAt: new Date(BASE_TIME_MS).toISOString(),
        maps: p.mapIds,
        settings: { visibility: 'team', units: 'metric' },
      }),
    );
    await this.uploads(p);
    const logRel = `${base}/logs/project.log`;
    const logRng = this.rng(logRel);
    await w.file(logRel, logText(logRng, logRng.int(16 * KiB, 64 * KiB), BASE_TIME_MS, p.id));
    for (const m of p.mapIds) {
      const rel = `${base}/cache/thumbnails/${m}.png`;
      const prng = this.rng(rel);
      await w.file(rel, pngTile(prng, prng.int(8 * KiB, 16 * KiB)));
    }
    await w.file(`${base}/cache/search-index.json`, jsonFile({ terms: p.name.split('-'), built: BASE_TIME_MS }));
    const partRel = `${base}/tmp/upload-${this.rng(`${base}/tmp`).hex(8)}.part`;
    const partRng = this.rng(partRel);
    await w.file(partRel, partRng.bytes(partRng.int(32 * KiB, 96 * KiB)));

    for (const m of p.mapIds) await this.map(p, m);
    await this.projectDb(p);
  }

  private async uploads(p: ProjectPlan): Promise<void> {
    const names = this.rng(`projects/${p.id}/files`);
    for (let i = 0; i < this.spec.uploadsPerProject; i++) {
      const kind = names.pick(UPLOAD_KINDS);
      const rel = `projects/${p.id}/files/${String(i).padStart(3, '0')}-${slug(names, 2)}.${kind.ext}`;
      const prng = this.rng(rel);
      const { uploadBytes: lo, uploadBytesMax: hi } = this.spec;
      const size =
        hi === undefined
          ? Math.max(256, Math.round(lo * prng.pick(SIZE_FACTORS) * (0.8 + 0.4 * prng.float())))
          : Math.max(256, lo + Math.floor(prng.float() * (hi - lo)));
      await this.w.file(rel, kind.make(prng, size));
    }
  }

  private async map(p: ProjectPlan, mapId: string): Promise<void> {
    const w = this.w;
    const base = `projects/${p.id}/maps/${mapId}`;
    const tiles: TileRecord[] = [];
    const perColumn = this.spec.tilesPerColumn;
    const coords = perColumn === undefined ? pyramid(this.spec.tilesPerMap) : columns(this.spec.tilesPerMap, perColumn);
    for (const [z, x, y] of coords) {
      const rel = `${base}/tiles/${z}/${x}/${y}.png`;
      const prng = this.rng(rel);
      const size = Math.max(64, Math.round(this.spec.tileBytes * (0.5 + prng.float())));
      await w.file(rel, pngTile(prng, size));
      tiles.push({ z, x, y, bytes: size, etag: prng.hex(16) });
    }
    await w.file(
      `${base}/files/style.json`,
      jsonFile({ basemap: 'osm-light', layers: ['points', 'lines'], opacity: 0.8 }),
    );
    const junkRel = `${base}/tmp/render-${this.rng(`${base}/tmp`).hex(8)}.tmp`;
    await w.file(junkRel, this.rng(junkRel).bytes(4 * KiB));

    const rel = `${base}/map.db`;
    const prng = this.rng(rel);
    buildDatabase(w.abs(rel), (db) => {
      db.exec(MAP_SCHEMA);
      const meta = db.prepare('INSERT INTO map_meta(key, value) VALUES (?, ?)');
      meta.run('id', mapId);
      meta.run('project_id', p.id);
      meta.run('title', slug(prng, 3));
      meta.run('bounds', JSON.stringify([5, 45, 11, 48]));
      const ann = db.prepare('INSERT INTO annotations(z, x, y, label, geometry, created_at) VALUES (?, ?, ?, ?, ?, ?)');
      const n = Math.ceil(this.spec.dbRowsPerProject / 4);
      for (let i = 0; i < n; i++) {
        const [z, x, y] = [prng.int(0, 18), prng.int(0, 1 << 16), prng.int(0, 1 << 16)];
        ann.run(z, x, y, slug(prng, 3), pointJson(prng), BASE_TIME_MS + i * 1000);
      }
      const ti = db.prepare('INSERT INTO tile_index(z, x, y, bytes, etag) VALUES (?, ?, ?, ?, ?)');
      for (const t of tiles) ti.run(t.z, t.x, t.y, t.bytes, t.etag);
    });
    w.progress.advance(statSync(w.abs(rel)).size, rel);
    // drawn traces: long line geometries (compressible text), the bulk of a busy map's recent edits
    this.walTail(rel, (db, wal, limit) => {
      const ann = db.prepare('INSERT INTO annotations(z, x, y, label, geometry, created_at) VALUES (?, ?, ?, ?, ?, ?)');
      for (let written = 0, i = 0; written < limit; i++) {
        const points: string[] = [];
        for (let k = wal.int(50, 400); k > 0; k--)
          points.push(`[${(5 + wal.float() * 6).toFixed(6)},${(45 + wal.float() * 3).toFixed(6)}]`);
        const geometry = `{"type":"LineString","coordinates":[${points.join(',')}]}`;
        ann.run(wal.int(10, 18), wal.int(0, 1 << 16), wal.int(0, 1 << 16), slug(wal, 3), geometry, BASE_TIME_MS + i);
        written += geometry.length + 40;
      }
    });
    this.databases.push(rel);
  }

  private async projectDb(p: ProjectPlan): Promise<void> {
    const w = this.w;
    const rel = `projects/${p.id}/project.db`;
    const abs = w.abs(rel);
    const prng = this.rng(rel);
    buildDatabase(abs, (db) => {
      db.exec(PROJECT_SCHEMA);
      const layer = db.prepare('INSERT INTO layers(id, name, kind, style) VALUES (?, ?, ?, ?)');
      const layers = prng.int(3, 9);
      for (let i = 1; i <= layers; i++) {
        const style = JSON.stringify({ color: `#${prng.hex(6)}`, width: prng.int(1, 5) });
        layer.run(i, slug(prng, 2), prng.pick(['point', 'line', 'polygon']), style);
      }
      const feat = db.prepare('INSERT INTO features(layer_id, geometry, properties, updated_at) VALUES (?, ?, ?, ?)');
      for (let i = 0; i < this.spec.dbRowsPerProject; i++) {
        const props = { name: slug(prng, 2), status: word(prng), note: slug(prng, prng.int(2, 12)).replace(/-/g, ' ') };
        feat.run(prng.int(1, layers + 1), pointJson(prng), JSON.stringify(props), BASE_TIME_MS + i * 1000);
      }
      const att = db.prepare('INSERT INTO attachments(feature_id, name, mime, data, note) VALUES (?, ?, ?, ?, ?)');
      const small = Math.ceil(this.spec.dbRowsPerProject / 50);
      for (let i = 0; i < small; i++) {
        const featureId = prng.int(1, this.spec.dbRowsPerProject + 1);
        att.run(featureId, `${slug(prng, 2)}.jpg`, 'image/jpeg', prng.bytes(prng.int(KiB, 8 * KiB)), null);
      }
      const set = db.prepare('INSERT INTO project_settings(key, value) VALUES (?, ?)');
      set.run('name', JSON.stringify(p.name));
      set.run('owner', JSON.stringify(p.ownerId));
      set.run('maps', JSON.stringify(p.mapIds));
    });
    if (p.large) await this.fillLarge(abs, rel, prng);
    if (!p.large) w.progress.advance(statSync(abs).size, rel);
    this.walTail(rel, (db, wal, limit) => insertAttachments(db, wal, limit, this.spec.dbRowsPerProject));
    this.databases.push(rel);
  }

  /**
   * With walTailBytes: commit about that many bytes of rows to the WAL-mode database `rel` (`insert` writes rows
   * until `limit` bytes), left only in its -wal. Its own stream, so the main file's rows stay the same.
   */
  private walTail(rel: string, insert: (db: Database.Database, prng: Prng, limit: number) => void): void {
    const bytes = this.spec.walTailBytes ?? 0;
    if (bytes === 0) return;
    const abs = this.w.abs(rel);
    const prng = this.rng(`${rel}-wal`);
    writeWalTail(abs, (db) => insert(db, prng, bytes));
    this.w.progress.advance(statSync(`${abs}-wal`).size, `${rel}-wal`);
  }

  /**
   * Grow a project.db to largeDbBytes (or its drawn size in [largeDbBytes,
   * largeDbBytesMax]) with attachment rows (insertAttachments), in batches of
   * LARGE_DB_BATCH_BYTES per transaction.
   */
  private async fillLarge(abs: string, rel: string, prng: Prng): Promise<void> {
    const { largeDbBytes: lo, largeDbBytesMax: hi } = this.spec;
    // its own stream: the rows of a preset's large databases stay what they were without largeDbBytesMax
    const target = hi === undefined ? lo : lo + Math.floor(this.rng(`${rel}#size`).float() * (hi - lo));
    const db = new Database(abs);
    try {
      db.pragma('journal_mode = OFF');
      db.pragma('synchronous = OFF');
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      const pageCount = (): number => db.pragma('page_count', { simple: true }) as number;
      let size = pageCount() * pageSize;
      const batch = db.transaction((limit: number): number => {
        insertAttachments(db, prng, limit, this.spec.dbRowsPerProject);
        return pageCount() * pageSize;
      });
      while (size < target) {
        // Rows take ~10% more room than their payload, so aim under what is left and converge.
        const next = batch(Math.min(LARGE_DB_BATCH_BYTES, Math.max(64 * KiB, Math.floor((target - size) * 0.85))));
        this.w.progress.advance(next - size, rel);
        size = next;
        await this.w.breathe();
      }
      db.pragma('journal_mode = WAL');
    } finally {
      db.close();
    }
  }
}

/**
 * Attachment rows until about `limit` bytes: a random blob of 1-12 KiB (incompressible, unique, so nothing
 * dedups by accident) and a few hundred bytes of text each.
 */
function insertAttachments(db: Database.Database, prng: Prng, limit: number, features: number): void {
  const att = db.prepare('INSERT INTO attachments(feature_id, name, mime, data, note) VALUES (?, ?, ?, ?, ?)');
  const scratch = Buffer.allocUnsafe(12 * KiB);
  let written = 0;
  while (written < limit) {
    const n = prng.int(KiB, 12 * KiB);
    // better-sqlite3 copies bound blobs, so one scratch buffer serves every row.
    const data = prng.fill(scratch, 0, n).subarray(0, n);
    const note = proseText(prng, prng.int(100, 600)).toString('latin1');
    const featureId = prng.int(1, features + 1);
    att.run(featureId, `${slug(prng, 2)}.bin`, 'application/octet-stream', data, note);
    written += n + note.length + 40;
  }
}

function pointJson(prng: Prng): string {
  return `{"type":"Point","coordinates":[${(5 + prng.float() * 6).toFixed(6)},${(45 + prng.float() * 3).toFixed(6)}]}`;
}

/**
 * Create a database with `fill` run in one transaction. Built in rollback mode
 * without syncs (fast; nothing to protect in a fresh file), then switched to WAL.
 */
function buildDatabase(path: string, fill: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.transaction(() => fill(db))();
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
}

/**
 * Commit `write` to a WAL-mode database so that its rows live only in -wal.
 * The writer disables auto-checkpoints; a read-only connection that is open
 * when the writer closes keeps the writer from checkpointing at close (it is
 * not the last connection), and a read-only connection never checkpoints when
 * it closes itself. Throws INTERNAL if -wal is empty afterwards.
 */
export function writeWalTail(path: string, write: (db: Database.Database) => void): void {
  const db = new Database(path);
  let pin: Database.Database | undefined;
  try {
    db.pragma('wal_autocheckpoint = 0');
    db.transaction(() => write(db))();
    pin = new Database(path, { readonly: true });
    pin.prepare('SELECT count(*) FROM sqlite_schema').get();
    db.close();
  } finally {
    if (db.open) db.close();
    pin?.close();
  }
  let walSize = 0;
  try {
    walSize = statSync(`${path}-wal`).size;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError('read', `${path}-wal`, err);
  }
  if (walSize === 0) {
    throw new FoleBackupError('INTERNAL', `generate ${path}: rows meant to stay in -wal were checkpointed`, { path });
  }
}
