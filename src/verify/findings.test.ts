import { describe, expect, it } from 'vitest';
import { StopError } from '../errors.js';
import { verdictFor, type Problem } from './findings.js';

const wording = {
  subject: 'backup b1',
  damageHint: 'use another backup',
  noSpaceHint: 'give --scratch-dir a disk with room',
};

function report(problems: Problem[]): Parameters<typeof verdictFor>[0] {
  const problemCodes: Record<string, number> = {};
  for (const p of problems) problemCodes[p.code] = (problemCodes[p.code] ?? 0) + 1;
  return { ok: problems.length === 0, problems, problemCount: problems.length, problemCodes };
}

describe('the verdict of a verify or check report', () => {
  it('is nothing when the report is ok', () => {
    expect(verdictFor(report([]), wording)).toBeUndefined();
  });

  it('is a STOP with the damage hint when anything is damaged, even after a NO_SPACE', () => {
    const v = verdictFor(
      report([
        {
          code: 'NO_SPACE',
          kind: 'database',
          message: 'a.db: write /tmp/x/db-1.sqlite: no space left on device',
          path: 'a.db',
        },
        { code: 'CHECKSUM_MISMATCH', kind: 'file', message: 'b.png: content does not match', path: 'b.png' },
      ]),
      wording,
    );
    expect(v).toBeInstanceOf(StopError);
    expect(v).toMatchObject({ code: 'CHECKSUM_MISMATCH', hint: 'use another backup' });
  });

  it('says where the scratch space goes when the first problem is NO_SPACE and nothing is damaged', () => {
    const v = verdictFor(
      report([
        {
          code: 'NO_SPACE',
          kind: 'database',
          message: 'a.db: write /tmp/x/db-1.sqlite: no space left on device',
          path: 'a.db',
        },
      ]),
      wording,
    );
    expect(v).not.toBeInstanceOf(StopError);
    expect(v?.code).toBe('NO_SPACE');
    expect(v?.hint).toBe('no damage was found in what could be read; give --scratch-dir a disk with room');
    // a command with no scratch space of its own gives the general hint
    const { noSpaceHint: _, ...plain } = wording;
    expect(
      verdictFor(report([{ code: 'NO_SPACE', kind: 'database', message: 'x', path: 'a.db' }]), plain)?.hint,
    ).toMatch(/fix the cause \(permissions, disk space, network\)/);
  });

  it('gives the general hint for other problems that are not damage', () => {
    const v = verdictFor(
      report([{ code: 'READ_ERROR', kind: 'pack', message: 'data/3f: EIO', object: 'data/3f' }]),
      wording,
    );
    expect(v?.code).toBe('READ_ERROR');
    expect(v?.hint).toMatch(/fix the cause \(permissions, disk space, network\) and run it again/);
  });
});
