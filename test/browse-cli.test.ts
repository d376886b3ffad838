/**
 * ls, find, diff and dump through the CLI, on a real repository holding two backups of a FOLE tree: what each
 * prints, that --json is one valid document, that dump's bytes are the backed-up bytes (a file spanning chunks,
 * a captured database, a directory as tar), and the refusals: a path not in the backup or outside it (usage,
 * exit 2), a damaged pack (STOP, exit 3).
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree } from './restore-helpers.js';

let work: string;
let repoDir: string;
let first: string;
let second: string;
/** When each backup was made, as list shows it. */
const madeAt = new Map<string, string>();
const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
const cli = (...args: string[]) => runCli([...args, '--repo', repoDir], env);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-browse-'));
  ({ repoDir, backupId: first } = await backedUpFoleTree(work));
  const src = join(work, 'src');
  writeFileSync(join(src, 'projects/p2/notes.txt'), 'new notes');
  rmSync(join(src, 'projects/p1/logs/app.log'));
  const db = new Database(join(src, 'projects/p1/project.db'));
  db.exec('CREATE TABLE extra(x); INSERT INTO extra VALUES (randomblob(20000))');
  db.close();
  const b = await runCli(
    ['backup', '--repo', repoDir, '--storage-root', src, '--fole-version', '2.3.1', '--json'],
    env,
  );
  expect(b.code, b.stderr).toBe(0);
  second = (JSON.parse(b.stdout) as { backupId: string }).backupId;
  const l = await runCli(['list', '--repo', repoDir, '--json'], env);
  for (const row of JSON.parse(l.stdout) as { backupId: string; createdAt: string }[])
    madeAt.set(row.backupId, row.createdAt);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('ls', () => {
  it('lists the top of a backup, a directory, a file, and everything under a path', async () => {
    const top = await cli('ls', first);
    expect(top.code, top.stderr).toBe(0);
    expect(top.stdout.trim().split('\n')).toEqual([
      'AI_AUTOMATION_PAUSED',
      'config/',
      'core/',
      'modules/',
      'projects/',
      'templates/',
    ]);
    const p1 = await cli('ls', first, '/projects/p1/', '-l');
    expect(p1.stdout).toMatch(/^-rw-r--r-- .* projects\/p1\/project\.db {2}\(SQLite database, captured\)$/m);
    expect(p1.stdout).toMatch(/^drwx.* projects\/p1\/maps\/$/m);
    expect(p1.stdout).not.toMatch(/tiles/);
    const one = await cli('ls', first, 'projects/p1/files/big.bin');
    expect(one.stdout).toBe('projects/p1/files/big.bin\n');
    const all = await cli('ls', first, 'projects/p1/maps', '-R', '--json');
    const doc = JSON.parse(all.stdout) as { backupId: string; entries: { path: string; kind: string }[] };
    expect(doc.backupId).toBe(first);
    expect(doc.entries.filter((e) => e.path.endsWith('.png'))).toHaveLength(12);
    expect(doc.entries.find((e) => e.path === 'projects/p1/maps/m1/map.db')?.kind).toBe('db');
  });

  it('refuses a path the backup does not hold, and one outside it, as usage errors', async () => {
    const missing = await cli('ls', first, 'projects/p9');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/holds no projects\/p9/);
    const outside = await cli('ls', first, '../etc');
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/not a path inside a backup/);
  });
});

describe('find', () => {
  it('names the backups that hold a path, newest first', async () => {
    const r = await cli('find', 'app.log', 'notes.txt');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `backup ${second} (${madeAt.get(second)}):\n  projects/p2/notes.txt\n` +
        `backup ${first} (${madeAt.get(first)}):\n  projects/p1/logs/app.log\n`,
    );
  });

  it('looks only in the backups named, and says so when nothing matches', async () => {
    const r = await cli('find', '*.db', '--backup', first, '--json');
    const doc = JSON.parse(r.stdout) as { matches: { backupId: string; path: string }[]; hits: number };
    expect(new Set(doc.matches.map((m) => m.backupId))).toEqual(new Set([first]));
    expect(doc.matches.map((m) => m.path).sort()).toEqual([
      'core/core.db',
      'modules/maps/module.db',
      'projects/p1/maps/m1/map.db',
      'projects/p1/project.db',
    ]);
    const none = await cli('find', 'nothing-like-this');
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/no match in 2 backups/);
  });
});

describe('diff', () => {
  it('lists what was added, removed and changed, a database as one item', async () => {
    const r = await cli('diff', first, second);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContainEqual(
      expect.stringMatching(/^M projects\/p1\/project\.db {2}\(database: \d+ → \d+ pages\)$/),
    );
    expect(lines).toContain('- projects/p1/logs/app.log  2.4 KiB');
    expect(lines).toContain('+ projects/p2/notes.txt  9 B');
    expect(lines.at(-1)).toMatch(/^1 added, 1 removed, \d+ changed/);
    const j = JSON.parse((await cli('diff', first, second, '--json')).stdout) as {
      changes: { op: string; path: string }[];
      stats: { added: number; removed: number };
    };
    expect(j.stats).toMatchObject({ added: 1, removed: 1 });
    expect(j.changes.map((c) => `${c.op} ${c.path}`)).toContain('added projects/p2/notes.txt');
  });

  it('shows nothing between a backup and itself', async () => {
    const r = await cli('diff', second, second, '--metadata');
    expect(r.stdout).toBe('0 added, 0 removed, 0 changed, 0 with new metadata only (0 B added, 0 B removed)\n');
  });
});

describe('dump', () => {
  it('writes a file spanning several chunks byte for byte', async () => {
    const r = await runCli(['dump', first, 'projects/p1/files/big.bin', '--repo', repoDir], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdoutBytes.equals(readFileSync(join(work, 'src/projects/p1/files/big.bin')))).toBe(true);
  });

  it('writes a database as the consistent copy captured at backup time', async () => {
    const r = await runCli(['dump', second, 'projects/p1/project.db', '--repo', repoDir], env);
    expect(r.code, r.stderr).toBe(0);
    const out = join(work, 'dumped.db');
    writeFileSync(out, r.stdoutBytes);
    const db = new Database(out, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.prepare('SELECT count(*) AS n FROM extra').get()).toEqual({ n: 1 });
    db.close();
  });

  it('writes a directory as a tar that extracts to the backed-up files', async () => {
    const r = await runCli(['dump', first, 'projects/p1/maps', '--repo', repoDir], env);
    expect(r.code, r.stderr).toBe(0);
    const into = join(work, 'untar');
    mkdirSync(into);
    execFileSync('tar', ['-x', '-C', into], { input: r.stdoutBytes });
    const tiles = join('maps/m1/tiles/1/0');
    expect(readdirSync(join(into, tiles)).sort()).toEqual(['0.png', '10.png', '2.png', '4.png', '6.png', '8.png']);
    expect(
      readFileSync(join(into, tiles, '4.png')).equals(readFileSync(join(work, 'src/projects/p1', tiles, '4.png'))),
    );
  });

  it('refuses a path the backup does not hold (exit 2) and stops on a damaged pack (exit 3)', async () => {
    const missing = await cli('dump', first, 'projects/p1/nope.bin');
    expect(missing.code).toBe(2);
    const copy = join(work, 'damaged-repo');
    execFileSync('cp', ['-a', repoDir, copy]);
    const dataDir = join(copy, 'data');
    for (const sub of readdirSync(dataDir)) {
      for (const pack of readdirSync(join(dataDir, sub))) {
        const f = join(dataDir, sub, pack);
        const bytes = readFileSync(f);
        for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (bytes[i] ?? 0) ^ 0xff;
        writeFileSync(f, bytes);
      }
    }
    const r = await runCli(['dump', first, 'projects/p1/files/big.bin', '--repo', copy], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/STOP CHECKSUM_MISMATCH/);
  });
});

describe('restore --include (a partial restore into a new place)', () => {
  const restoreArgs = (target: string, ...more: string[]): string[] => [
    'restore',
    first,
    '--target',
    target,
    '--confirm',
    first,
    '--fole-version',
    '2.3.1',
    ...more,
  ];

  it('restores what the globs choose, byte for byte, with the directories above it and nothing else', async () => {
    const target = join(work, 'partial');
    const plan = await cli(
      ...restoreArgs(target, '--include', 'projects/p1/maps', '--exclude', '**/1/0/*.png', '--dry-run'),
    );
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(
      /only what --include projects\/p1\/maps matches and --exclude \*\*\/1\/0\/\*\.png does not/,
    );
    // the 6 tiles of tiles/1/1 and map.db; tiles/1/0 is an empty directory
    expect(plan.stdout).toMatch(/^write: 7 files \(.*\) and 8 directories/m);
    const r = await cli(...restoreArgs(target, '--include', 'projects/p1/maps', '--include', 'config', '--json'));
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(target).sort()).toEqual(['config', 'projects']);
    expect(readdirSync(join(target, 'projects'))).toEqual(['p1']);
    expect(readdirSync(join(target, 'projects/p1'))).toEqual(['maps']);
    const tile = 'projects/p1/maps/m1/tiles/1/1/7.png';
    expect(readFileSync(join(target, tile)).equals(readFileSync(join(work, 'src', tile)))).toBe(true);
    const db = new Database(join(target, 'projects/p1/maps/m1/map.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    expect(JSON.parse(r.stdout)).toMatchObject({ files: 14, databases: 1 });
  });

  it('refuses a live STORAGE_ROOT (STOP), a glob that matches nothing and a lone --exclude (usage)', async () => {
    const live = await cli(...restoreArgs(join(work, 'src'), '--include', 'config'));
    expect(live.code).toBe(3);
    expect(live.stderr).toMatch(/STOP UNCLEAR_RESTORE_TARGET: a partial restore \(--include\) goes into an empty/);
    const none = await cli(...restoreArgs(join(work, 'none'), '--include', 'no-such-thing'));
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/matches nothing in backup/);
    const lone = await cli(...restoreArgs(join(work, 'none'), '--exclude', 'config'));
    expect(lone.code).toBe(2);
    expect(lone.stderr).toMatch(/--exclude needs --include/);
  });
});
