/**
 * Hostile or damaged backups (docs/SECURITY.md: a damaged or forged backup is
 * refused, never guessed at): correctly encrypted backups whose tree or manifest names `../x`,
 * an absolute path, a path through a file or a symlink, a duplicate, a device
 * or FIFO, or a size that disagrees with its chunks. Reading them is refused
 * with a typed STOP naming the path, before any entry reaches a caller that
 * could write it. (What restore does with them: test/hostile-restore.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StopError } from '../src/errors.js';
import type { Repository } from '../src/repository/repository.js';
import { writeWindow } from '../src/restore/write-files.js';
import type { TreeEntry } from '../src/snapshot/snapshot.js';
import { loadSnapshot } from '../src/snapshot/store.js';
import { readTree, readTreeBatches } from '../src/snapshot/tree.js';
import {
  dirEntry,
  fileEntry,
  forgeBackup,
  FORGED_MTIME_MS,
  hostileTrees,
  storeContent,
  type ForgedLine,
} from './fixtures/forge-backup.js';
import { makeRepo } from './repo-helpers.js';

/** `xs` cut into pieces of `n`. */
function chunksOf<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

async function readAll(repo: Repository, backupId: string): Promise<TreeEntry[]> {
  const snap = await loadSnapshot(repo, backupId);
  const out: TreeEntry[] = [];
  for await (const e of readTree(repo, snap.tree)) out.push(e);
  return out;
}

async function refusal(p: Promise<unknown>): Promise<StopError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof StopError))
    throw new Error(`expected a StopError, got ${err === undefined ? 'success' : String(err)}`, { cause: err });
  return err;
}

describe('a forged backup', () => {
  it('reads back exactly as forged when it is valid (the fixture itself is sound)', async () => {
    const repo = await makeRepo();
    const id = await forgeBackup(repo, {
      entries: [dirEntry('core'), fileEntry('core/a.json'), fileEntry('core/empty'), dirEntry('projects')],
      contents: { 'core/a.json': '{"a":1}', 'core/empty': '' },
    });
    const entries = await readAll(repo, id);
    expect(entries.map((e) => [e.path, e.kind, e.size])).toEqual([
      ['core', 'dir', undefined],
      ['core/a.json', 'file', 7],
      ['core/empty', 'file', 0],
      ['projects', 'dir', undefined],
    ]);
    const work = mkdtempSync(join(tmpdir(), 'fole-forge-'));
    try {
      mkdirSync(join(work, 'core'));
      await writeWindow(repo, work, [entries[1] as TreeEntry], { applyMetadata: () => true });
      expect(readFileSync(join(work, 'core', 'a.json'), 'utf8')).toBe('{"a":1}');
      expect(statSync(join(work, 'core', 'a.json')).mtimeMs).toBe(FORGED_MTIME_MS);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

describe('reading a hostile tree', () => {
  it.each(hostileTrees('/var/tmp/fole-forged-absolute').map((c) => [c.name, c] as const))(
    'refuses %s with CHECKSUM_MISMATCH naming the path',
    async (_name, c) => {
      const repo = await makeRepo();
      const id = await forgeBackup(repo, { entries: c.entries, contents: c.contents });
      const err = await refusal(readAll(repo, id));
      expect(err.code).toBe('CHECKSUM_MISMATCH');
      expect(err.message).toContain(c.why);
      if (c.path !== undefined) expect(err.path).toBe(c.path);
    },
  );

  it('hands out no entry after the refused one, and only valid ones before it', async () => {
    const repo = await makeRepo();
    const id = await forgeBackup(repo, {
      entries: [dirEntry('a'), fileEntry('a/ok'), fileEntry('a/ok/../../x'), fileEntry('b')],
      contents: { 'a/ok': 'fine', 'a/ok/../../x': 'pwned', b: 'never' },
    });
    const seen: string[] = [];
    const snap = await loadSnapshot(repo, id);
    const err = await refusal(
      (async () => {
        for await (const e of readTree(repo, snap.tree)) seen.push(e.path);
      })(),
    );
    expect(err.code).toBe('CHECKSUM_MISMATCH');
    expect(seen).toEqual(['a', 'a/ok']);
  });

  it('refuses a tree split over several blobs at the bad line, wherever the cut falls', async () => {
    const entries: ForgedLine[] = [dirEntry('a'), dirEntry('b'), dirEntry('c'), dirEntry('b')];
    for (const per of [1, 2, 3]) {
      const repo = await makeRepo();
      const id = await forgeBackup(repo, { entries, linesPerTreeBlob: per });
      expect((await refusal(readAll(repo, id))).message).toContain('"b" is out of order');
    }
  });

  it("a backup's parent, read blob by blob, refuses the same trees and hands out no part of a bad blob", async () => {
    const entries: ForgedLine[] = [dirEntry('a'), dirEntry('b'), dirEntry('c'), dirEntry('b'), dirEntry('d')];
    for (const per of [1, 2, 3]) {
      const repo = await makeRepo();
      const id = await forgeBackup(repo, { entries, linesPerTreeBlob: per });
      const seen: string[][] = [];
      const err = await refusal(
        (async () => {
          for await (const batch of readTreeBatches(repo, (await loadSnapshot(repo, id)).tree))
            seen.push(batch.map((e) => e.path));
        })(),
      );
      expect(err.message).toContain('"b" is out of order');
      // the blobs before the one that holds the second b, whole; nothing of that blob or after it
      const before = Math.floor(3 / per);
      expect(seen).toEqual(chunksOf(['a', 'b', 'c'].slice(0, before * per), per));
    }
  });

  it('refuses a chunk that holds more bytes than the entry says, before reading any content', async () => {
    const repo = await makeRepo();
    const stored = await storeContent(repo, Buffer.from('0123456789'), repo.config.fileChunkSize);
    // size 4 with one chunk passes the count rule; the index knows the chunk holds 10
    const id = await forgeBackup(repo, { entries: [fileEntry('f', { ...stored, size: 4 })] });
    const err = await refusal(readAll(repo, id));
    expect(err.message).toContain('chunk 0 holds 10 bytes, its place needs 4');
  });

  it('refuses a tree blob the snapshot lists twice (every entry would be a duplicate)', async () => {
    const repo = await makeRepo();
    const id = await forgeBackup(repo, { entries: [dirEntry('a')] });
    const snap = await loadSnapshot(repo, id);
    const err = await refusal(
      (async () => {
        for await (const e of readTree(repo, [...snap.tree, ...snap.tree])) void e;
      })(),
    );
    expect(err.message).toContain('duplicate path "a"');
  });

  it('clears setuid and setgid from files rather than refusing the backup', async () => {
    const repo = await makeRepo();
    const id = await forgeBackup(repo, {
      entries: [dirEntry('shared', { mode: 0o2775 }), fileEntry('shared/tool', { mode: 0o6755 })],
      contents: { 'shared/tool': '#!/bin/sh\n' },
    });
    const entries = await readAll(repo, id);
    expect(entries.map((e) => e.mode)).toEqual([0o2775, 0o755]);
  });
});

describe('reading a hostile manifest', () => {
  const cases: [string, (m: Record<string, unknown>) => Record<string, unknown>, string][] = [
    ['a module named ../x', () => ({ modules: ['../x'] }), 'module name "../x"'],
    [
      'a map database outside its project',
      () => ({
        projects: [
          {
            projectId: 'p1',
            projectDb: null,
            mapDbs: [],
            maps: [{ mapId: 'm1', path: '../../x/map.db', sha256: `sha256:${'a'.repeat(64)}` }],
          },
        ],
      }),
      'map path "../../x/map.db"',
    ],
    [
      'an absolute template path',
      () => ({ core: { coreDb: null, templates: { '/etc/cron.d/x': `sha256:${'a'.repeat(64)}` } } }),
      'template path "/etc/cron.d/x"',
    ],
    [
      'a project id that climbs',
      () => ({ projects: [{ projectId: '..', projectDb: null, mapDbs: [], maps: [] }] }),
      'project id ".."',
    ],
  ];
  it.each(cases)('refuses %s with MISSING_MANIFEST', async (_name, change, why) => {
    const repo = await makeRepo();
    const id = await forgeBackup(repo, { entries: [dirEntry('core')], manifest: change({}) });
    const err = await refusal(loadSnapshot(repo, id));
    expect(err.code).toBe('MISSING_MANIFEST');
    expect(err.message).toContain(why);
  });

  it('refuses an absolute database path and a snapshot that is not an object', async () => {
    const repo = await makeRepo();
    const abs = await forgeBackup(repo, {
      entries: [dirEntry('core')],
      snapshot: {
        databases: [
          {
            path: '/srv/fole/storage/core/core.db',
            sha256: 'a'.repeat(64),
            size: 4096,
            pageSize: 4096,
            pageCount: 1,
            userVersion: 0,
            journalMode: 'wal',
            integrity: 'ok',
          },
        ],
      },
    });
    expect((await refusal(loadSnapshot(repo, abs))).message).toContain(
      'database path "/srv/fole/storage/core/core.db" (absolute path)',
    );
    const raw = await forgeBackup(repo, { entries: [dirEntry('core')], rawSnapshot: () => ['not', 'a', 'snapshot'] });
    expect((await refusal(loadSnapshot(repo, raw))).code).toBe('MISSING_MANIFEST');
  });
});
