/**
 * `fole-backup verify` and `fole-backup check` as a user runs them: exit codes
 * (0 good, 3 STOP on damage, 2 usage) and the JSON document — the report's
 * fields always at the top level, with a `stop` member when damage was found.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { clearDamageRecords, makeFixture, type Fixture } from './verify-fixture.js';

let fx: Fixture;
const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
const cli = (...args: string[]) => runCli([...args, '--repo', fx.repoDir], env);

beforeAll(async () => {
  fx = await makeFixture();
});

afterAll(() => fx.cleanup());

describe('fole-backup verify / check', () => {
  it('exit 0 with an ok report for a good backup', async () => {
    const before = Date.now();
    const v = await cli('verify', 'latest', '--read-data', '--json');
    const after = Date.now();
    expect(v.stderr).not.toMatch(/STOP/);
    expect(v.code).toBe(0);
    const r = JSON.parse(v.stdout) as Record<string, unknown>;
    expect(r).toMatchObject({
      kind: 'verify',
      ok: true,
      backupId: fx.backupId,
      readData: 'all',
      problems: [],
      problemCount: 0,
    });
    expect(r.stop).toBeUndefined();
    expect(r.levels).toEqual(['manifest', 'index', 'tree', 'packs', 'render', 'read-data']);
    expect(r.counts).toMatchObject({ databases: 3, databasesChecked: 3 });
    // the report's clock fields describe this very run: it began after the command was started, ended before it
    // returned, and lasted a whole number of milliseconds
    const startedAt = Date.parse(String(r.startedAt));
    expect(startedAt).toBeGreaterThanOrEqual(before);
    expect(Number.isInteger(r.durationMs)).toBe(true);
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    expect(startedAt + (r.durationMs as number)).toBeLessThanOrEqual(after);

    const c = await cli('check', '--json');
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ kind: 'check', ok: true, problems: [] });

    const human = await cli('verify', fx.backupId.slice(0, 8), '--read-data-subset', '50%', '--seed', 'w1');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`backup ${fx.backupId}: OK`));
    expect(human.stdout).toMatch(/subset: 50% of files by seed "w1"/);
  });

  it('exit 3 with the STOP and the whole report when a pack is damaged', async () => {
    const file = fx.packs()[0] as string;
    const original = readFileSync(file);
    const damaged = Buffer.from(original);
    damaged[7] = (damaged[7] ?? 0) ^ 0x40;
    writeFileSync(file, damaged);
    try {
      // structure alone cannot see a flipped bit: that is what --read-data is for
      expect((await cli('verify', 'latest')).code).toBe(0);

      const v = await cli('verify', 'latest', '--read-data', '--json');
      expect(v.code).toBe(3);
      const r = JSON.parse(v.stdout) as {
        stop: { code: string; message: string; hint: string };
        ok: boolean;
        problems: { object?: string }[];
        recorded?: string;
      };
      expect(r.stop.code).toBe('CHECKSUM_MISMATCH');
      expect(r.stop.hint).toMatch(/another/);
      expect(r.ok).toBe(false);
      expect(r.problems.some((p) => p.object === `data/${basename(file)}`)).toBe(true);
      expect(v.stderr).toMatch(/STOP CHECKSUM_MISMATCH/);
      // once read-data found it, it is recorded: a structural verify now refuses the blob too
      expect(r.recorded).toMatch(/^[0-9a-f]{64}$/);
      const again = await cli('verify', 'latest');
      expect(again.code).toBe(3);
      expect(again.stdout).toMatch(/recorded as damaged \(verify on /);

      const c = await cli('check', '--read-data', '--json');
      expect(c.code).toBe(3);
      expect(JSON.parse(c.stdout)).toMatchObject({ stop: { code: 'CHECKSUM_MISMATCH' }, kind: 'check', ok: false });

      const human = await cli('check', '--read-data');
      expect(human.code).toBe(3);
      expect(human.stdout).toMatch(/PROBLEM/);
      expect(human.stdout).toMatch(/CHECKSUM_MISMATCH pack/);
    } finally {
      writeFileSync(file, original);
      clearDamageRecords(fx.repoDir);
    }
  });

  it('exit 3 MISSING_MANIFEST for an unknown backup, 2 for contradictory options', async () => {
    const v = await cli('verify', '00000000-0000-4000-8000-000000000000', '--json');
    expect(v.code).toBe(3);
    expect(JSON.parse(v.stdout)).toMatchObject({ stop: { code: 'MISSING_MANIFEST' } });

    const both = await cli('verify', 'latest', '--read-data', '--read-data-subset', '10%');
    expect(both.code).toBe(2);
    const bad = await cli('verify', 'latest', '--read-data-subset', '150%', '--json');
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ error: { code: 'USAGE' } });
  });

  it('check --read-data-subset reads the packs a seed draws, names the seed, and refuses a lone --seed', async () => {
    const c = await cli('check', '--read-data-subset', '100%', '--seed', 'week-49', '--json');
    expect(c.code, c.stderr).toBe(0);
    const r = JSON.parse(c.stdout) as { readData: boolean; subset: { seed: string; packs: number } };
    expect(r).toMatchObject({ readData: true, subset: { percent: 100, seed: 'week-49' } });
    expect(r.subset.packs).toBeGreaterThan(0);
    const random = await cli('check', '--read-data-subset', '10%');
    expect(random.stdout).toMatch(/subset: 10% of the packs by seed "[0-9a-f]{12}": \d+ packs/);
    expect((await cli('check', '--seed', 'x')).code).toBe(2);
  });
});
