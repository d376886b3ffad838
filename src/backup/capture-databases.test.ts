import { describe, expect, it } from 'vitest';
import { FoleBackupError } from '../errors.js';
import type { SnapshotDatabase } from '../snapshot/snapshot.js';
import { DatabaseOutcomes, unchangedIfFingerprint } from './capture-databases.js';

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
