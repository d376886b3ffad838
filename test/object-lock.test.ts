/**
 * Object Lock as prune and forget see it: a backend that keeps every object under retention (what an S3 bucket
 * with Object Lock does) and refuses, like S3, to remove one before its retention ends. No S3 server here enforces
 * Object Lock (OpenStack Swift does not), so the rules are proved on a double with the same contract.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend, Bytes, ObjectHandle } from '../src/backend/backend.js';
import { MemoryBackend } from '../src/backend/memory.js';
import { SharedBackend } from '../src/backend/shared.js';
import { backup } from '../src/backup/backup.js';
import { FoleBackupError } from '../src/errors.js';
import { prune } from '../src/prune/prune.js';
import { Repository } from '../src/repository/repository.js';
import { forget } from '../src/retention/forget.js';
import { listSnapshots } from '../src/snapshot/store.js';
import { expectCode } from './backend-conformance.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { expectAllReadable, FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';

const key = (h: ObjectHandle): string => (h.type === 'config' ? 'config' : `${h.type}/${h.name}`);

/**
 * Every object saved but a lock gets retention until `until` (epoch ms) at that time (the S3 backend puts locks
 * without retention: a lock must go when its command ends); removing one still retained fails.
 */
class RetainingBackend extends SharedBackend {
  until = Date.now() + 86_400_000;
  readonly retention = new Map<string, number>();
  readonly removed: string[] = [];

  constructor(inner: Backend) {
    super(inner);
  }

  override async save(h: ObjectHandle, data: Bytes): Promise<void> {
    await super.save(h, data);
    if (h.type !== 'locks') this.retention.set(key(h), this.until);
  }

  override async saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    await super.saveNew(h, data);
    if (h.type !== 'locks') this.retention.set(key(h), this.until);
  }

  override readonly retainedUntil = async (h: ObjectHandle): Promise<number | undefined> => {
    const until = this.retention.get(key(h));
    return until !== undefined && until > Date.now() ? until : undefined;
  };

  override async remove(h: ObjectHandle): Promise<void> {
    if ((await this.retainedUntil(h)) !== undefined) {
      throw new FoleBackupError('OBJECT_LOCKED', `remove ${key(h)}: under retention`);
    }
    this.removed.push(key(h));
    await super.remove(h);
  }

  /** Let the retention of every object matching `which` end now. */
  expire(which: (k: string) => boolean = () => true): void {
    for (const k of this.retention.keys()) if (which(k)) this.retention.set(k, Date.now() - 1);
  }
}

let work: string;

afterEach(() => rmSync(work, { recursive: true, force: true }));

async function twoBackups(backend: RetainingBackend): Promise<{ repo: Repository; ids: string[] }> {
  work = mkdtempSync(join(tmpdir(), 'fole-backup-lock-'));
  const root = join(work, 'storage');
  const files = join(root, 'projects', 'p1', 'files');
  createDatabase(join(root, 'core', 'core.db'), 10);
  mkdirSync(files, { recursive: true });
  const repo = await Repository.init(backend, TEST_PASSWORD, { kdf: FAST_KDF, packSize: 256 * 1024 });
  const ids: string[] = [];
  for (let gen = 0; gen < 2; gen++) {
    for (let i = 0; i < 8; i++) writeFileSync(join(files, `g${gen}-${i}.bin`), randomBytes(60_000));
    if (gen > 0) for (let i = 0; i < 8; i++) unlinkSync(join(files, `g${gen - 1}-${i}.bin`));
    ids.push((await backup(repo, { storageRoot: root, foleVersion: '1.0.0' })).backupId);
  }
  return { repo, ids };
}

describe('Object Lock: forget and prune never remove an object under retention', () => {
  it('forget refuses a retained backup before removing anything, and forgets it once retention ends', async () => {
    const backend = new RetainingBackend(new MemoryBackend());
    const { repo, ids } = await twoBackups(backend);
    const err = await expectCode(forget(repo, { ids: [ids[0] as string] }), 'OBJECT_LOCKED');
    expect(err.message).toContain(ids[0]);
    expect(backend.removed.filter((k) => k.startsWith('snapshots/'))).toEqual([]);
    expect(await listSnapshots(repo)).toHaveLength(2);
    backend.expire((k) => k === `snapshots/${ids[0]}`);
    expect((await forget(repo, { ids: [ids[0] as string] })).removed).toEqual([ids[0]]);
  });

  it('prune keeps retained packs and index files (and the packs a retained index names), then frees them', async () => {
    const backend = new RetainingBackend(new MemoryBackend());
    const { repo, ids } = await twoBackups(backend);
    backend.expire((k) => k.startsWith('snapshots/'));
    await forget(repo, { ids: [ids[0] as string] });
    const held = await prune(repo, { minPackAgeMs: 0 });
    expect(held.plan.removePacks).toBeGreaterThan(0);
    expect(held.retainedObjects).toBeGreaterThan(0);
    expect(backend.removed.filter((k) => k.startsWith('data/') || k.startsWith('index/'))).toEqual([]);
    await expectAllReadable(repo);

    // the index files' retention ends first: their packs are still retained and stay
    backend.expire((k) => k.startsWith('index/'));
    const reopened = await Repository.open(backend, TEST_PASSWORD);
    const partly = await prune(reopened, { minPackAgeMs: 0 });
    expect(backend.removed.filter((k) => k.startsWith('data/'))).toEqual([]);
    expect(partly.retainedObjects).toBeGreaterThan(0);
    await expectAllReadable(await Repository.open(backend, TEST_PASSWORD));

    backend.expire();
    const freed = await prune(await Repository.open(backend, TEST_PASSWORD), { minPackAgeMs: 0 });
    expect(freed.retainedObjects).toBeUndefined();
    expect(backend.removed.filter((k) => k.startsWith('data/')).length).toBeGreaterThan(0);
    const last = await Repository.open(backend, TEST_PASSWORD);
    expect((await listSnapshots(last)).map((s) => s.backupId)).toEqual([ids[1]]);
    await expectAllReadable(last);
  });
});
