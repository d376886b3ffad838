/**
 * The benchmark's shapes (`npm run bench -- --shape NAME`): STORAGE_ROOTs that vary what the size presets hold
 * fixed (issue 18) — where the bytes live (a large -wal, one huge database, large uploads), how many files and
 * directories hold them. Each is a StorageRootSpec, generated and cached like a preset under its own name.
 */
import type { StorageRootSpec } from '../../src/demo/generate-storage-root.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export const SHAPE_NAMES = [
  'wal-heavy',
  'wide-tree',
  'medium-dbs',
  'huge-db',
  'tiny-files',
  'large-uploads',
  'mixed',
] as const;
export type ShapeName = (typeof SHAPE_NAMES)[number];

export interface Shape {
  spec: StorageRootSpec;
  /** One line for the report: what the shape holds. */
  about: string;
  /** Whether the default scenarios include `dedup` (1% of the pages of the largest database alone). */
  dedup: boolean;
}

/** Little of everything but what a shape is about: 2 modules, small tile and upload counts, small databases. */
const BASE: StorageRootSpec = {
  seed: 18,
  projects: 2,
  mapsPerProject: 1,
  tilesPerMap: 100,
  tileBytes: 4 * KiB,
  uploadsPerProject: 4,
  uploadBytes: 64 * KiB,
  dbRowsPerProject: 1000,
  largeDbs: 0,
  largeDbBytes: 0,
  modules: ['ai-assistant', 'importer'],
};

export const SHAPES: Record<ShapeName, Shape> = {
  'wal-heavy': {
    about: '24 databases of ~21 MB, each with ~20 MiB of committed rows only in its -wal (~0.5 GB, ~1.7k files)',
    spec: { ...BASE, seed: 181, projects: 12, tilesPerMap: 120, walTailBytes: 20 * MiB },
    dedup: false,
  },
  'wide-tree': {
    about: '22,000 tiles of ~20 KiB, one directory per tile column (22k+ directories), 200 uploads (~0.55 GB)',
    spec: {
      ...BASE,
      seed: 182,
      projects: 10,
      mapsPerProject: 2,
      tilesPerMap: 1100,
      tilesPerColumn: 1,
      tileBytes: 20 * KiB,
      uploadsPerProject: 20,
      uploadBytes: 512 * KiB,
    },
    dedup: false,
  },
  'medium-dbs': {
    about: '24 project databases of 10–35 MiB (~0.55 GB), few other files',
    spec: {
      ...BASE,
      seed: 183,
      projects: 24,
      largeDbs: 24,
      largeDbBytes: 10 * MiB,
      largeDbBytesMax: 35 * MiB,
    },
    dedup: false,
  },
  'huge-db': {
    about: 'one ~1 GB project database and little else; dedup changes 1% of its pages',
    spec: { ...BASE, seed: 184, largeDbs: 1, largeDbBytes: 1_000_000_000 },
    dedup: true,
  },
  'tiny-files': {
    about:
      '60,000 tiles of 0.5–1.5 KiB and uploads of ~2 KiB, small databases only (~80 MB: the file count is the load)',
    spec: {
      ...BASE,
      seed: 185,
      projects: 10,
      mapsPerProject: 4,
      tilesPerMap: 1500,
      tileBytes: KiB,
      uploadsPerProject: 30,
      uploadBytes: 2 * KiB,
      dbRowsPerProject: 500,
    },
    dedup: false,
  },
  'large-uploads': {
    about: '8 uploads of 20–120 MB (~0.55 GB), few small files, small databases only',
    spec: { ...BASE, seed: 186, tilesPerMap: 20, uploadBytes: 20_000_000, uploadBytesMax: 120_000_000 },
    dedup: false,
  },
  mixed: {
    about: 'like the tree of issue 18: ~0.6 GB, ~22k files, 27 databases (24 with ~18 MiB in -wal), 21k+ directories',
    spec: {
      ...BASE,
      seed: 187,
      projects: 8,
      mapsPerProject: 2,
      tilesPerMap: 1300,
      tilesPerColumn: 1,
      uploadsPerProject: 80,
      uploadBytes: 96 * KiB,
      dbRowsPerProject: 2000,
      walTailBytes: 18 * MiB,
    },
    dedup: false,
  },
};
