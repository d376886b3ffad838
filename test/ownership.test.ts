/**
 * Owners and permission bits survive a backup and a restore: of every file,
 * database and directory, and of the STORAGE_ROOT itself. Run as root, the
 * restore gives each its recorded uid, gid and mode, into an empty target and in
 * place; run as another user (the real CLI, as uid 1234), it restores the modes
 * and says once that it could not restore the owners — unless they already are
 * that user's. A backup without owners (made before they were recorded) restores
 * as it always did.
 */
import { chmodSync, chownSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup } from '../src/backup/backup.js';
import type { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restore/restore.js';
import type { TreeEntry } from '../src/snapshot/snapshot.js';
import { loadSnapshot, saveSnapshot } from '../src/snapshot/store.js';
import { runCli } from './cli-helpers.js';
import { TEST_PASSWORD, makeLocalRepo } from './repo-helpers.js';
import { forgeBackup, makeFoleTree, treeOf, type FoleTree } from './restore-helpers.js';
import { canRun } from './needs.js';

const require = createRequire(import.meta.url);
const AS_ROOT = canRun(process.getuid?.() === 0, 'root (chown)');
/** The FOLE service user of these tests: not root, not the test runner. */
const FOLE = { uid: 1234, gid: 1234 };

/** Owner and permission bits of a path, as a restore must reproduce them. */
function ownerOf(p: string): { uid: number; gid: number; mode: string } {
  const st = lstatSync(p);
  return { uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8) };
}

/** Every path of `root` and its owner, the root itself as ''. */
function owners(root: string, paths: readonly string[]): Record<string, ReturnType<typeof ownerOf>> {
  const out: Record<string, ReturnType<typeof ownerOf>> = { '': ownerOf(root) };
  for (const p of paths) out[p] = ownerOf(join(root, p));
  return out;
}

/** Give every path under `root` (and root) to the FOLE user, symlinks not followed. */
function chownTree(root: string, owner: { uid: number; gid: number }): void {
  lchownSync(root, owner.uid, owner.gid);
  for (const name of readdirSync(root)) {
    const p = join(root, name);
    lchownSync(p, owner.uid, owner.gid);
    if (lstatSync(p).isDirectory()) chownTree(p, owner);
  }
}

let work: string;
let source: FoleTree;
let repo: Repository;
let backupId: string;
let entries: TreeEntry[];
let sourceOwners: Record<string, ReturnType<typeof ownerOf>>;

beforeAll(async () => {
  if (!AS_ROOT) return;
  work = mkdtempSync(join(tmpdir(), 'fole-ids-'));
  chmodSync(work, 0o755);
  source = makeFoleTree(join(work, 'site', 'storage'));
  const root = source.root;
  // FOLE's tree: its user's, with a few others and a few modes
  chownTree(root, FOLE);
  chmodSync(root, 0o750);
  chmodSync(join(root, 'core'), 0o750);
  chmodSync(join(root, 'core', 'core.db'), 0o600);
  chmodSync(join(root, 'projects', 'p1', 'project.db'), 0o640);
  chmodSync(join(root, 'projects'), 0o2750);
  chownSync(join(root, 'config', 'server.json'), FOLE.uid, 5678);
  chownSync(join(root, 'templates', 'server-defaults.json'), 0, 0);
  chownSync(join(root, 'modules', 'maps', 'module.db'), 4321, FOLE.gid);
  repo = await makeLocalRepo(join(work, 'repo'));
  backupId = (await backup(repo, { storageRoot: root, foleVersion: '2.3.1' })).backupId;
  entries = await treeOf(repo, backupId);
  sourceOwners = owners(
    root,
    entries.map((e) => e.path),
  );
});

afterAll(async () => {
  if (!AS_ROOT) return;
  source.core.db.close();
  await repo.close();
  rmSync(work, { recursive: true, force: true });
});

const opts = (target: string, id = backupId) => ({ target, confirm: id, foleVersion: '2.3.1' });

describe.skipIf(!AS_ROOT)('owners and modes, restored as root', () => {
  it('records the owner and mode of every entry and of the root', async () => {
    const byPath = new Map(entries.map((e) => [e.path, e]));
    for (const [path, o] of Object.entries(sourceOwners)) {
      if (path === '') continue;
      const e = byPath.get(path) as TreeEntry;
      expect({ uid: e.uid, gid: e.gid, mode: e.mode.toString(8) }, path).toEqual(o);
    }
    const snap = await loadSnapshot(repo, backupId);
    expect(snap.root).toEqual({ uid: FOLE.uid, gid: FOLE.gid, mode: 0o750 });
  });

  it('gives every file, database and directory, and the root, its owner and mode in an empty target', async () => {
    const target = join(work, 'drill', 'fole');
    mkdirSync(join(work, 'drill'));
    let stagingMode: number | undefined;
    const r = await restore(repo, backupId, {
      ...opts(target),
      reporter: {
        phase: (name) => {
          if (name !== 'check databases') return;
          const staging = readdirSync(join(work, 'drill')).find(
            (n) => n.startsWith('.fole-backup-restore-') && !n.includes('journal'),
          );
          stagingMode = lstatSync(join(work, 'drill', staging as string)).mode & 0o7777;
        },
        progress: () => undefined,
        warn: () => undefined,
      },
    });
    expect(r.warnings).toEqual([]);
    expect(
      owners(
        target,
        entries.map((e) => e.path),
      ),
    ).toEqual(sourceOwners);
    // staging is never more open than the tree it becomes
    expect(stagingMode).toBeDefined();
    expect((stagingMode as number) & ~0o750).toBe(0);
  });

  it('gives them back in place, over a root-owned STORAGE_ROOT, and keeps the previous tree as it was', async () => {
    const live = makeFoleTree(join(work, 'live', 'storage'));
    live.core.db.close();
    chmodSync(live.root, 0o711);
    const before = ownerOf(live.root);
    const r = await restore(repo, backupId, opts(live.root));
    expect(r.mode).toBe('replace');
    expect(r.warnings.filter((w) => /not running as root/.test(w))).toEqual([]);
    expect(
      owners(
        live.root,
        entries.map((e) => e.path),
      ),
    ).toEqual(sourceOwners);
    expect(ownerOf(r.previousTree as string)).toEqual(before);
    // what FOLE failed at when everything came back root's: its user writes its databases
    const write = spawnSync(
      process.execPath,
      [
        '-e',
        `
      const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
      const db = new Database(process.argv[1], { fileMustExist: true });
      db.exec('CREATE TABLE written_by_fole (x)');
      db.close();`,
        join(live.root, 'core', 'core.db'),
      ],
      { ...FOLE, encoding: 'utf8' },
    );
    expect(write.status, write.stderr).toBe(0);
  });

  it('restores a backup that recorded no owners as before: owned by the restoring user, the root private', async () => {
    const oldId = await forgeBackup(repo, backupId, (es) => es.map(({ uid: _u, gid: _g, ...e }) => e));
    const snap = await loadSnapshot(repo, oldId);
    delete snap.root;
    await saveSnapshot(repo, snap);
    const target = join(work, 'old', 'fole');
    mkdirSync(join(work, 'old'));
    const r = await restore(repo, oldId, opts(target, oldId));
    expect(r.warnings).toEqual([]);
    const got = owners(
      target,
      entries.map((e) => e.path),
    );
    expect(got['']).toEqual({ uid: 0, gid: 0, mode: '700' });
    for (const e of entries) expect(got[e.path], e.path).toEqual({ uid: 0, gid: 0, mode: e.mode.toString(8) });
  });
});

describe.skipIf(!AS_ROOT)('owners and modes, restored by another user', () => {
  /** Run the CLI as the FOLE user over a copy of the repository it may read. */
  async function restoreAsFole(
    id: string,
    name: string,
  ): Promise<{ code: number | null; result: { warnings: string[] }; target: string; stderr: string }> {
    const repoDir = join(work, 'repo');
    chownTree(repoDir, FOLE);
    const parent = join(work, name);
    mkdirSync(parent);
    chownSync(parent, FOLE.uid, FOLE.gid);
    const target = join(parent, 'fole');
    const r = await runCli(
      ['restore', id, '--repo', repoDir, '--target', target, '--confirm', id, '--fole-version', '2.3.1', '--json'],
      { FOLE_BACKUP_PASSWORD: TEST_PASSWORD, HOME: parent },
      FOLE,
    );
    return {
      code: r.code,
      result: (r.code === 0 ? JSON.parse(r.stdout) : { warnings: [] }) as { warnings: string[] },
      target,
      stderr: r.stderr,
    };
  }

  it('restores the modes and warns once that the owners could not be restored', async () => {
    const r = await restoreAsFole(backupId, 'as-user');
    expect(r.code, r.stderr).toBe(0);
    const notRoot = r.result.warnings.filter((w) => /not running as root/.test(w));
    expect(notRoot).toHaveLength(1);
    expect(notRoot[0]).toMatch(/not running as root/);
    const got = owners(
      r.target,
      entries.map((e) => e.path),
    );
    for (const [path, o] of Object.entries(sourceOwners))
      expect(got[path], path).toEqual({ ...o, uid: FOLE.uid, gid: FOLE.gid });
  });

  it('says nothing about owners when every recorded owner is already the restoring user', async () => {
    chownTree(source.root, FOLE);
    const again = await backup(repo, { storageRoot: source.root, foleVersion: '2.3.1' });
    const r = await restoreAsFole(again.backupId, 'as-owner');
    expect(r.code, r.stderr).toBe(0);
    expect(r.result.warnings.filter((w) => /not running as root/.test(w))).toEqual([]);
    expect(ownerOf(r.target)).toEqual({ uid: FOLE.uid, gid: FOLE.gid, mode: '750' });
  });
});

describe('set-ID bits', () => {
  it('are reported by the backup that meets them, since a restore never sets them', async () => {
    const work = mkdtempSync(join(tmpdir(), 'fole-setid-'));
    try {
      const tree = makeFoleTree(join(work, 'storage'));
      const file = join(tree.root, 'projects', 'p1', 'files', 'tool');
      mkdirSync(join(tree.root, 'projects', 'p1', 'files'), { recursive: true });
      spawnSync('sh', ['-c', `printf x > '${file}'`]);
      chmodSync(file, 0o4755);
      const repo = await makeLocalRepo(join(work, 'repo'));
      const r = await backup(repo, { storageRoot: tree.root, foleVersion: '1.0.0' });
      await repo.close();
      expect(r.warnings).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/"projects\/p1\/files\/tool" has the set-user-ID bit: a restore never sets it/),
        ]),
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
