/**
 * Healing through the CLI, as a sysadmin meets it: a byte flipped in one pack of a backed-up FOLE tree is found by
 * `check --read-data` (exit 3, recorded), `repair --dry-run` says what it would do and changes nothing, `repair`
 * moves the pack aside, `check --read-data` then passes with known damage, and the next backup heals it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { runCli } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree, treeOf } from './restore-helpers.js';

let work: string;
let repoDir: string;
let backupId: string;
let source: string;
const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
const cli = (...args: string[]) => runCli([...args, '--repo', repoDir], env);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const BIG = 'projects/p1/files/big.bin';

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-repair-cli-'));
  ({ repoDir, backupId } = await backedUpFoleTree(work));
  source = join(work, 'src');
  // one byte of big.bin's first chunk, where it is stored
  const repo = await Repository.open(new LocalBackend(repoDir), TEST_PASSWORD);
  await repo.loadIndex();
  const chunk = (await treeOf(repo, backupId)).find((e) => e.path === BIG)?.chunks?.[0] as string;
  const at = repo.index.get(chunk);
  await repo.close();
  if (at === undefined) throw new Error('big.bin has no chunk');
  const file = join(repoDir, 'data', at.pack.slice(0, 2), at.pack);
  const b = readFileSync(file);
  b[at.offset + 100] = (b[at.offset + 100] ?? 0) ^ 0x01;
  writeFileSync(file, b);
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('fole-backup repair', () => {
  it('finds, records, repairs and heals a flipped byte', async () => {
    const found = await cli('check', '--read-data', '--json');
    expect(found.code, found.stderr).toBe(3);
    const report = JSON.parse(found.stdout) as { recorded?: string; problems: { path?: string; kind: string }[] };
    expect(report.recorded).toMatch(/^[0-9a-f]{64}$/);
    expect(report.problems.filter((p) => p.kind === 'snapshot').map((p) => p.path)).toEqual([BIG]);
    expect(found.stderr).toContain('nothing was changed but the damage found, recorded in damage/');
    // browsing the damaged repository works; writing out the damaged file is refused, the others are not
    const ls = await cli('ls', backupId, 'projects/p1/files');
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain('big.bin');
    const dumped = await cli('dump', backupId, BIG);
    expect(dumped.code).toBe(3);
    expect(dumped.stderr).toMatch(/recorded as damaged \(check on /);
    const other = await cli('dump', backupId, 'projects/p1/project.json');
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toBe('{"id":"p1"}');

    const before = readdirSync(join(repoDir, 'data')).flatMap((d) => readdirSync(join(repoDir, 'data', d)));
    const dry = await cli('repair', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('DRY RUN, nothing was changed');
    expect(dry.stdout).toContain(`${BIG} — the next backup likely heals it`);
    expect(readdirSync(join(repoDir, 'data')).flatMap((d) => readdirSync(join(repoDir, 'data', d)))).toEqual(before);
    expect(existsSync(join(repoDir, 'quarantine')) ? readdirSync(join(repoDir, 'quarantine')) : []).toEqual([]);

    const fixed = await cli('repair', '--json');
    expect(fixed.code, fixed.stderr).toBe(0);
    const r = JSON.parse(fixed.stdout) as { movedAside: string[]; lostBlobs: number; affected: unknown[] };
    expect(r.movedAside).toHaveLength(1);
    expect(r.lostBlobs).toBe(1);
    expect(readdirSync(join(repoDir, 'quarantine'))).toEqual([`data.${r.movedAside[0]}`]);

    const after = await cli('check', '--read-data');
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain('OK, with known damage');
    expect(after.stdout).toContain(`1 file needs data that repair found lost (first: ${BIG})`);
    const refused = await cli(
      'restore',
      backupId,
      '--confirm',
      backupId,
      '--target',
      join(work, 'r1'),
      '--fole-version',
      '2.3.1',
    );
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/lost: repair found no sound copy of it/);

    const b = await cli('backup', '--storage-root', source, '--fole-version', '2.3.1');
    expect(b.code, b.stderr).toBe(0);
    const healed = await cli('check', '--read-data', '--json');
    expect(healed.code, healed.stderr).toBe(0);
    expect((JSON.parse(healed.stdout) as { counts: { knownDamageBackups: number } }).counts.knownDamageBackups).toBe(0);
    const target = join(work, 'r2');
    const restored = await cli(
      'restore',
      backupId,
      '--confirm',
      backupId,
      '--target',
      target,
      '--fole-version',
      '2.3.1',
    );
    expect(restored.code, restored.stderr).toBe(0);
    expect(sha(readFileSync(join(target, BIG)))).toBe(sha(readFileSync(join(source, BIG))));
  });

  it('explains itself in --help', async () => {
    const h = await runCli(['repair', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('--dry-run');
    expect(h.stdout).toContain('quarantine/');
    expect(h.stdout).toContain('an agent may only run it with --dry-run');
  });
});
