/**
 * What an audit entry records of a command, as pure functions: which values are withheld as redactable, how an
 * outcome is coded, which backup ids and counts a result gives.
 */
import { describe, expect, it } from 'vitest';
import { FoleBackupError, StopError } from '../errors.js';
import { commitment } from './audit.js';
import { redactableArgs, resultOf, SENSITIVE_FLAGS, summarize } from './audit-record.js';

describe('redactableArgs', () => {
  it('withholds the value of every sensitive flag, in both spellings, and keeps the rest as given', () => {
    const { args, disclosures } = redactableArgs([
      'restore',
      'latest',
      '--target',
      '/srv/fole',
      '--fole-version',
      '2.3.1',
      '--storage-root=/data/a',
      '-s',
      '/data/b',
    ]);
    expect(args).toEqual([
      'restore',
      'latest',
      '--target',
      { redactable: 'target' },
      '--fole-version',
      '2.3.1',
      '--storage-root',
      { redactable: 'storageRoot' },
      '-s',
      { redactable: 'storageRoot2' },
    ]);
    expect(disclosures.map((d) => [d.field, d.value])).toEqual([
      ['target', '/srv/fole'],
      ['storageRoot', '/data/a'],
      ['storageRoot2', '/data/b'],
    ]);
    // 128 bits of salt each, all different: equal values do not give equal commitments
    const salts = disclosures.map((d) => Buffer.from(d.salt, 'base64url'));
    expect(salts.every((s) => s.length === 16)).toBe(true);
    expect(new Set(disclosures.map(commitment)).size).toBe(3);
    expect(Object.values(SENSITIVE_FLAGS)).toContain('target');
  });

  it('keeps a sensitive flag with no value as it is (the CLI refused it anyway)', () => {
    expect(redactableArgs(['restore', '--target'])).toEqual({ args: ['restore', '--target'], disclosures: [] });
  });
});

describe('resultOf and summarize', () => {
  it('codes an outcome as ok, the error code, or the STOP code', () => {
    expect(resultOf(undefined)).toEqual({ status: 'ok' });
    expect(resultOf(new FoleBackupError('NO_SPACE', 'full'))).toEqual({ status: 'error', code: 'NO_SPACE' });
    expect(resultOf(new StopError('PERMISSION_DENIED', 'no'))).toEqual({ status: 'stop', code: 'PERMISSION_DENIED' });
    expect(resultOf(new Error('bug'))).toEqual({ status: 'error', code: 'INTERNAL' });
  });

  it('takes backup ids and top-level counts from a result, nothing else', () => {
    const id = '3f2a9c1e-1111-4222-8333-444455556666';
    const other = '3f2a9c1e-1111-4222-8333-777788889999';
    const s = summarize({
      backupId: id,
      files: 12,
      bytes: 3400,
      target: '/srv/fole',
      removed: [{ id: other }],
      note: 'x',
    });
    expect(s).toEqual({ backupIds: [id, other], counts: { files: 12, bytes: 3400 } });
    expect(summarize(undefined)).toEqual({ backupIds: [], counts: {} });
  });
});
