import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { createDatabase } from '../../test/fixtures/sqlite-writer.js';
import { deferred, type Deferred } from '../concurrency/deferred.js';
import { FoleBackupError } from '../errors.js';
import type { SnapshotDatabase } from '../snapshot/snapshot.js';
import { captureStorageDatabases, DatabaseOutcomes, unchangedIfFingerprint } from './capture-databases.js';
import type { StoreOutcome } from './file-pool.js';

describe('DatabaseOutcomes', () => {
  it('hands each outcome to its waiter, whether the capture settles it before or after the wait', async () => {
    const outcomes = new DatabaseOutcomes();
    outcomes.settle('early.db', { unchanged: 'fp' });
    const late = outcomes.wait('late.db');
    outcomes.settle('late.db', { vanished: true });
    expect(await outcomes.wait('early.db')).toEqual({ unchanged: 'fp' });
    expect(await late).toEqual({ vanished: true });
  });

  it('fails an outcome the finished capture never settled with INTERNAL, instead of waiting forever', async () => {
    const outcomes = new DatabaseOutcomes();
    const waiting = outcomes.wait('a.db');
    outcomes.settle('b.db', { locked: 'busy' });
    outcomes.finish();
    await expect(waiting).rejects.toMatchObject({ code: 'INTERNAL', path: 'a.db' });
    await expect(outcomes.wait('c.db')).rejects.toBeInstanceOf(FoleBackupError);
    expect(await outcomes.wait('b.db')).toEqual({ locked: 'busy' });
  });

  it("fails every outcome still waited for with the capture's own error", async () => {
    const outcomes = new DatabaseOutcomes();
    const waiting = outcomes.wait('a.db');
    const cause = new FoleBackupError('DB_LOCKED', 'core/core.db: locked');
    outcomes.fail(cause);
    await expect(waiting).rejects.toBe(cause);
    await expect(outcomes.wait('later.db')).rejects.toBe(cause);
  });
});

describe('unchangedIfFingerprint', () => {
  it("offers the parent's fingerprints to the capture, never core.db's (it holds our lock row)", () => {
    const db = (path: string, fingerprint?: string): SnapshotDatabase => ({
      path,
      sha256: 'x',
      size: 1,
      pageSize: 4096,
      pageCount: 1,
      userVersion: 0,
      journalMode: 'wal',
      integrity: 'ok',
      ...(fingerprint === undefined ? {} : { fingerprint }),
    });
    expect(unchangedIfFingerprint([db('core/core.db', 'f0'), db('a.db', 'f1'), db('b.db')])).toEqual({ 'a.db': 'f1' });
  });
});

describe('captureStorageDatabases', () => {
  it('removes each copy once it is stored and checked, not when the backup ends', async () => {
    const base = mkdtempSync(join(tmpdir(), 'fole-capture-stage-'));
    try {
      const root = join(base, 'root');
      const staging = join(base, 'staging');
      mkdirSync(staging, { mode: 0o700 });
      for (const p of ['projects/p1/project.db', 'projects/p2/project.db']) createDatabase(join(root, p), 50);
      const outcomes = new DatabaseOutcomes();
      const stores = new Map<string, { file: string; done: Deferred<StoreOutcome> }>();
      const result = await captureStorageDatabases(
        {
          root,
          databases: ['projects/p1/project.db', 'projects/p2/project.db'],
          stagingDir: staging,
          parentDatabases: [],
          signal: new AbortController().signal,
        },
        outcomes,
        (path, copy) => {
          // the copy is there while it is being stored
          expect(existsSync(copy.file)).toBe(true);
          const done = deferred<StoreOutcome>();
          stores.set(path, { file: copy.file, done });
          return done.promise;
        },
      );
      expect(result.databases.map((d) => d.path).sort()).toEqual(['projects/p1/project.db', 'projects/p2/project.db']);
      const p1 = stores.get('projects/p1/project.db');
      const p2 = stores.get('projects/p2/project.db');
      // captured and checked, not stored yet: both copies are kept
      expect([existsSync(p1?.file as string), existsSync(p2?.file as string)]).toEqual([true, true]);
      p1?.done.resolve({ size: 0, sha256: '', chunks: [] } as unknown as StoreOutcome);
      await outcomes.wait('projects/p1/project.db').then((o) => o.stored);
      await vi.waitFor(() => expect(existsSync(p1?.file as string)).toBe(false));
      expect(existsSync(p2?.file as string)).toBe(true);
      // a failed store leaves the copy to the backup's own clean-up of its staging
      p2?.done.reject(new Error('store failed'));
      await outcomes.wait('projects/p2/project.db').then((o) => o.stored?.catch(() => undefined));
      await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(p2?.file as string)).toBe(true);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
