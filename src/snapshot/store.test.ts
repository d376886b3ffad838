import fc from 'fast-check';
import { fuzzAsync } from '../../test/fuzz.js';
import { describe, expect, it } from 'vitest';
import { FoleBackupError, StopError } from '../errors.js';
import { makeRepo } from '../../test/repo-helpers.js';
import { forgeBackup, fileEntry } from '../../test/fixtures/forge-backup.js';
import { resolveBackupId } from './store.js';

describe('naming a backup', () => {
  it(
    'takes latest, a full id or a unique prefix of 8+ characters; ' + 'anything else is a usage error, not a STOP',
    async () => {
      const repo = await makeRepo();
      const id = await forgeBackup(repo, { entries: [fileEntry('a.txt')], contents: { 'a.txt': 'a' } });
      expect(await resolveBackupId(repo, 'latest')).toBe(id);
      expect(await resolveBackupId(repo, id)).toBe(id);
      expect(await resolveBackupId(repo, id.slice(0, 8))).toBe(id);
      for (const ref of [
        'a90c',
        id.slice(0, 7),
        '',
        'LATEST',
        '../../etc/passwd',
        `${id}0`,
        'zzzzzzzz',
        id.toUpperCase(),
        '\u001b[2Jabcdefgh',
      ]) {
        await expect(resolveBackupId(repo, ref), ref).rejects.toMatchObject({ code: 'USAGE' });
      }
      const unknown = await resolveBackupId(repo, '00000000').catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(StopError);
      expect((unknown as StopError).code).toBe('MISSING_MANIFEST');
    },
  );

  it('calls a prefix that several backups share a usage error that lists them', async () => {
    const repo = await makeRepo();
    const ids = ['abcdef01-1000-4000-8000-000000000001', 'abcdef01-2000-4000-8000-000000000002'];
    for (const backupId of ids)
      await forgeBackup(repo, { backupId, entries: [fileEntry('a.txt')], contents: { 'a.txt': 'a' } });
    const err = await resolveBackupId(repo, 'abcdef01').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'USAGE', message: 'backup id prefix abcdef01 matches 2 backups' });
    expect((err as FoleBackupError).hint).toBe(`name one by more of its id: ${ids.join(', ')}`);
    expect(await resolveBackupId(repo, 'abcdef01-1')).toBe(ids[0]);
  });

  it('any string resolves, or fails with a typed error', async () => {
    const repo = await makeRepo();
    await forgeBackup(repo, { entries: [fileEntry('a.txt')], contents: { 'a.txt': 'a' } });
    await fuzzAsync(
      fc.asyncProperty(fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-f-]{0,40}$/)), async (ref) => {
        const r = await resolveBackupId(repo, ref).catch((e: unknown) => e);
        if (typeof r === 'string') return;
        expect(r).toBeInstanceOf(FoleBackupError);
        expect(['USAGE', 'MISSING_MANIFEST', 'AMBIGUOUS_INTENT']).toContain((r as FoleBackupError).code);
      }),
      500,
    );
  });
});
