/**
 * The benchmark's input: a seeded FOLE-like STORAGE_ROOT per preset or shape, generated
 * once and cached, then copied (cp -a) into each run's work directory so every
 * run and every tool starts from the same bytes.
 *
 * Cache key: preset (or shape-<shape>) name, seed, and a hash of the spec plus the
 * generator's source (src/demo/*.ts without tests), so changing either
 * regenerates. meta.json also keeps a fingerprint of every entry's path,
 * size and mtime: a cached tree that was touched (opening one of its WAL
 * databases is enough) is generated again rather than measured. The cache lives in
 * <out>/cache/<preset>-seed<seed>-<key>/ with
 * the tree in root/ and the generator's report in meta.json; a tree is
 * generated beside it and renamed into place, so an interrupted generation is
 * never taken for a cached one.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  estimateBytes,
  generateStorageRoot,
  PRESETS,
  type GeneratedStorageRoot,
  type StorageRootSpec,
} from '../../src/demo/generate-storage-root.js';
import type { PresetName } from './options.js';
import { run } from './measure.js';
import { SHAPES, type ShapeName } from './shapes.js';

/** What to measure: a size preset, or a shape (bench/lib/shapes.ts). */
export type DatasetChoice = { kind: 'preset'; name: PresetName } | { kind: 'shape'; name: ShapeName };

/** The name a dataset goes by in file names and reports: the preset's, or `shape-<name>`. */
export function datasetLabel(c: DatasetChoice): string {
  return c.kind === 'preset' ? c.name : `shape-${c.name}`;
}

export interface Dataset {
  /** datasetLabel() of what was asked for. */
  label: string;
  spec: StorageRootSpec;
  key: string;
  /** The cached tree: never modified, only copied. */
  root: string;
  generated: GeneratedStorageRoot;
  /** How long generating took (when it was generated, not cached). */
  generateMs: number;
  fromCache: boolean;
}

function cacheKey(repoRoot: string, spec: StorageRootSpec): string {
  const h = createHash('sha256').update(JSON.stringify(spec));
  const dir = join(repoRoot, 'src', 'demo');
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
    h.update(name).update(readFileSync(join(dir, name)));
  }
  return h.digest('hex').slice(0, 12);
}

/**
 * A preset's or shape's spec, scaled to about `files` files and `mb` megabytes when given:
 * the tile count carries the file count; in a preset the large databases (or, without any,
 * the uploads) carry the size, in a shape every size but the tiles' (scaleBytes).
 * The report prints what was actually generated.
 */
function scaledSpec(choice: DatasetChoice, files?: number, mb?: number): StorageRootSpec {
  const base = choice.kind === 'preset' ? PRESETS[choice.name] : SHAPES[choice.name].spec;
  const spec: StorageRootSpec = { ...base };
  if (choice.kind === 'shape') {
    if (files !== undefined) spec.tilesPerMap = scaledTiles(base, files);
    if (mb !== undefined) scaleBytes(spec, mb);
    return spec;
  }
  const maps = base.projects * base.mapsPerProject;
  if (files !== undefined) spec.tilesPerMap = scaledTiles(base, files);
  if (mb !== undefined) {
    const tileBytes = maps * spec.tilesPerMap * spec.tileBytes;
    const uploads = base.projects * base.uploadsPerProject * base.uploadBytes;
    const rest = Math.max(0, mb * 1e6 - tileBytes - uploads);
    if (base.largeDbs > 0) spec.largeDbBytes = Math.max(1024 * 1024, Math.round(rest / base.largeDbs));
    else
      spec.uploadBytes = Math.max(
        1024,
        Math.round((mb * 1e6 - tileBytes) / Math.max(1, base.projects * base.uploadsPerProject)),
      );
  }
  return spec;
}

/** Tiles per map for about `files` files in all (the other files counted roughly). */
function scaledTiles(base: StorageRootSpec, files: number): number {
  const maps = base.projects * base.mapsPerProject;
  const others = base.projects * (base.uploadsPerProject + 8) + base.modules.length * 6 + 16;
  return Math.max(1, Math.round(Math.max(0, files - others) / Math.max(1, maps)));
}

/**
 * A shape scaled to about `mb` MB: every size that carries its bytes (large databases, -wal tails, uploads) by
 * the same factor, the tiles kept, so the shape keeps its proportions.
 */
function scaleBytes(spec: StorageRootSpec, mb: number): void {
  const tiles = spec.projects * spec.mapsPerProject * spec.tilesPerMap * spec.tileBytes;
  const rest = Math.max(1, estimateBytes(spec) - tiles);
  const f = Math.max(0, mb * 1e6 - tiles) / rest;
  const by = (x: number, min: number): number => Math.max(min, Math.round(x * f));
  if (spec.largeDbs > 0) spec.largeDbBytes = by(spec.largeDbBytes, MIN_DB_BYTES);
  if (spec.largeDbBytesMax !== undefined) spec.largeDbBytesMax = by(spec.largeDbBytesMax, spec.largeDbBytes);
  if (spec.walTailBytes !== undefined) spec.walTailBytes = by(spec.walTailBytes, 64 * 1024);
  spec.uploadBytes = by(spec.uploadBytes, 1024);
  if (spec.uploadBytesMax !== undefined) spec.uploadBytesMax = by(spec.uploadBytesMax, spec.uploadBytes);
}

const MIN_DB_BYTES = 1024 * 1024;

/** The cached dataset for `choice` (scaled by `--files`/`--mb` when given), generating it first if needed. */
export async function ensureDataset(
  repoRoot: string,
  out: string,
  choice: DatasetChoice,
  log: (m: string) => void,
  scale: { files?: number; mb?: number } = {},
): Promise<Dataset> {
  const spec = scaledSpec(choice, scale.files, scale.mb);
  const key = cacheKey(repoRoot, spec);
  const name = datasetLabel(choice);
  // a scaled dataset gets its own name, so it never evicts the preset's cache
  const label = scale.files !== undefined || scale.mb !== undefined ? `${name}-scaled` : name;
  const dir = join(out, 'cache', `${label}-seed${spec.seed}-${key}`);
  const metaPath = join(dir, 'meta.json');
  if (existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as {
      generated: GeneratedStorageRoot;
      generateMs: number;
      fingerprint?: string;
    };
    // anything that opened a cached database (even a reader: the last connection to close checkpoints
    // the -wal away) changed the input; never measure on a tree that is not the generated one
    if (meta.fingerprint !== undefined && meta.fingerprint === treeFingerprint(join(dir, 'root'))) {
      log(`dataset: cached ${dir}`);
      return {
        label: name,
        spec,
        key,
        root: join(dir, 'root'),
        generated: meta.generated,
        generateMs: meta.generateMs,
        fromCache: true,
      };
    }
    log(`dataset: the cached tree in ${dir} was changed since it was generated; generating it again`);
  }
  // drop stale caches of the same preset (an older generator or spec): they can be GBs
  const cacheDir = join(out, 'cache');
  mkdirSync(cacheDir, { recursive: true });
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith(`${label}-seed`) && name !== `${label}-seed${spec.seed}-${key}`) {
      log(`dataset: removing stale cache ${name}`);
      rmSync(join(cacheDir, name), { recursive: true, force: true });
    }
  }
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  log(`dataset: generating ${name} (seed ${spec.seed}) into ${dir}`);
  const t0 = performance.now();
  const generated = await generateStorageRoot(join(partial, 'root'), spec, {
    onProgress: (m) => log(`  generate: ${m}`),
  });
  const generateMs = performance.now() - t0;
  // paths inside the report point at the partial dir; keep them relative to the cache
  generated.root = join(dir, 'root');
  const fingerprint = treeFingerprint(join(partial, 'root'));
  writeFileSync(
    join(partial, 'meta.json'),
    `${JSON.stringify({ dataset: name, spec, key, generated, generateMs, fingerprint }, null, 2)}\n`,
  );
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  return { label: name, spec, key, root: join(dir, 'root'), generated, generateMs, fromCache: false };
}

/**
 * SHA-256 over every entry's relative path, type, size and mtime (side files included): detects any change to the
 * cache.
 */
function treeFingerprint(root: string): string {
  const h = createHash('sha256');
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const abs = join(dir, name);
      const st = lstatSync(abs);
      const r = rel === '' ? name : `${rel}/${name}`;
      h.update(
        `${r}\0${st.isDirectory() ? 'd' : st.isFile() ? 'f' : 'o'}\0${st.isDirectory() ? 0 : st.size}\0` +
          `${st.isDirectory() ? 0 : st.mtimeMs}\n`,
      );
      if (st.isDirectory()) walk(abs, r);
    }
  };
  walk(root, '');
  return h.digest('hex');
}

/** Copy a tree with modes, mtimes and side files (cp -a). The source must be quiescent. */
export function copyTree(src: string, dst: string): void {
  rmSync(dst, { recursive: true, force: true });
  run('cp', ['-a', src, dst]);
}

export interface TreeListing {
  /** Absolute paths of the files a backup reads: no tmp/ or cache/, no -wal/-shm/-journal, no symlinks. */
  files: string[];
  bytes: number;
  /** Absolute paths of the SQLite databases among them (recognised by header). */
  databases: string[];
  /** Directories walked (the root not counted). */
  dirs: number;
}

const EPHEMERAL = new Set(['tmp', 'cache']);
const SIDE = /-(wal|shm|journal)$/;
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** Walk a tree with the backup's exclusions (src/storage/exclusions.ts). */
export function listTree(root: string): TreeListing {
  const files: string[] = [];
  const databases: string[] = [];
  let bytes = 0;
  let dirs = 0;
  const header = Buffer.alloc(16);
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, e.name);
      if (e.isDirectory()) {
        if (!EPHEMERAL.has(e.name)) {
          dirs++;
          walk(abs);
        }
        continue;
      }
      if (!e.isFile() || SIDE.test(e.name)) continue;
      const size = lstatSync(abs).size;
      files.push(abs);
      bytes += size;
      if (size >= 512 && size % 512 === 0) {
        const fd = openSync(abs, 'r');
        try {
          header.fill(0);
          readSync(fd, header, 0, 16, 0);
        } finally {
          closeSync(fd);
        }
        if (header.equals(SQLITE_HEADER)) databases.push(abs);
      }
    }
  };
  walk(root);
  return { files, bytes, databases, dirs };
}
