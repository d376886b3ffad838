/**
 * File names are bytes: a POSIX name may hold a backslash or bytes that are not
 * UTF-8, and a backup must keep them rather than leave them out. The real CLI
 * backs up a tree with such names (exit 0, every one counted), restores it with
 * exactly the same names and bytes, verifies it, and does the same again after
 * an incremental over them. A name that is not UTF-8 and one that is valid
 * UTF-8 spelling U+FFFD (what the first would become if decoded) are two files,
 * and stay two.
 */
import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { createDatabase } from './fixtures/sqlite-writer.js';
import { makeFoleTree, type FoleTree } from './restore-helpers.js';

const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
const B = (...parts: (string | number[] | Buffer)[]): Buffer =>
  Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
const SLASH = Buffer.from('/');

/**
 * Every path under `root` as bytes (hex), with its kind and content hash: names
 * compared byte for byte. A database's content is left out: a backup stores
 * what SQLite reads from it, not its file's bytes.
 */
function byteTree(root: string): string[] {
  const out: string[] = [];
  const visit = (dir: Buffer, rel: Buffer): void => {
    for (const name of readdirSync(dir, { encoding: 'buffer' })) {
      const abs = Buffer.concat([dir, SLASH, name]);
      const path = rel.length === 0 ? name : Buffer.concat([rel, SLASH, name]);
      const st = lstatSync(abs);
      if (st.isDirectory()) {
        out.push(`d ${path.toString('hex')}`);
        visit(abs, path);
      } else if (st.isFile()) {
        const db = path.toString('latin1').endsWith('.db');
        out.push(
          `f ${path.toString('hex')} ${db ? 'database' : createHash('sha256').update(readFileSync(abs)).digest('hex')}`,
        );
      } else out.push(`? ${path.toString('hex')}`);
    }
  };
  visit(Buffer.from(root), Buffer.alloc(0));
  return out.sort();
}

/** A name that is not UTF-8, and paths in and under one. */
const NOT_UTF8 = B('f', [0xff, 0xfe], '.bin');
const NOT_UTF8_DIR = B('uploads-', [0xc3, 0x28]);
const REPLACEMENT = B('f', [0xef, 0xbf, 0xbd, 0xef, 0xbf, 0xbd], '.bin');

let work: string;
let source: FoleTree;
let repoDir: string;

function writeBytes(rel: Buffer, content: string): void {
  writeFileSync(Buffer.concat([Buffer.from(source.root), SLASH, rel]), content);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-names-'));
  source = makeFoleTree(join(work, 'storage'));
  source.core.db.close();
  const files = B('projects/p1/files/');
  writeBytes(B(files, 'a\\b.txt'), 'a backslash is a name character');
  writeBytes(B(files, NOT_UTF8), 'two bytes that are not UTF-8');
  writeBytes(B(files, REPLACEMENT), 'U+FFFD twice, valid UTF-8');
  mkdirSync(Buffer.concat([Buffer.from(source.root), SLASH, B(files, NOT_UTF8_DIR)]));
  writeBytes(B(files, NOT_UTF8_DIR, '/inside.txt'), 'under a directory whose name is not UTF-8');
  writeBytes(B(files, NOT_UTF8_DIR, '/', [0x80]), 'a lone continuation byte');
  // SQLite opens a database by a UTF-8 name: under this one it is kept byte for byte, with a warning
  createDatabase(join(work, 'legacy.sqlite'), 20, 'delete');
  renameSync(
    join(work, 'legacy.sqlite'),
    Buffer.concat([Buffer.from(source.root), SLASH, B(files, 'legacy-', [0xff], '.sqlite')]),
  );
  repoDir = join(work, 'repo');
  expect((await runCli(['init', '--repo', repoDir], env)).code).toBe(0);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

async function backupAndRestore(
  extra: string[],
  name: string,
): Promise<{ backup: Record<string, unknown>; target: string }> {
  const b = await runCli(
    ['backup', '--repo', repoDir, '--storage-root', source.root, '--fole-version', '2.3.1', '--json', ...extra],
    env,
  );
  expect(b.code, b.stderr).toBe(0);
  const result = JSON.parse(b.stdout) as Record<string, unknown> & { backupId: string };
  const target = join(work, name);
  const r = await runCli(
    [
      'restore',
      result.backupId,
      '--repo',
      repoDir,
      '--target',
      target,
      '--confirm',
      result.backupId,
      '--fole-version',
      '2.3.1',
      '--json',
    ],
    env,
  );
  expect(r.code, r.stderr).toBe(0);
  const v = await runCli(['verify', result.backupId, '--repo', repoDir, '--read-data', '--json'], env);
  expect(v.code, v.stdout + v.stderr).toBe(0);
  expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, problemCount: 0 });
  return { backup: result, target };
}

/** The source's paths a backup keeps (no tmp/, cache/, symlink), byte for byte. */
const kept = (root: string): string[] =>
  byteTree(root).filter((l) => {
    const path = Buffer.from(l.split(' ')[1] as string, 'hex').toString('latin1');
    return !/(^|\/)(tmp|cache)(\/|$)|outside-link$|-wal$|-shm$/.test(path);
  });

describe('names that are bytes', () => {
  it(
    'backs up a backslash, bytes that are not UTF-8 and a directory so named, and restores every name and byte ' +
      'exactly',
    async () => {
      const { backup, target } = await backupAndRestore([], 'restored');
      // nothing left out but the symlink, and every file counted
      expect(backup.skipped).toEqual([expect.objectContaining({ path: 'projects/p1/files/outside-link' })]);
      expect(backup.files).toBe(kept(source.root).filter((l) => l.startsWith('f ')).length);
      expect(backup.databases).toBe(4);
      const sqliteWarnings = (backup.warnings as string[]).filter((w) => w.includes('SQLite'));
      expect(sqliteWarnings).toEqual([
        expect.stringContaining(
          '"projects/p1/files/legacy-\\xff.sqlite" looks like a SQLite database, but its name is not UTF-8',
        ),
      ]);
      const restored = byteTree(target);
      expect(restored).toEqual(kept(source.root));
      for (const n of [
        B('a\\b.txt'),
        NOT_UTF8,
        REPLACEMENT,
        NOT_UTF8_DIR,
        B(NOT_UTF8_DIR, '/inside.txt'),
        B(NOT_UTF8_DIR, '/', [0x80]),
      ]) {
        expect(
          restored.some((l) => l.split(' ')[1] === B('projects/p1/files/', n).toString('hex')),
          n.toString('hex'),
        ).toBe(true);
      }
    },
  );

  it('keeps them through an incremental: a changed one re-read, a new one added', async () => {
    writeBytes(B('projects/p1/files/', NOT_UTF8), 'changed since the full backup');
    writeBytes(B('projects/p1/files/', NOT_UTF8_DIR, '/', [0xe2, 0x82]), 'a truncated three-byte sequence');
    const { backup, target } = await backupAndRestore(['--incremental'], 'restored-again');
    expect(backup).toMatchObject({ type: 'incremental', filesChanged: 1, filesNew: 1 });
    expect(byteTree(target)).toEqual(kept(source.root));
  });
});
