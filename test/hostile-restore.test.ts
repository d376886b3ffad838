/**
 * Restoring a hostile or damaged backup (docs/SECURITY.md): every forged tree of
 * hostileTrees() is refused with a STOP, and nothing is written outside the
 * restore's own staging — the target, its parent and everything around them
 * are byte-for-byte what they were (staging and journal gone), no `../x` lands
 * beside the target and no absolute path is written. A setuid bit in a backup
 * is restored without it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { StopError } from '../src/errors.js';
import type { Repository } from '../src/repository/repository.js';
import { restore } from '../src/restore/restore.js';
import {
  dirEntry,
  fileEntry,
  forgeBackup,
  FORGED_FOLE_VERSION,
  hostileTrees,
  type ForgedLine,
} from './fixtures/forge-backup.js';
import { makeRepo } from './repo-helpers.js';

let work: string;
let parent: string;
let target: string;
let absDir: string;

const OLD_TIME = new Date('2023-03-04T05:06:07Z');

/** A small live STORAGE_ROOT with a real core.db (rollback journal, so nothing beside it changes by itself). */
function makeLiveRoot(root: string): void {
  mkdirSync(join(root, 'core'), { recursive: true });
  const db = new Database(join(root, 'core', 'core.db'));
  db.pragma('journal_mode = DELETE');
  db.exec("CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT); INSERT INTO users VALUES ('u1', 'ada@example.com')");
  db.close();
  mkdirSync(join(root, 'projects', 'p1'), { recursive: true });
  writeFileSync(join(root, 'projects', 'p1', 'project.json'), '{"id":"p1"}');
  mkdirSync(join(root, 'config'));
  writeFileSync(join(root, 'config', 'server.json'), '{"port":8080}', { mode: 0o640 });
  for (const p of [
    'core/core.db',
    'projects/p1/project.json',
    'config/server.json',
    'projects/p1',
    'projects',
    'core',
    'config',
    '',
  ]) {
    utimesSync(join(root, p), OLD_TIME, OLD_TIME);
  }
}

/**
 * Everything under `dir`: type, mode, size, content hash, link target; mtimes
 * of everything inside `strictUnder` (the target, which a refused restore must
 * not touch at all). Directories above it may get a new mtime when staging is
 * made and removed beside the target, but not a new entry.
 */
function fingerprint(dir: string, strictUnder: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string): void => {
    const st = lstatSync(p);
    const rel = relative(dir, p) || '.';
    const strict = p === strictUnder || p.startsWith(`${strictUnder}/`);
    const time = strict ? ` mtime=${st.mtimeMs}` : '';
    if (st.isDirectory()) {
      out[rel] = `dir mode=${(st.mode & 0o7777).toString(8)}${time}`;
      for (const n of readdirSync(p).sort()) walk(join(p, n));
    } else if (st.isFile()) {
      const sha = createHash('sha256').update(readFileSync(p)).digest('hex');
      out[rel] = `file mode=${(st.mode & 0o7777).toString(8)} size=${st.size} sha256=${sha}${time}`;
    } else if (st.isSymbolicLink()) out[rel] = `symlink -> ${readlinkSync(p)}`;
    else out[rel] = 'other';
  };
  walk(dir);
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

/** Valid entries that sort before every hostile one: restore has written into staging before it meets the bad line. */
const PREFIX: ForgedLine[] = [dirEntry('!first'), fileEntry('!first/a.txt'), fileEntry('!first/b.txt')];
const PREFIX_CONTENTS = { '!first/a.txt': 'staged before the bad entry', '!first/b.txt': 'x'.repeat(5000) };

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-hostile-restore-'));
  parent = join(work, 'srv');
  target = join(parent, 'storage');
  absDir = join(work, 'absolute-escape');
  makeLiveRoot(target);
  writeFileSync(join(parent, 'neighbour.txt'), 'beside the target');
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

async function expectRefusedUntouched(
  repo: Repository,
  id: string,
  code: StopError['code'],
  why?: string,
  into = target,
): Promise<void> {
  const before = fingerprint(work, into);
  const err = await refusal(restore(repo, id, { target: into, confirm: id, foleVersion: FORGED_FOLE_VERSION }));
  expect(err.code).toBe(code);
  if (why !== undefined) expect(err.message).toContain(why);
  expect(fingerprint(work, into)).toEqual(before);
  // the places a traversal or an absolute path would have written to
  for (const p of [join(parent, 'x'), join(parent, 'y'), join(work, 'x'), absDir]) expect(existsSync(p), p).toBe(false);
}

describe('restoring a hostile tree', () => {
  it.each(hostileTrees('/will-be-replaced').map((c) => [c.name] as const))(
    'refuses %s with a STOP and writes nothing outside staging',
    async (name) => {
      const c = hostileTrees(absDir).find((h) => h.name === name);
      if (c === undefined) throw new Error(`no case ${name}`);
      const repo = await makeRepo();
      const id = await forgeBackup(repo, {
        entries: [...PREFIX, ...c.entries],
        contents: { ...PREFIX_CONTENTS, ...c.contents },
      });
      await expectRefusedUntouched(repo, id, 'CHECKSUM_MISMATCH', c.why);
    },
  );

  it('refuses ../x into an empty target directory too, leaving it empty', async () => {
    const empty = join(parent, 'fresh');
    mkdirSync(empty);
    const repo = await makeRepo();
    const c = hostileTrees(absDir)[0];
    if (c === undefined) throw new Error('no cases');
    const id = await forgeBackup(repo, {
      entries: [...PREFIX, ...c.entries],
      contents: { ...PREFIX_CONTENTS, ...c.contents },
    });
    await expectRefusedUntouched(repo, id, 'CHECKSUM_MISMATCH', c.why, empty);
    expect(readdirSync(empty)).toEqual([]);
  });

  it(
    'refuses a file whose chunk holds more than its size, ' + 'after staging began, without touching the target',
    async () => {
      const repo = await makeRepo();
      const id = await forgeBackup(repo, {
        entries: [...PREFIX, dirEntry('core'), fileEntry('core/big.json', { size: 3 })],
        contents: { ...PREFIX_CONTENTS, 'core/big.json': '{"twelve":1}' },
      });
      await expectRefusedUntouched(repo, id, 'CHECKSUM_MISMATCH', 'chunk 0 holds 12 bytes');
    },
  );

  it('refuses content that does not hash to the recorded SHA-256, without touching the target', async () => {
    const repo = await makeRepo();
    const id = await forgeBackup(repo, {
      // two chunks (so the hash is not simply the chunk id) and a wrong whole-file hash
      entries: [...PREFIX, dirEntry('core'), fileEntry('core/data.bin', { sha256: 'b'.repeat(64) })],
      contents: { ...PREFIX_CONTENTS, 'core/data.bin': Buffer.alloc(repo.config.fileChunkSize + 10, 7) },
    });
    await expectRefusedUntouched(repo, id, 'CHECKSUM_MISMATCH', 'SHA-256');
  });
});

describe('restoring a hostile manifest', () => {
  it.each([
    ['a module named ../x', { modules: ['../x'] }],
    [
      'a template at an absolute path',
      { core: { coreDb: null, templates: { [`${'/'}etc/x`]: `sha256:${'a'.repeat(64)}` } } },
    ],
  ])('refuses %s with MISSING_MANIFEST and touches nothing', async (_name, manifest) => {
    const repo = await makeRepo();
    const id = await forgeBackup(repo, { entries: [...PREFIX], contents: PREFIX_CONTENTS, manifest });
    await expectRefusedUntouched(repo, id, 'MISSING_MANIFEST', 'manifest is malformed');
  });
});

describe('restoring set-id bits', () => {
  it('restores a setuid/setgid file without those bits, and keeps setgid on a directory', async () => {
    const fresh = join(parent, 'fresh');
    const repo = await makeRepo();
    const id = await forgeBackup(repo, {
      entries: [dirEntry('shared', { mode: 0o2775 }), fileEntry('shared/tool', { mode: 0o6755 })],
      contents: { 'shared/tool': '#!/bin/sh\necho hi\n' },
    });
    await restore(repo, id, { target: fresh, confirm: id, foleVersion: FORGED_FOLE_VERSION });
    expect(statSync(join(fresh, 'shared', 'tool')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(fresh, 'shared')).mode & 0o7777).toBe(0o2775);
    expect(readFileSync(join(fresh, 'shared', 'tool'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
  });
});
