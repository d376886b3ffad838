/**
 * verify --read-data as the pack workers carry it out, over a real local
 * repository damaged on disk: a flipped bit in a blob is reported for its pack
 * and for exactly the files that need the blob (a one-chunk file, a file of
 * several chunks, a database), whichever worker finds it and in whichever
 * order the packs finish; a pack that cannot be read, and a scratch directory
 * that cannot be made, are reported without being taken for damage; the
 * subset reads only blob ranges and still checks the databases it draws.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FaultInjectingBackend } from '../src/backend/fault.js';
import { LocalBackend } from '../src/backend/local.js';
import { MemoryBackend } from '../src/backend/memory.js';
import { backup } from '../src/backup/backup.js';
import { FoleBackupError, StopError } from '../src/errors.js';
import { Repository } from '../src/repository/repository.js';
import type { TreeEntry } from '../src/snapshot/snapshot.js';
import { loadSnapshot } from '../src/snapshot/store.js';
import { readTree } from '../src/snapshot/tree.js';
import { verifyBackup, verifyVerdict, type VerifyReport } from '../src/verify/verify-backup.js';
import { makeRepo, TEST_PASSWORD } from './repo-helpers.js';
import { clearDamageRecords, makeFixture, type Fixture } from './verify-fixture.js';

let fx: Fixture;
let entries: TreeEntry[];
const restore: (() => void)[] = [];

beforeAll(async () => {
  fx = await makeFixture({ packSize: 48 * 1024 });
  const repo = await fx.open();
  const snap = await loadSnapshot(repo, fx.backupId);
  entries = [];
  for await (const e of readTree(repo, snap.tree)) entries.push(e);
  await repo.close();
});

afterEach(() => {
  // last damage first: two in one pack must end with the pack as it was
  for (const undo of restore.splice(0).reverse()) undo();
  // and what verify recorded of it (src/repository/damage.ts) goes with it: each test starts sound
  clearDamageRecords(fx.repoDir);
});

afterAll(() => fx.cleanup());

async function verify(
  opts: Parameters<typeof verifyBackup>[2] = { readData: true },
  backend?: (local: LocalBackend) => LocalBackend | FaultInjectingBackend,
): Promise<VerifyReport> {
  const local = new LocalBackend(fx.repoDir);
  const repo = await Repository.open(backend === undefined ? local : backend(local), TEST_PASSWORD);
  try {
    return await verifyBackup(repo, fx.backupId, opts);
  } finally {
    await repo.close();
  }
}

/** Flip one bit in the middle of blob `id`'s sealed bytes, on disk (undone after the test). Returns its pack. */
async function damageBlob(id: string): Promise<string> {
  const repo = await fx.open();
  await repo.loadIndex();
  const e = repo.index.get(id);
  await repo.close();
  if (e === undefined) throw new Error(`blob ${id} is not indexed`);
  const file = fx.packs().find((p) => basename(p) === e.pack) as string;
  const original = readFileSync(file);
  const damaged = Buffer.from(original);
  const at = e.offset + (e.length >> 1);
  damaged[at] = (damaged[at] ?? 0) ^ 0x08;
  writeFileSync(file, damaged);
  restore.push(() => writeFileSync(file, original));
  return e.pack;
}

const entry = (path: string): TreeEntry => entries.find((e) => e.path === path) as TreeEntry;
const filesAndDbs = (): number => entries.filter((e) => e.kind !== 'dir').length;

describe('verify --read-data on worker threads', () => {
  it('reports a damaged blob of a one-chunk file for its pack first, then for the file, by path', async () => {
    const victim = entry('projects/p1/files/f0003.txt');
    const pack = await damageBlob(victim.chunks?.[0] as string);
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ code: 'CHECKSUM_MISMATCH', kind: 'pack', object: `data/${pack}` });
    // the pack's real size (its buffer went to a worker: a length read afterwards said 0)
    const size = statSync(fx.packs().find((p) => basename(p) === pack) as string).size;
    expect(r.problems[0]?.message).toContain(`its ${size} bytes do not hash to its name`);
    const files = r.problems.filter((p) => p.kind !== 'pack');
    expect(files).toEqual([
      expect.objectContaining({ code: 'CHECKSUM_MISMATCH', kind: 'file', path: victim.path, backupId: fx.backupId }),
    ]);
    expect(files[0]?.message).toMatch(
      new RegExp(
        `^${victim.path}: decrypt blob ${victim.chunks?.[0]?.slice(0, 12)} in pack ${pack.slice(0, 12)}` +
          `: authentication failed`,
      ),
    );
    expect(r.counts.filesRead).toBe(filesAndDbs() - 1);
    expect(r.counts.bytesVerified).toBe(r.counts.bytes - (victim.size ?? 0));
    expect(r.counts.databasesChecked).toBe(3);
    expect(verifyVerdict(r)).toBeInstanceOf(StopError);
  });

  it('reports a damaged chunk in the middle of a file of several chunks for that file', async () => {
    const big = entry('projects/p1/files/big.bin');
    expect(big.chunks?.length).toBeGreaterThan(2);
    await damageBlob(big.chunks?.[1] as string);
    const r = await verify();
    const files = r.problems.filter((p) => p.kind !== 'pack');
    expect(files).toHaveLength(1);
    expect(files[0]).toMatchObject({ code: 'CHECKSUM_MISMATCH', kind: 'file', path: big.path });
    expect(files[0]?.message).toMatch(new RegExp(`^${big.path}: decrypt blob ${big.chunks?.[1]?.slice(0, 12)}`));
    expect(r.counts.filesRead).toBe(filesAndDbs() - 1);
  });

  it(
    'reports a bit flip in a database chunk for that database, ' + 'checks the others and leaves no scratch files',
    async () => {
      const db = entry('projects/p1/project.db');
      expect(db.kind).toBe('db');
      await damageBlob(db.chunks?.[db.chunks.length - 1] as string);
      const scratchParent = mkdtempSync(join(tmpdir(), 'fole-verify-scratch-'));
      try {
        const r = await verify({ readData: true, scratchParent });
        const found = r.problems.filter((p) => p.kind !== 'pack');
        expect(found).toEqual([
          expect.objectContaining({ code: 'CHECKSUM_MISMATCH', kind: 'database', path: db.path }),
        ]);
        expect(found[0]?.message).toMatch(/authentication failed/);
        expect(r.counts.databasesChecked).toBe(2);
        expect(r.counts.filesRead).toBe(filesAndDbs() - 1);
        expect(readdirSync(scratchParent)).toEqual([]);
      } finally {
        rmSync(scratchParent, { recursive: true, force: true });
      }
    },
  );

  it(
    'lists the same findings in the same order with one ' + 'worker reading one pack at a time and with several',
    async () => {
      const a = entry('projects/p1/files/f0001.txt');
      const db = entry('core/core.db');
      await damageBlob(a.chunks?.[0] as string);
      await damageBlob(db.chunks?.[0] as string);
      const serial = await verify({ readData: true, threads: 1, concurrency: 1 });
      // the same repository for both: what the first recorded would change what the second sees
      clearDamageRecords(fx.repoDir);
      const parallel = await verify({ readData: true, threads: 3, concurrency: 6 });
      expect(serial.problems.length).toBeGreaterThanOrEqual(3);
      expect(parallel.problems).toEqual(serial.problems);
      expect(parallel.counts).toEqual(serial.counts);
      // packs first, then the files in tree order (core/core.db sorts before projects/)
      expect(serial.problems.map((p) => p.kind)).toEqual([
        ...serial.problems.filter((p) => p.kind === 'pack').map(() => 'pack'),
        'database',
        'file',
      ]);
    },
  );

  it('reports a pack that cannot be read, and the files in it, as an ordinary error rather than damage', async () => {
    const victim = entry('projects/p1/files/f0005.txt');
    const repo = await fx.open();
    await repo.loadIndex();
    const pack = repo.index.get(victim.chunks?.[0] as string)?.pack as string;
    await repo.close();
    const eio = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    const r = await verify({ readData: true }, (local) => {
      const faulty = new FaultInjectingBackend(local);
      // every whole-pack load of that pack fails (stat still succeeds)
      const load = faulty.load.bind(faulty);
      faulty.load = async (h, range) => {
        if (h.type === 'data' && h.name === pack && range === undefined)
          throw new FoleBackupError('READ_ERROR', `read data/${pack}: EIO`, { cause: eio });
        return load(h, range);
      };
      return faulty;
    });
    expect(r.problems[0]).toMatchObject({ code: 'READ_ERROR', kind: 'pack', object: `data/${pack}` });
    expect(r.problems.some((p) => p.kind === 'file' && p.path === victim.path && p.code === 'READ_ERROR')).toBe(true);
    expect(r.problemCodes.CHECKSUM_MISMATCH).toBeUndefined();
    const v = verifyVerdict(r);
    expect(v).toBeInstanceOf(FoleBackupError);
    expect(v).not.toBeInstanceOf(StopError);
    expect(v?.code).toBe('READ_ERROR');
  });

  it.each([
    [
      'its parent is a plain file',
      (): string => {
        const notADir = join(fx.work, 'plain-file');
        writeFileSync(notADir, 'x');
        return notADir;
      },
    ],
    // ENOENT there is about our scratch space, not a missing repository object (NOT_FOUND would count as damage)
    ['its parent does not exist', (): string => join(fx.work, 'no', 'such', 'dir')],
  ])(
    'reports every database when the scratch directory cannot be made (%s), without calling it damage',
    async (_why, parentOf) => {
      const r = await verify({ readData: true, scratchParent: parentOf() });
      const dbs = r.problems.filter((p) => p.kind === 'database');
      expect(dbs.map((p) => p.path).sort()).toEqual(
        entries
          .filter((e) => e.kind === 'db')
          .map((e) => e.path)
          .sort(),
      );
      expect(dbs.every((p) => p.code === 'WRITE_ERROR' && p.message.includes('fole-verify-'))).toBe(true);
      expect(r.counts.databasesChecked).toBe(0);
      expect(r.counts.filesRead).toBe(filesAndDbs() - 3);
      expect(r.counts.bytesVerified).toBe(
        r.counts.bytes - entries.filter((e) => e.kind === 'db').reduce((s, e) => s + (e.size ?? 0), 0),
      );
      expect(verifyVerdict(r)?.code).toBe('WRITE_ERROR');
    },
  );
});

describe('verify --read-data over an in-memory repository', () => {
  it('hands the workers copies: the stored packs are intact for the next run', async () => {
    const repo = await makeRepo(new MemoryBackend(), { packSize: 48 * 1024 });
    const { backupId } = await backup(repo, { storageRoot: fx.root, foleVersion: '1.0.0' });
    for (let run = 0; run < 2; run++) {
      const r = await verifyBackup(repo, backupId, { readData: true });
      expect(r.problems).toEqual([]);
      expect(r.counts.databasesChecked).toBe(3);
    }
  });
});

describe('stopping verify --read-data', () => {
  it('ends with the abort, stops the workers and removes the scratch databases', async () => {
    const scratchParent = mkdtempSync(join(tmpdir(), 'fole-verify-scratch-'));
    const stop = new AbortController();
    let reading = false;
    const reporter = {
      phase: (name: string): void => {
        reading = name === 'read data';
      },
      // abort once the first pack is done: databases are being written by then
      progress: () => void (reading && stop.abort()),
      warn: () => undefined,
    };
    try {
      await expect(
        verify({ readData: true, scratchParent, reporter, signal: stop.signal, concurrency: 1 }),
      ).rejects.toSatisfy(
        (err: unknown) =>
          (err instanceof Error && err.name === 'AbortError') ||
          (err instanceof FoleBackupError && err.code === 'ABORTED'),
      );
      expect(readdirSync(scratchParent)).toEqual([]);
      // the lock was released: a new run goes through
      expect((await verify()).ok).toBe(true);
    } finally {
      rmSync(scratchParent, { recursive: true, force: true });
    }
  });
});

describe('stopping verify --read-data as the manifest is rendered', () => {
  it(
    'ends with ABORTED, ' + 'with the render stopped before the read is over (its rejection is not left unhandled)',
    async () => {
      const stop = new AbortController();
      const reporter = {
        // the render walks the tree again while the packs are read: stop it first
        phase: (name: string) => void (name === 'render manifest' && stop.abort()),
        progress: () => undefined,
        warn: () => undefined,
      };
      await expect(verify({ readData: true, reporter, signal: stop.signal })).rejects.toMatchObject({
        code: 'ABORTED',
      });
      // the lock was released: a new run goes through
      expect((await verify()).ok).toBe(true);
    },
  );
});

describe('verify --read-data-subset on worker threads', () => {
  it(
    'reads only blob ranges, checks the databases it draws, ' + 'and reports a damaged blob for its file only',
    async () => {
      const all = await verify({ readData: { percent: 100, seed: 's' } });
      expect(all.ok).toBe(true);
      expect(all.counts.databasesChecked).toBe(3);
      expect(all.counts.filesRead).toBe(filesAndDbs());
      const packBytes = fx.packs().reduce((s, p) => s + readFileSync(p).length, 0);
      // every chunk's own bytes, not the packs' headers and the file-list blobs
      expect(all.counts.bytesRead).toBeLessThan(packBytes);

      const victim = entry('projects/p1/files/f0002.txt');
      await damageBlob(victim.chunks?.[0] as string);
      const r = await verify({ readData: { percent: 100, seed: 's' } });
      // blob ranges cannot see a pack's hash: the file says what is wrong
      expect(r.problems).toEqual([
        expect.objectContaining({ code: 'CHECKSUM_MISMATCH', kind: 'file', path: victim.path }),
      ]);
    },
  );
});
