import { describe, expect, it } from 'vitest';
import { FoleBackupError } from '../errors.js';
import type { TreeEntry } from '../snapshot/snapshot.js';
import type { PlannedRecord } from './plan.js';
import { keptEntry, requireStoredCopy } from './save-files.js';

const record = (path: string, extra: Partial<PlannedRecord> = {}): PlannedRecord => ({
  path,
  kind: 'file',
  size: 10,
  mode: 0o600,
  mtimeMs: 1000,
  ctimeMs: 2000,
  ino: 7,
  uid: 5,
  gid: 6,
  ...extra,
});

const parentFile: TreeEntry = {
  path: 'f',
  kind: 'file',
  mode: 0o644,
  mtimeMs: 1000,
  size: 10,
  sha256: 'aa',
  chunks: ['c1', 'c2'],
  ctimeMs: 2000,
  ino: 7,
};

const parentDb: TreeEntry = {
  path: 'p/project.db',
  kind: 'db',
  mode: 0o644,
  mtimeMs: 500,
  size: 4096,
  sha256: 'bb',
  chunks: ['d1'],
  db: { pageSize: 4096, pageCount: 1, userVersion: 3, journalMode: 'wal', integrity: 'ok' },
  fingerprint: 'fp1',
};

const all = (): boolean => true;

describe('keptEntry', () => {
  it("keeps an unchanged file's content from the parent, with the mode and owner as scanned", () => {
    const kept = keptEntry(record('f'), parentFile, undefined, all);
    expect(kept?.kind).toBe('filesUnchanged');
    expect(kept?.entry).toEqual({ ...parentFile, mode: 0o600, uid: 5, gid: 6 });
    expect(kept?.database).toBeUndefined();
  });

  it("reads an unchanged file again when one of its parent's chunks is gone from the repository", () => {
    expect(keptEntry(record('f'), parentFile, undefined, (id) => id !== 'c2')).toBeUndefined();
  });

  it('reads a changed or new file', () => {
    expect(keptEntry(record('f', { size: 11 }), parentFile, undefined, all)).toBeUndefined();
    expect(keptEntry(record('f'), undefined, undefined, all)).toBeUndefined();
  });

  it('reads a file that is now read as a database even when its stat is unchanged', () => {
    expect(keptEntry(record('f', { sqlite: true }), parentFile, {}, all)).toBeUndefined();
  });

  it('keeps a database the capture found unchanged, recorded as not captured', () => {
    const kept = keptEntry(record('p/project.db', { sqlite: true }), parentDb, { unchanged: 'fp1' }, all);
    expect(kept?.kind).toBe('dbsUnchanged');
    expect(kept?.entry).toEqual({ ...parentDb, mode: 0o600, mtimeMs: 1000, uid: 5, gid: 6 });
    expect(kept?.database).toEqual({
      path: 'p/project.db',
      sha256: 'bb',
      size: 4096,
      ...parentDb.db,
      fingerprint: 'fp1',
      captured: false,
    });
  });

  it("fails with INTERNAL when the capture kept a database the parent's entry cannot stand for", () => {
    const r = record('p/project.db', { sqlite: true });
    for (const [prev, hasBlob] of [
      [{ ...parentDb, fingerprint: 'fp0' }, all],
      [{ ...parentDb, kind: 'file' as const }, all],
      [parentDb, () => false],
      [undefined, all],
    ] as const) {
      let thrown: unknown;
      try {
        keptEntry(r, prev, { unchanged: 'fp1' }, hasBlob);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(FoleBackupError);
      expect((thrown as FoleBackupError).code).toBe('INTERNAL');
    }
  });
});

describe('requireStoredCopy', () => {
  it("fails the backup when a captured database's copy vanished or was replaced while it was stored", () => {
    for (const out of [{ status: 'vanished' }, { status: 'not-a-file' }] as const) {
      expect(() => requireStoredCopy('core/core.db', out)).toThrow(FoleBackupError);
      expect(() => requireStoredCopy('core/core.db', out)).toThrow(/captured copy of core\/core.db was removed/);
    }
  });
});
