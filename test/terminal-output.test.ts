/**
 * Names from a STORAGE_ROOT or a repository reach the operator's terminal:
 * escape sequences, carriage returns, line feeds and bidi overrides in them
 * are shown escaped and quoted, never acted on, so no file name can hide the
 * SECURITY warning about a symlink pointing outside the root.
 */
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonSafe, terminalSafe } from '../src/cli/output.js';
import { runCli } from './cli-helpers.js';
import { makeTree } from './fixtures/make-tree.js';
import { TEST_PASSWORD, makeLocalRepo } from './repo-helpers.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them raw in the output is the point
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fole-term-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('human output', () => {
  it('escapes what a terminal would act on and keeps the line structure', () => {
    expect(terminalSafe('a\u001b[2Kb\rc\u202ed\ne\tf')).toBe('a\\u001b[2Kb\\u000dc\\u202ed\ne\tf');
    const doc = jsonSafe({ name: 'x\u009by\u2066z\u001b' });
    expect(doc).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(doc)).toEqual({ name: 'x\u009by\u2066z\u001b' });
  });

  it(
    'a symlink whose name and target carry escape sequences ' + 'and line feeds cannot hide the SECURITY warning',
    async () => {
      const tree = await makeTree(
        { 'core/core.db': { db: ['CREATE TABLE t(x)'] }, 'projects/p1/project.json': '{}' },
        { root: join(work, 'storage') },
      );
      const evil = 'innocent\u001b[1A\u001b[2K\r\nwarning: all good\u202e';
      symlinkSync('/etc/passwd\u001b[8m', join(tree.root, 'projects', 'p1', evil));
      const repo = join(work, 'repo');
      const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
      await (await makeLocalRepo(repo)).close();
      const r = await runCli(['backup', '--repo', repo, '--storage-root', tree.root, '--fole-version', '1.0.0'], env);
      expect(r.code, r.stderr).toBe(0);
      for (const out of [r.stdout, r.stderr]) expect(out).not.toMatch(RAW_CONTROL);
      const security = r.stderr.split('\n').filter((l) => l.includes('SECURITY'));
      expect(security).toHaveLength(1);
      expect(security[0]).toContain('"projects/p1/innocent\\u001b[1A\\u001b[2K\\r\\nwarning: all good\\u202e"');
      expect(r.stderr.split('\n').some((l) => l.startsWith('warning: all good'))).toBe(false);
      const json = await runCli(['list', '--repo', repo, '--json'], env);
      expect(json.stdout).not.toMatch(RAW_CONTROL);
    },
  );
});
