/**
 * Every STOP of a restore, through the real CLI (exit code 3, the JSON stop
 * code) and through the library, each asserting that the target tree is
 * byte-for-byte what it was and that no staging, journal or previous tree is
 * left beside it. Also: bit flips at random offsets of packs are always caught.
 */
import {
  cpSync,
  existsSync,
  readFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../src/backup/backup.js';
import { LocalBackend } from '../src/backend/local.js';
import type { StopCode } from '../src/errors.js';
import { Repository } from '../src/repository/repository.js';
import { restore, type RestoreOptions } from '../src/restore/restore.js';
import type { TreeEntry } from '../src/snapshot/snapshot.js';
import { acquireStorageLock } from '../src/storage/global-lock.js';
import { sha256Hex } from '../src/crypto/hash.js';
import { runCli } from './cli-helpers.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';
import { corruptDatabaseBytes, forgeBackup, makeFoleTree, storeContent, treeHash } from './restore-helpers.js';

let work: string;
let live: string;
let repoDir: string;
let flipRepoDir: string;
let repo: Repository;
let backupId: string;
let badDbId: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-restore-stop-'));
  live = join(work, 'site', 'fole');
  const tree = makeFoleTree(live);
  repoDir = join(work, 'repo');
  repo = await Repository.init(new LocalBackend(repoDir), TEST_PASSWORD, { kdf: FAST_KDF });
  backupId = (await backup(repo, { storageRoot: live, foleVersion: '2.3.1' })).backupId;
  tree.core.db.close();
  // a pristine copy to damage, then a backup whose project.db is corrupt but whose hashes all match
  flipRepoDir = join(work, 'repo-flip');
  cpSync(repoDir, flipRepoDir, { recursive: true });
  const corrupt = corruptDatabaseBytes(join(work, 'corrupt.db'));
  badDbId = await forgeBackup(repo, backupId, async (entries) => {
    const content = await storeContent(repo, corrupt, repo.config.dbChunkSize);
    return entries.map((e) =>
      e.path === 'projects/p1/project.db' && e.db !== undefined
        ? { ...e, ...content, db: { ...e.db, pageSize: 4096, pageCount: corrupt.length / 4096 } }
        : e,
    );
  });
});

afterAll(async () => {
  await repo.close();
  rmSync(work, { recursive: true, force: true });
});

/** What must not change: the target tree, and the names beside it. (`core` content: its mtime, see the lock test.) */
function snapshotOf(target: string, ignoreContent: string[] = []): { tree: string; beside: string[] } {
  const parent = dirname(target);
  if (target === '/') return { tree: '/', beside: [] };
  return {
    tree: existsSync(target) ? treeHash(target, { ignoreContent }) : 'absent',
    beside: existsSync(parent) ? readdirSync(parent).sort() : [],
  };
}

async function expectCliStop(
  args: string[],
  code: StopCode,
  opts: { target?: string; env?: Record<string, string> } = {},
): Promise<{ message: string; hint: string }> {
  const target = opts.target ?? live;
  const before = snapshotOf(target);
  const r = await runCli(['restore', ...args, '--target', target, '--json'], {
    FOLE_BACKUP_REPO: repoDir,
    FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
    FOLE_VERSION: '',
    ...opts.env,
  });
  expect(r.code, r.stderr).toBe(3);
  const out = JSON.parse(r.stdout) as { stop: { code: string; message: string; hint: string } };
  expect(out.stop.code).toBe(code);
  expect(out.stop.hint).toBeTruthy();
  expect(r.stderr).toContain(`STOP ${code}`);
  expect(snapshotOf(target)).toEqual(before);
  return out.stop;
}

async function expectLibStop(
  r: Repository,
  ref: string,
  o: RestoreOptions,
  code: StopCode,
  message?: RegExp,
): Promise<void> {
  const before = snapshotOf(o.target);
  const err = await restore(r, ref, o).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected STOP ${code}`).toMatchObject({ name: 'StopError', code });
  if (message) expect((err as Error).message).toMatch(message);
  expect(snapshotOf(o.target)).toEqual(before);
}

const confirmed = (over: Partial<RestoreOptions> = {}): RestoreOptions => ({
  target: live,
  confirm: backupId,
  foleVersion: '2.3.1',
  ...over,
});

/** The packs of a local repository with the byte range their blobs occupy (everything before the header). */
function packs(dir: string): { file: string; blobBytes: number }[] {
  const out: { file: string; blobBytes: number }[] = [];
  for (const prefix of readdirSync(join(dir, 'data')).sort()) {
    for (const name of readdirSync(join(dir, 'data', prefix)).sort()) {
      const file = join(dir, 'data', prefix, name);
      const size = statSync(file).size;
      const fd = openSync(file, 'r');
      const tail = Buffer.alloc(4);
      readSync(fd, tail, 0, 4, size - 4);
      closeSync(fd);
      out.push({ file, blobBytes: size - 4 - tail.readUInt32LE(0) });
    }
  }
  return out;
}

function flipBit(file: string, offset: number, bit: number): void {
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  b[0] = (b[0] as number) ^ (1 << bit);
  writeSync(fd, b, 0, 1, offset);
  closeSync(fd);
}

describe('restore STOPs through the CLI (exit 3, JSON stop code, target untouched, no staging left)', () => {
  it('MISSING_MANIFEST: a backup id the repository does not have', async () => {
    const id = randomUUID();
    await expectCliStop([id, '--confirm', id, '--fole-version', '2.3.1'], 'MISSING_MANIFEST');
  });

  it('CHECKSUM_MISMATCH: a bit flipped in a pack on disk', async () => {
    const big = packs(flipRepoDir).sort((a, b) => b.blobBytes - a.blobBytes)[0];
    if (big === undefined) throw new Error('no pack');
    flipBit(big.file, Math.floor(big.blobBytes / 3), 5);
    try {
      await expectCliStop([backupId, '--confirm', backupId, '--fole-version', '2.3.1'], 'CHECKSUM_MISMATCH', {
        env: { FOLE_BACKUP_REPO: flipRepoDir },
      });
    } finally {
      flipBit(big.file, Math.floor(big.blobBytes / 3), 5);
    }
  });

  it('DB_INTEGRITY_ERROR: a database whose content matches its hashes but is corrupt', async () => {
    const stop = await expectCliStop([badDbId, '--confirm', badDbId, '--fole-version', '2.3.1'], 'DB_INTEGRITY_ERROR');
    expect(stop.message).toContain('projects/p1/project.db');
  });

  it('PERMISSION_DENIED: a wrong password', async () => {
    await expectCliStop([backupId, '--confirm', backupId, '--fole-version', '2.3.1'], 'PERMISSION_DENIED', {
      env: { FOLE_BACKUP_PASSWORD: 'not the password' },
    });
  });

  it('AMBIGUOUS_INTENT: "latest" without --confirm, naming the id to confirm', async () => {
    const stop = await expectCliStop(['latest', '--fole-version', '2.3.1'], 'AMBIGUOUS_INTENT');
    const id = /"latest" is backup ([0-9a-f-]{36})/.exec(stop.message)?.[1];
    expect(id).toBeDefined();
    expect(stop.hint).toContain(`--confirm ${id}`);
  });

  it('UNCLEAR_RESTORE_TARGET: a non-empty directory that is not a STORAGE_ROOT', async () => {
    const photos = join(work, 'photos');
    mkdirSync(photos);
    writeFileSync(join(photos, 'cat.jpg'), 'meow');
    await expectCliStop([backupId, '--confirm', backupId, '--fole-version', '2.3.1'], 'UNCLEAR_RESTORE_TARGET', {
      target: photos,
    });
  });

  it('UNCLEAR_RESTORE_TARGET: a directory that merely contains projects/ (or core/) without core/core.db', async () => {
    for (const top of ['projects', 'core']) {
      const dir = join(work, `only-${top}`);
      mkdirSync(join(dir, top, 'p1'), { recursive: true });
      writeFileSync(join(dir, top, 'p1', 'notes.txt'), 'mine');
      const stop = await expectCliStop(
        [backupId, '--confirm', backupId, '--fole-version', '2.3.1'],
        'UNCLEAR_RESTORE_TARGET',
        { target: dir },
      );
      expect(stop.message).toMatch(/not a FOLE STORAGE_ROOT.*core\/core\.db is missing/);
      expect(stop.hint).toMatch(/core\/core\.db/);
    }
  });

  it(
    'UNCLEAR_RESTORE_TARGET: a STORAGE_ROOT whose core/ or core/core.db is a symlink; what it points to is ' +
      'never opened',
    async () => {
      for (const linked of ['core', 'core/core.db']) {
        const site = join(work, `linked-${linked.replace('/', '-')}`);
        const dir = join(site, 'fole');
        cpSync(live, dir, { recursive: true });
        const outside = join(site, 'outside');
        mkdirSync(outside);
        const moved = join(outside, linked === 'core' ? 'core' : 'core.db');
        cpSync(join(dir, linked), moved, { recursive: true });
        rmSync(join(dir, linked), { recursive: true });
        symlinkSync(moved, join(dir, linked));
        const outsideDb = linked === 'core' ? join(moved, 'core.db') : moved;
        const before = treeHash(outside);
        const stop = await expectCliStop(
          [backupId, '--confirm', backupId, '--fole-version', '2.3.1'],
          'UNCLEAR_RESTORE_TARGET',
          { target: dir },
        );
        expect(stop.message).toMatch(/symlink/);
        expect(treeHash(outside)).toBe(before);
        expect(existsSync(`${outsideDb}-wal`)).toBe(false);
      }
    },
  );

  it(
    'UNCLEAR_RESTORE_TARGET: a STORAGE_ROOT whose core/core.db is not a SQLite database, before anything is ' +
      'touched',
    async () => {
      for (const [name, content] of [
        ['text', 'hello\n'],
        ['empty', ''],
        ['truncated', null],
      ] as const) {
        const dir = join(work, `core-${name}`, 'fole');
        cpSync(live, dir, { recursive: true });
        const coreDb = join(dir, 'core', 'core.db');
        for (const s of ['-wal', '-shm']) rmSync(coreDb + s, { force: true });
        if (content === null) writeFileSync(coreDb, readFileSync(coreDb).subarray(0, 5000));
        else writeFileSync(coreDb, content);
        const stop = await expectCliStop(
          [backupId, '--confirm', backupId, '--fole-version', '2.3.1'],
          'UNCLEAR_RESTORE_TARGET',
          { target: dir },
        );
        expect(stop.message).toMatch(/core\/core\.db is not a sound SQLite database/);
        expect(stop.hint).toMatch(/core\/core\.db/);
      }
    },
  );

  it(
    "DB_INTEGRITY_ERROR (not a read error) when the target's core/core.db is damaged in its first pages; the " +
      'target is left as it was',
    async () => {
      const dir = join(work, 'core-damaged', 'fole');
      cpSync(live, dir, { recursive: true });
      const coreDb = join(dir, 'core', 'core.db');
      for (const s of ['-wal', '-shm']) rmSync(coreDb + s, { force: true });
      const bytes = readFileSync(coreDb);
      // the header stays, the schema page behind it is garbage
      bytes.fill(0x5a, 100, Math.min(bytes.length, 8192));
      writeFileSync(coreDb, bytes);
      // taking the lock opens core.db, whose -wal/-shm come and go: core/'s mtime is all that may change
      const before = snapshotOf(dir, ['core']);
      const err = await restore(repo, backupId, confirmed({ target: dir })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({
        name: 'StopError',
        code: 'DB_INTEGRITY_ERROR',
        path: 'core/core.db',
        hint: expect.stringContaining('core/core.db'),
      });
      expect(snapshotOf(dir, ['core'])).toEqual(before);
      expect(readFileSync(coreDb).equals(bytes)).toBe(true);
    },
  );

  it('VERSION_MISMATCH: a target of another major FOLE version (from FOLE_VERSION)', async () => {
    await expectCliStop([backupId, '--confirm', backupId], 'VERSION_MISMATCH', { env: { FOLE_VERSION: '3.0.0' } });
  });

  it('MODULE_SET_MISMATCH: --modules without a module the backup has', async () => {
    const stop = await expectCliStop(
      [backupId, '--confirm', backupId, '--fole-version', '2.3.1', '--modules', 'maps,print'],
      'MODULE_SET_MISMATCH',
    );
    expect(stop.message).toContain('sketch');
  });
});

describe('restore STOPs through the library', () => {
  it('MISSING_MANIFEST: the snapshot object is damaged', async () => {
    const copy = join(work, 'repo-snap');
    cpSync(repoDir, copy, { recursive: true });
    flipBit(join(copy, 'snapshots', backupId), 40, 0);
    const r = await Repository.open(new LocalBackend(copy), TEST_PASSWORD);
    await expectLibStop(r, backupId, confirmed(), 'MISSING_MANIFEST', /unreadable/);
    await r.close();
  });

  it('CHECKSUM_MISMATCH: a bit flipped at any offset of any blob in any pack is caught', async () => {
    const r = await Repository.open(new LocalBackend(flipRepoDir), TEST_PASSWORD);
    const all = packs(flipRepoDir);
    await fc.assert(
      fc.asyncProperty(
        fc.nat(all.length - 1),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.nat(7),
        async (p, where, bit) => {
          const pack = all[p] as (typeof all)[number];
          const offset = Math.floor(where * pack.blobBytes);
          flipBit(pack.file, offset, bit);
          try {
            await expectLibStop(r, backupId, confirmed(), 'CHECKSUM_MISMATCH');
          } finally {
            flipBit(pack.file, offset, bit);
          }
        },
      ),
      { numRuns: 12 },
    );
    await r.close();
  });

  it('CHECKSUM_MISMATCH: a file whose content disagrees with its SHA-256', async () => {
    // several chunks, each fine on its own: only the whole file's hash can tell
    const id = await forgeBackup(repo, backupId, (entries) =>
      entries.map((e) => (e.path === 'projects/p1/files/big.bin' ? { ...e, sha256: 'f'.repeat(64) } : e)),
    );
    await expectLibStop(
      repo,
      id,
      confirmed({ confirm: id }),
      'CHECKSUM_MISMATCH',
      /big\.bin: SHA-256 of the restored content/,
    );
  });

  it(
    'CHECKSUM_MISMATCH: a blob whose plaintext is not what its id says, ' + 'in a one-chunk file and in a longer file',
    async () => {
      // stored (and sealed, so the AEAD tag is fine) under the id of other bytes of the same length
      const cs = repo.config.fileChunkSize;
      const meant = Buffer.alloc(cs, 7);
      const liar = Buffer.alloc(cs, 8);
      const liarId = sha256Hex(meant);
      const [first, second] = [Buffer.alloc(cs, 1), Buffer.alloc(cs, 2)];
      await repo.saveBlob('data', liarId, liar);
      const good = await storeContent(repo, Buffer.concat([first, second]), cs);
      const at = (entries: TreeEntry[]): number => entries.findIndex((e) => e.path === 'projects/p1/files/big.bin');
      const entry = (path: string, content: Pick<TreeEntry, 'size' | 'sha256' | 'chunks'>): TreeEntry => ({
        path,
        kind: 'file',
        mode: 0o644,
        mtimeMs: 1,
        ...content,
      });
      // a one-chunk file: its hash is its chunk's id, so the chunk's own check is what refuses it
      const one = await forgeBackup(repo, backupId, (entries) => [
        ...entries.slice(0, at(entries)),
        entry('projects/p1/files/a-one.bin', { size: cs, sha256: liarId, chunks: [liarId] }),
        ...entries.slice(at(entries)),
      ]);
      await expectLibStop(
        repo,
        one,
        confirmed({ confirm: one }),
        'CHECKSUM_MISMATCH',
        /content does not match its SHA-256/,
      );
      // a longer file (its chunk not hashed alone): the whole file's hash refuses it
      const longer = await forgeBackup(repo, backupId, (entries) => [
        ...entries.slice(0, at(entries)),
        entry('projects/p1/files/a-longer.bin', {
          size: 3 * cs,
          sha256: sha256Hex(Buffer.concat([first, meant, second])),
          chunks: [good.chunks?.[0] as string, liarId, good.chunks?.[1] as string],
        }),
        ...entries.slice(at(entries)),
      ]);
      await expectLibStop(
        repo,
        longer,
        confirmed({ confirm: longer }),
        'CHECKSUM_MISMATCH',
        /a-longer\.bin: SHA-256 of the restored content/,
      );
    },
  );

  it(
    'CHECKSUM_MISMATCH before DB_INTEGRITY_ERROR: a corrupt database is reported only after every file was ' +
      'staged and verified',
    async () => {
      // the database's check runs while later files are still being written; its failure waits for them
      const id = await forgeBackup(repo, badDbId, async (entries) => {
        const content = await storeContent(
          repo,
          Buffer.alloc(repo.config.fileChunkSize + 100, 3),
          repo.config.fileChunkSize,
        );
        const late: TreeEntry = {
          path: 'projects/p2/later.bin',
          kind: 'file',
          mode: 0o644,
          mtimeMs: 1,
          ...content,
          sha256: 'e'.repeat(64),
        };
        const at = entries.findIndex((e) => e.path === 'projects/p2/project.json');
        return [...entries.slice(0, at), late, ...entries.slice(at)];
      });
      await expectLibStop(
        repo,
        id,
        confirmed({ confirm: id }),
        'CHECKSUM_MISMATCH',
        /later\.bin: SHA-256 of the restored content/,
      );
      // and without that file, the database is what stops it
      await expectLibStop(
        repo,
        badDbId,
        confirmed({ confirm: badDbId }),
        'DB_INTEGRITY_ERROR',
        /projects\/p1\/project\.db/,
      );
    },
  );

  it('CHECKSUM_MISMATCH: a -wal file beside a database in the backup', async () => {
    const id = await forgeBackup(repo, backupId, async (entries) => {
      const wal = await storeContent(repo, Buffer.from('not a real wal'), repo.config.fileChunkSize);
      const at = entries.findIndex((e) => e.path === 'projects/p1/project.db');
      const walEntry: TreeEntry = { path: 'projects/p1/project.db-wal', kind: 'file', mode: 0o644, mtimeMs: 1, ...wal };
      return [...entries.slice(0, at + 1), walEntry, ...entries.slice(at + 1)];
    });
    await expectLibStop(repo, id, confirmed({ confirm: id }), 'CHECKSUM_MISMATCH', /side files beside this database/);
  });

  it('CHECKSUM_MISMATCH: an entry whose parent directory is not in the backup', async () => {
    const id = await forgeBackup(repo, backupId, (entries) => entries.filter((e) => e.path !== 'templates'));
    await expectLibStop(repo, id, confirmed({ confirm: id }), 'CHECKSUM_MISMATCH', /templates\/server-defaults\.json/);
  });

  it(
    'UNCLEAR_RESTORE_TARGET: a file, /, a missing parent, ' + 'a symlink, the repository, inside it, around it',
    async () => {
      const file = join(work, 'a-file');
      writeFileSync(file, 'x');
      await expectLibStop(repo, backupId, confirmed({ target: file }), 'UNCLEAR_RESTORE_TARGET', /is a file/);
      await expectLibStop(repo, backupId, confirmed({ target: '/' }), 'UNCLEAR_RESTORE_TARGET', /is \/$/);
      await expectLibStop(
        repo,
        backupId,
        confirmed({ target: join(work, 'no', 'such', 'dir') }),
        'UNCLEAR_RESTORE_TARGET',
        /parent directory does not exist/,
      );
      const link = join(work, 'link-to-live');
      symlinkSync(live, link);
      await expectLibStop(repo, backupId, confirmed({ target: link }), 'UNCLEAR_RESTORE_TARGET', /symlink/);
      await expectLibStop(
        repo,
        backupId,
        confirmed({ target: repoDir }),
        'UNCLEAR_RESTORE_TARGET',
        /the repository itself/,
      );
      await expectLibStop(
        repo,
        backupId,
        confirmed({ target: join(repoDir, 'restored') }),
        'UNCLEAR_RESTORE_TARGET',
        /inside the repository/,
      );
      // a STORAGE_ROOT-looking directory that holds the repository
      const holder = join(work, 'holder');
      mkdirSync(join(holder, 'projects'), { recursive: true });
      const inner = await Repository.init(new LocalBackend(join(holder, 'repo')), TEST_PASSWORD, { kdf: FAST_KDF });
      const id = (await backup(inner, { storageRoot: live, foleVersion: '2.3.1' })).backupId;
      await expectLibStop(
        inner,
        id,
        { target: holder, confirm: id, foleVersion: '2.3.1' },
        'UNCLEAR_RESTORE_TARGET',
        /contains the repository/,
      );
      await inner.close();
    },
  );

  it('VERSION_MISMATCH: a backup newer than the target, and an unknown target version', async () => {
    await expectLibStop(repo, backupId, confirmed({ foleVersion: '2.3.0' }), 'VERSION_MISMATCH', /newer/);
    await expectLibStop(repo, backupId, confirmed({ foleVersion: undefined }), 'VERSION_MISMATCH', /unknown/);
    await expectLibStop(
      repo,
      backupId,
      confirmed({ target: join(work, 'fresh'), foleVersion: undefined }),
      'VERSION_MISMATCH',
      /unknown/,
    );
  });

  it("MODULE_SET_MISMATCH: the target tree's modules/ lacks one", async () => {
    const other = join(work, 'other-root');
    mkdirSync(join(other, 'modules', 'maps'), { recursive: true });
    mkdirSync(join(other, 'projects'));
    // a FOLE STORAGE_ROOT: only one with core/core.db is replaced in place
    createDatabase(join(other, 'core', 'core.db'), 1);
    await expectLibStop(repo, backupId, confirmed({ target: other }), 'MODULE_SET_MISMATCH', /sketch/);
  });

  it('AMBIGUOUS_INTENT: --confirm with a prefix of the id', async () => {
    await expectLibStop(
      repo,
      backupId.slice(0, 8),
      confirmed({ confirm: backupId.slice(0, 8) }),
      'AMBIGUOUS_INTENT',
      new RegExp(backupId),
    );
  });

  it('fails (not a STOP) when FOLE holds the Global Storage Lock, after staging, and removes staging', async () => {
    const held = await acquireStorageLock({ storageRoot: live, owner: 'fole-server:test' });
    try {
      // reading the lock opens core.db, whose -wal/-shm come and go: core/'s mtime is all that may change
      const before = snapshotOf(live, ['core']);
      await expect(restore(repo, backupId, confirmed())).rejects.toMatchObject({ code: 'STORAGE_LOCKED' });
      expect(snapshotOf(live, ['core'])).toEqual(before);
    } finally {
      await held.release();
    }
  });
});
