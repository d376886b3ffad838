import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FoleBackupError, StopError } from '../errors.js';
import { createDamagedDatabase, createDatabase, fileTimesSettled } from '../../test/fixtures/sqlite-writer.js';
import { captureDatabases, fingerprintOf } from './capture.js';
import { captureOnThread } from './capture-thread.js';

let base: string;
let root: string;
let staging: string;

beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'fole-capture-thread-'));
  root = join(base, 'root');
  staging = join(base, 'staging');
  mkdirSync(root);
  mkdirSync(staging, { mode: 0o700 });
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

const abs = (rel: string): string => join(root, ...rel.split('/'));
function makeDbs(rels: string[]): void {
  for (const rel of rels) {
    mkdirSync(join(abs(rel), '..'), { recursive: true });
    createDatabase(abs(rel), 100, 'wal');
  }
}
const rows = (file: string): number => {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM counter').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe('captureOnThread', () => {
  it('captures on a worker thread what captureDatabases captures, settling each database on the way', async () => {
    const rels = ['core/core.db', 'projects/a/project.db', 'projects/b/project.db'];
    makeDbs(rels);
    await fileTimesSettled();
    const seen: string[] = [];
    const result = await captureOnThread({
      storageRoot: root,
      databases: rels,
      stagingDir: staging,
      unchangedIfFingerprint: {
        'projects/b/project.db': fingerprintOf(abs('projects/b/project.db')),
        'projects/a/project.db': 'stale',
      },
      onDatabase: (d) => seen.push(`${d.path}:${d.captured ? 'captured' : 'unchanged'}`),
    });
    // in the order each is settled: an unchanged one at once, a copy once checked
    expect(seen.sort()).toEqual([
      'core/core.db:captured',
      'projects/a/project.db:captured',
      'projects/b/project.db:unchanged',
    ]);
    expect(result.databases.map((d) => d.path)).toEqual(['core/core.db', 'projects/a/project.db']);
    expect(result.unchanged.map((u) => u.path)).toEqual(['projects/b/project.db']);
    for (const d of result.databases) expect(rows(d.file)).toBe(rows(abs(d.path)));
    // the same figures as on this thread
    const here = await captureDatabases({ storageRoot: root, databases: rels, stagingDir: staging });
    expect(result.databases.map(({ file: _f, ...rest }) => rest)).toEqual(
      here.databases.slice(0, 2).map(({ file: _f, ...rest }) => rest),
    );
  });

  it('tells each copy as soon as it is made, before its check, but not the one its check changes', async () => {
    const rels = ['core/core.db', 'projects/a/project.db', 'projects/b/project.db'];
    makeDbs(rels);
    const events: string[] = [];
    const sizes = new Map<string, number>();
    const result = await captureOnThread({
      storageRoot: root,
      databases: rels,
      stagingDir: staging,
      dropLockRow: { path: 'core/core.db', lockId: 'storage:global' },
      onCopied: (c) => {
        events.push(`copied ${c.path}`);
        // it is there, whole, while it is checked
        expect(statSync(c.file).size).toBe(c.size);
        sizes.set(c.path, c.size);
      },
      onDatabase: (d) => events.push(`settled ${d.path}`),
    });
    for (const rel of ['projects/a/project.db', 'projects/b/project.db'])
      expect(events.indexOf(`copied ${rel}`)).toBeLessThan(events.indexOf(`settled ${rel}`));
    expect(events).not.toContain('copied core/core.db');
    for (const d of result.databases) if (d.path !== 'core/core.db') expect(sizes.get(d.path)).toBe(d.size);
  });

  it('raises the same typed errors, and leaves no copy behind', async () => {
    makeDbs(['core/core.db']);
    mkdirSync(join(root, 'projects', 'p3'), { recursive: true });
    writeFileSync(abs('projects/p3/project.db'), Buffer.alloc(4096, 0x42));
    const err = await captureOnThread({
      storageRoot: root,
      databases: ['core/core.db', 'projects/p3/project.db'],
      stagingDir: staging,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StopError);
    expect((err as StopError).code).toBe('DB_INTEGRITY_ERROR');
    expect((err as StopError).path).toBe('projects/p3/project.db');
    expect(readdirSync(staging)).toEqual([]);
    const gone = await captureOnThread({
      storageRoot: root,
      databases: ['projects/gone/project.db'],
      stagingDir: staging,
    }).catch((e: unknown) => e);
    expect((gone as FoleBackupError).code).toBe('NOT_FOUND');
  });

  it('checks each copy on a thread of its own: damage found there stops FOLE, sets an optional one aside', async () => {
    // pages of garbage in the middle: it opens, pins and copies, and only the check of its copy fails
    const rels = ['core/core.db', 'projects/a/project.db', 'projects/b/project.db'];
    makeDbs(['core/core.db', 'projects/b/project.db']);
    createDamagedDatabase(abs('projects/a/project.db'));
    const err = await captureOnThread({ storageRoot: root, databases: rels, stagingDir: staging }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StopError);
    expect((err as StopError).code).toBe('DB_INTEGRITY_ERROR');
    expect((err as StopError).path).toBe('projects/a/project.db');
    expect((err as StopError).message).toMatch(/projects\/a\/project\.db/);
    expect(readdirSync(staging)).toEqual([]);

    const told: string[] = [];
    const r = await captureOnThread({
      storageRoot: root,
      databases: rels,
      stagingDir: staging,
      optional: ['projects/a/project.db'],
      onDatabase: (d) => told.push(`${d.path}:${d.captured ? 'captured' : d.damaged ? 'damaged' : '?'}`),
    });
    expect(told.sort()).toEqual([
      'core/core.db:captured',
      'projects/a/project.db:damaged',
      'projects/b/project.db:captured',
    ]);
    expect(r.databases.map((d) => d.path)).toEqual(['core/core.db', 'projects/b/project.db']);
    expect(r.damaged.map((d) => d.path)).toEqual(['projects/a/project.db']);
    // the damaged one's copy is gone, the others' are kept for the caller
    expect(readdirSync(staging).sort()).toEqual(r.databases.map((d) => d.file.split('/').pop()).sort());
    for (const d of r.databases) expect(rows(d.file)).toBe(100);
  });

  it('stops when aborted, and has removed its copies by the time it says so', async () => {
    // big enough that the copies and checks still to come outlast the abort's way to the thread
    const rels = Array.from({ length: 8 }, (_, i) => `projects/p${i}/project.db`);
    for (const rel of rels) {
      mkdirSync(join(abs(rel), '..'), { recursive: true });
      createDatabase(abs(rel), 20_000, 'wal');
    }
    const ac = new AbortController();
    let settled = 0;
    const err = await captureOnThread({
      storageRoot: root,
      databases: rels,
      stagingDir: staging,
      signal: ac.signal,
      onDatabase: () => {
        if (++settled === 2) ac.abort();
      },
    }).catch((e: unknown) => e);
    expect((err as FoleBackupError).code).toBe('ABORTED');
    expect(settled).toBeLessThan(rels.length);
    expect(readdirSync(staging)).toEqual([]);
  });
});
