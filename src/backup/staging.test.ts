import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { selfIdentity } from '../host/process-identity.js';
import { makeStaging, removeStaleStaging } from './staging.js';
import { canRun } from '../../test/needs.js';

let parent: string;
beforeEach(() => {
  parent = mkdtempSync(join(tmpdir(), 'fole-staging-test-'));
});
afterEach(() => rmSync(parent, { recursive: true, force: true }));

/** A pid no process has right now: a child that already exited. */
function deadPid(): number {
  return spawnSync('true').pid as number;
}

/** A staging directory as a backup with `pid` (and `holder`, if given) leaves it. */
function leftBehind(pid: number, holder?: object): string {
  const dir = join(parent, `fole-backup-staging-${pid}-abc123`);
  mkdirSync(dir, { mode: 0o700 });
  if (holder !== undefined)
    writeFileSync(join(dir, 'holder.json'), JSON.stringify({ host: hostname(), pid, ...holder }));
  return dir;
}

describe('removeStaleStaging', () => {
  it("never removes a directory we do not make: another user's, one others may write into, a symlink", async () => {
    const dead = deadPid();
    const open = leftBehind(dead, selfIdentity());
    chmodSync(open, 0o755);
    const elsewhere = mkdtempSync(join(tmpdir(), 'fole-staging-target-'));
    const link = join(parent, `fole-backup-staging-${deadPid()}-link00`);
    symlinkSync(elsewhere, link);
    try {
      expect(await removeStaleStaging(parent)).toEqual([]);
      expect([existsSync(open), existsSync(elsewhere)]).toEqual([true, true]);
      if (process.getuid?.() === 0) {
        chmodSync(open, 0o700);
        chownSync(open, 4242, 4242);
        expect(await removeStaleStaging(parent)).toEqual([]);
        chownSync(open, 0, 0);
        expect(await removeStaleStaging(parent)).toEqual(selfIdentity().pidNs === undefined ? [] : [open]);
      }
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it.runIf(canRun(selfIdentity().pidNs !== undefined, 'Linux /proc PID-namespace ids'))(
    'removes the staging of a process provably gone (same boot and PID namespace)',
    async () => {
      const dir = leftBehind(deadPid(), selfIdentity());
      expect(await removeStaleStaging(parent)).toEqual([dir]);
    },
  );

  it('keeps the staging of a holder whose pid is unknown here: another PID namespace or boot', async () => {
    const ns = leftBehind(deadPid(), { ...selfIdentity(), pidNs: 'pid:[1]' });
    const boot = leftBehind(deadPid() + 100_000, { ...selfIdentity(), bootId: 'another-boot' });
    expect(await removeStaleStaging(parent)).toEqual([]);
    expect(existsSync(ns) && existsSync(boot)).toBe(true);
  });

  it('judges a staging without a holder record (an older version) by its pid and a day of age', async () => {
    const fresh = leftBehind(deadPid());
    expect(await removeStaleStaging(parent)).toEqual([]);
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(fresh, twoDaysAgo, twoDaysAgo);
    expect(await removeStaleStaging(parent)).toEqual([fresh]);
  });

  it('records its holder in a new staging directory and keeps its own', async () => {
    const mine = await makeStaging(parent);
    expect(existsSync(join(mine, 'holder.json'))).toBe(true);
    expect(await removeStaleStaging(parent)).toEqual([]);
  });
});
