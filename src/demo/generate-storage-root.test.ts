import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FoleBackupError } from '../errors.js';
import { PNG_SIGNATURE } from './content.js';
import { OUTSIDE_SYMLINK_TARGET, PRESETS, generateStorageRoot, mutateStorageRoot } from './generate-storage-root.js';
import type { GeneratedStorageRoot, StorageRootSpec } from './generate-storage-root.js';

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');
const demo = PRESETS.demo;

interface WalkedFile {
  rel: string;
  size: number;
  isDb: boolean;
}

/** Every regular file under root (symlinks are not followed), sorted. */
function walk(root: string): WalkedFile[] {
  const out: WalkedFile[] = [];
  const visit = (rel: string): void => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) visit(r);
      else if (e.isFile()) {
        const buf = readFileSync(join(root, r));
        out.push({ rel: r, size: buf.length, isDb: buf.subarray(0, 16).equals(SQLITE_HEADER) });
      }
    }
  };
  visit('');
  return out.sort((a, b) => (a.rel < b.rel ? -1 : 1));
}

const isSideFile = (rel: string): boolean => /-(wal|shm|journal)$/.test(rel);
const isExcluded = (rel: string): boolean => rel.split('/').some((part) => part === 'tmp' || part === 'cache');
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Content hashes of every non-database regular file, keyed by relative path. */
function nonDbHashes(root: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of walk(root)) if (!f.isDb && !isSideFile(f.rel)) m.set(f.rel, sha256(join(root, f.rel)));
  return m;
}

describe('generateStorageRoot', () => {
  let scratch: string;
  let gen: GeneratedStorageRoot;
  const progress: string[] = [];

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'fole-gen-'));
    gen = await generateStorageRoot(join(scratch, 'root'), demo, {
      withSymlink: true,
      onProgress: (m) => progress.push(m),
    });
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it("creates FOLE's STORAGE_ROOT layout", () => {
    const p = (rel: string): string => join(gen.root, rel);
    expect(gen.projects).toHaveLength(demo.projects);
    for (const rel of [
      'core/core.db',
      'core/ai-action-log.jsonl',
      'templates/server-defaults.json',
      'config/server.json',
    ]) {
      expect(existsSync(p(rel)), rel).toBe(true);
    }
    expect(readdirSync(p('templates'), { recursive: true }).length).toBeGreaterThan(3);
    for (const m of demo.modules) {
      for (const rel of ['module.db', 'module-settings.json', 'module-data', 'state', 'tmp']) {
        expect(existsSync(p(`modules/${m}/${rel}`)), `${m}/${rel}`).toBe(true);
      }
      expect(readdirSync(p(`modules/${m}/tmp`)).length).toBeGreaterThan(0);
    }
    for (const id of gen.projects) {
      expect(id).toMatch(/^p-[0-9a-f]{6}$/);
      for (const rel of ['project.json', 'project.db', 'files', 'logs', 'cache', 'tmp', 'maps']) {
        expect(existsSync(p(`projects/${id}/${rel}`)), `${id}/${rel}`).toBe(true);
      }
      expect(readdirSync(p(`projects/${id}/tmp`)).length).toBeGreaterThan(0);
      expect(readdirSync(p(`projects/${id}/cache`), { recursive: true }).length).toBeGreaterThan(0);
      expect(JSON.parse(readFileSync(p(`projects/${id}/project.json`), 'utf8'))).toMatchObject({ id });
      const maps = readdirSync(p(`projects/${id}/maps`));
      expect(maps).toHaveLength(demo.mapsPerProject);
      for (const m of maps) {
        for (const rel of ['map.db', 'tiles', 'tmp'])
          expect(existsSync(p(`projects/${id}/maps/${m}/${rel}`))).toBe(true);
      }
    }
  });

  it('leaves committed core.db rows only in its -wal file, visible when the database is opened', () => {
    const core = join(gen.root, 'core/core.db');
    expect(statSync(`${core}-wal`).size).toBeGreaterThan(0);

    const db = new Database(core, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) FROM projects').pluck().get()).toBe(demo.projects);
      expect(db.prepare('SELECT count(*) FROM dal_locks').pluck().get()).toBe(0);
      const cols = db.prepare('SELECT name, type, "notnull", pk FROM pragma_table_info(?)').all('dal_locks');
      expect(cols).toEqual([
        { name: 'lock_id', type: 'TEXT', notnull: 0, pk: 1 },
        { name: 'owner', type: 'TEXT', notnull: 1, pk: 0 },
        { name: 'host', type: 'TEXT', notnull: 0, pk: 0 },
        { name: 'pid', type: 'INTEGER', notnull: 0, pk: 0 },
        { name: 'acquired_at', type: 'INTEGER', notnull: 1, pk: 0 },
        { name: 'heartbeat_at', type: 'INTEGER', notnull: 1, pk: 0 },
        { name: 'lease_expires_at', type: 'INTEGER', notnull: 1, pk: 0 },
      ]);
    } finally {
      db.close();
    }

    // The main file alone (what a naive copy of *.db gets) has the users but not the project registry.
    const copy = join(scratch, 'core-main-file-only.db');
    copyFileSync(core, copy);
    const naive = new Database(copy, { readonly: true });
    try {
      expect(naive.prepare('SELECT count(*) FROM users').pluck().get()).toBeGreaterThan(0);
      expect(naive.prepare('SELECT count(*) FROM projects').pluck().get()).toBe(0);
    } finally {
      naive.close();
    }
    expect(statSync(`${core}-wal`).size).toBeGreaterThan(0);
  });

  it('lists exactly the files with a SQLite header as databases, all in WAL mode and intact', () => {
    const found = walk(gen.root)
      .filter((f) => f.isDb)
      .map((f) => f.rel);
    expect(gen.databases).toEqual(found);
    expect(gen.databases.length).toBe(1 + demo.modules.length + demo.projects * (1 + demo.mapsPerProject));
    for (const rel of gen.databases) {
      const header = readFileSync(join(gen.root, rel)).subarray(0, 20);
      // File format read/write versions 2 = WAL.
      expect([header[18], header[19]], rel).toEqual([2, 2]);
      const db = new Database(join(gen.root, rel), { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true }), rel).toBe('ok');
      } finally {
        db.close();
      }
    }
    const largest = Math.max(...gen.databases.map((rel) => statSync(join(gen.root, rel)).size));
    expect(largest).toBeGreaterThanOrEqual(demo.largeDbBytes);
    expect(largest).toBeLessThan(demo.largeDbBytes * 1.1);
  });

  it('writes incompressible PNG tiles in a z/x/y pyramid with sizes around tileBytes', () => {
    const tiles = walk(gen.root).filter((f) => /\/tiles\/\d+\/\d+\/\d+\.png$/.test(f.rel));
    expect(tiles).toHaveLength(demo.projects * demo.mapsPerProject * demo.tilesPerMap);
    for (const t of tiles) {
      expect(readFileSync(join(gen.root, t.rel)).subarray(0, 8).equals(PNG_SIGNATURE), t.rel).toBe(true);
      expect(t.size).toBeGreaterThanOrEqual(demo.tileBytes * 0.5);
      expect(t.size).toBeLessThan(demo.tileBytes * 1.5 + 1);
    }
    const sizes = new Set(tiles.map((t) => t.size));
    expect(sizes.size).toBeGreaterThan(tiles.length / 4);
  });

  it(
    'counts every regular file but the -wal/-shm side files, and creates the requested symlink without ' +
      'counting it',
    () => {
      const files = walk(gen.root).filter((f) => !isSideFile(f.rel));
      expect(gen.files).toBe(files.length);
      expect(gen.bytes).toBe(files.reduce((n, f) => n + f.size, 0));
      expect(gen.symlinks).toHaveLength(1);
      const link = join(gen.root, gen.symlinks[0] ?? '');
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link)).toBe(OUTSIDE_SYMLINK_TARGET);
    },
  );

  it('reports progress and finishes at 100%', () => {
    expect(progress.length).toBeGreaterThan(5);
    expect(progress.at(-1)).toMatch(/^100%: /);
  });

  it('gives the same names and non-database bytes for the same seed, and different ones for another seed', async () => {
    const again = await generateStorageRoot(join(scratch, 'again'), demo);
    expect(again.projects).toEqual(gen.projects);
    expect(again.databases).toEqual(gen.databases);
    const a = nonDbHashes(gen.root);
    const b = nonDbHashes(again.root);
    expect([...b.keys()]).toEqual([...a.keys()]);
    expect(b).toEqual(a);

    const other = await generateStorageRoot(join(scratch, 'other'), { ...demo, seed: demo.seed + 1 });
    expect(other.projects).not.toEqual(gen.projects);
  });

  it('refuses a non-empty root and an invalid spec', async () => {
    await expect(generateStorageRoot(gen.root, demo)).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    const bad: StorageRootSpec = { ...demo, largeDbs: demo.projects + 1 };
    await expect(generateStorageRoot(join(scratch, 'bad'), bad)).rejects.toBeInstanceOf(FoleBackupError);
    await expect(generateStorageRoot(join(scratch, 'bad'), { ...demo, tilesPerMap: -1 })).rejects.toMatchObject({
      code: 'USAGE',
    });
  });

  it('stops with ABORTED when the signal fires', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(
      generateStorageRoot(join(scratch, 'aborted'), PRESETS.small, { signal: ac.signal }),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });
});

describe('mutateStorageRoot', () => {
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'fole-mutate-'));
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it(
    'changes about the requested fraction of files and of database pages, ' + 'and nothing under tmp/ or cache/',
    async () => {
      const gen = await generateStorageRoot(join(scratch, 'root'), demo);
      const before = nonDbHashes(gen.root);
      const size = (rel: string): number => statSync(join(gen.root, rel)).size;
      const largestRel = [...gen.databases].sort((x, y) => size(y) - size(x))[0] ?? '';
      const largest = join(gen.root, largestRel);
      expect(existsSync(`${largest}-wal`)).toBe(false);
      const dbBefore = readFileSync(largest);

      const res = await mutateStorageRoot(gen.root, { seed: 7, fileFraction: 0.05, dbPageFraction: 0.02 });

      const after = nonDbHashes(gen.root);
      const changed = [...after.keys()].filter((rel) => after.get(rel) !== before.get(rel));
      const eligible = [...before.keys()].filter((rel) => !isExcluded(rel));
      expect(res.filesConsidered).toBe(eligible.length);
      expect(res.filesChanged).toBe(Math.round(eligible.length * 0.05));
      expect(changed).toEqual(res.changedFiles);
      expect(changed.some(isExcluded)).toBe(false);
      expect(res.rewritten + res.appended + res.patched).toBe(res.filesChanged);

      expect(res.database?.path).toBe(largestRel);
      const dbAfter = readFileSync(largest);
      const pageSize = res.database?.pageSize ?? 4096;
      let differing = 0;
      for (let off = 0; off < Math.max(dbBefore.length, dbAfter.length); off += pageSize) {
        if (!dbBefore.subarray(off, off + pageSize).equals(dbAfter.subarray(off, off + pageSize))) differing++;
      }
      expect(differing).toBe(res.database?.pagesChanged);
      const pages = dbBefore.length / pageSize;
      expect(differing).toBeGreaterThanOrEqual(pages * 0.02 * 0.5);
      expect(differing).toBeLessThanOrEqual(pages * 0.02 * 2);
      const db = new Database(largest, { readonly: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        db.close();
      }
    },
  );

  it('chooses the same files for the same seed on identical trees', async () => {
    const a = await generateStorageRoot(join(scratch, 'a'), demo);
    const b = await generateStorageRoot(join(scratch, 'b'), demo);
    const ra = await mutateStorageRoot(a.root, { seed: 11, fileFraction: 0.1, dbPageFraction: 0 });
    const rb = await mutateStorageRoot(b.root, { seed: 11, fileFraction: 0.1, dbPageFraction: 0 });
    expect(rb.changedFiles).toEqual(ra.changedFiles);
    expect(ra.database).toBeNull();
    expect(nonDbHashes(b.root)).toEqual(nonDbHashes(a.root));
  });
});

describe('generateStorageRoot: the optional shape fields', () => {
  let scratch: string;
  let gen: GeneratedStorageRoot;
  /** Every optional field at once, at test sizes. */
  const shaped: StorageRootSpec = {
    ...demo,
    projects: 3,
    mapsPerProject: 2,
    tilesPerMap: 40,
    tilesPerColumn: 1,
    uploadsPerProject: 3,
    uploadBytes: 20 * 1024,
    uploadBytesMax: 60 * 1024,
    largeDbs: 2,
    largeDbBytes: 1024 * 1024,
    largeDbBytesMax: 3 * 1024 * 1024,
    walTailBytes: 128 * 1024,
  };
  const count = (path: string, sql: string): number => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare(sql).pluck().get() as number;
    } finally {
      db.close();
    }
  };
  /** Rows of `table` in the main file alone (what a copy of `*.db` without its -wal holds) and with its -wal. */
  const rowsWithoutAndWithWal = (abs: string, table: string): [number, number] => {
    const copy = join(scratch, `main-only-${table}-${readdirSync(scratch).length}.db`);
    copyFileSync(abs, copy);
    return [count(copy, `SELECT count(*) FROM ${table}`), count(abs, `SELECT count(*) FROM ${table}`)];
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'fole-gen-shape-'));
    gen = await generateStorageRoot(join(scratch, 'root'), shaped);
  });

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('walTailBytes: every project.db and map.db holds about that much of its rows only in its -wal', () => {
    const dbs = gen.databases.filter((d) => d.endsWith('/project.db') || d.endsWith('/map.db'));
    expect(dbs).toHaveLength(shaped.projects * (1 + shaped.mapsPerProject));
    for (const rel of dbs) {
      const abs = join(gen.root, rel);
      const wal = statSync(`${abs}-wal`).size;
      expect(wal).toBeGreaterThan(shaped.walTailBytes ?? 0);
      expect(wal).toBeLessThan(2 * (shaped.walTailBytes ?? 0) + 512 * 1024);
      const [mainOnly, all] = rowsWithoutAndWithWal(abs, rel.endsWith('map.db') ? 'annotations' : 'attachments');
      expect(all).toBeGreaterThan(mainOnly);
      // a read-only connection does not checkpoint when it closes: the -wal is still there
      expect(statSync(`${abs}-wal`).size).toBe(wal);
    }
    // a small project.db's main file is far smaller than what its -wal holds
    const small = join(gen.root, `projects/${gen.projects[2]}/project.db`);
    expect(statSync(small).size).toBeLessThan(statSync(`${small}-wal`).size);
  });

  it('tilesPerColumn: one directory per column of tiles', () => {
    for (const p of gen.projects) {
      const maps = readdirSync(join(gen.root, `projects/${p}/maps`));
      expect(maps).toHaveLength(shaped.mapsPerProject);
      for (const m of maps) {
        const zoom = join(gen.root, `projects/${p}/maps/${m}/tiles`);
        expect(readdirSync(zoom)).toEqual(['17']);
        const cols = readdirSync(join(zoom, '17'));
        expect(cols).toHaveLength(shaped.tilesPerMap);
        for (const c of cols) expect(readdirSync(join(zoom, '17', c))).toHaveLength(1);
      }
    }
  });

  it('largeDbBytesMax and uploadBytesMax: sizes drawn within their ranges', () => {
    const large = gen.projects
      .slice(0, shaped.largeDbs)
      .map((p) => statSync(join(gen.root, `projects/${p}/project.db`)));
    for (const st of large) {
      expect(st.size).toBeGreaterThanOrEqual(shaped.largeDbBytes);
      expect(st.size).toBeLessThan((shaped.largeDbBytesMax ?? 0) * 1.1);
    }
    const uploads = gen.projects.flatMap((p) =>
      readdirSync(join(gen.root, `projects/${p}/files`)).map((f) =>
        statSync(join(gen.root, `projects/${p}/files/${f}`)),
      ),
    );
    expect(uploads).toHaveLength(shaped.projects * shaped.uploadsPerProject);
    for (const st of uploads) {
      expect(st.size).toBeGreaterThanOrEqual(shaped.uploadBytes);
      expect(st.size).toBeLessThan(shaped.uploadBytesMax ?? 0);
    }
  });

  it('gives the same names, non-database bytes and rows for the same spec', async () => {
    const again = await generateStorageRoot(join(scratch, 'again'), shaped);
    expect(again.databases).toEqual(gen.databases);
    expect(nonDbHashes(again.root)).toEqual(nonDbHashes(gen.root));
    for (const rel of gen.databases.filter((d) => d.endsWith('project.db'))) {
      const sql = 'SELECT count(*) || sum(length(data)) FROM attachments';
      expect(count(join(again.root, rel), sql)).toBe(count(join(gen.root, rel), sql));
    }
  });

  it('refuses invalid optional fields with USAGE', async () => {
    const bad: Partial<StorageRootSpec>[] = [
      { walTailBytes: -1 },
      { walTailBytes: 1.5 },
      { tilesPerColumn: 0 },
      { tilesPerColumn: Number.NaN },
      { uploadBytesMax: shaped.uploadBytes - 1 },
      { largeDbBytesMax: shaped.largeDbBytes - 1 },
      { largeDbBytesMax: '5' as unknown as number },
    ];
    for (const [i, b] of bad.entries())
      await expect(generateStorageRoot(join(scratch, `bad-${i}`), { ...shaped, ...b })).rejects.toMatchObject({
        code: 'USAGE',
      });
  });
});
