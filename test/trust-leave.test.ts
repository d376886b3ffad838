/**
 * Leaving registry mode through the real CLI: one entry every sysadmin signs,
 * passed from one to the next as a proposal file. Until the last signature
 * nothing changes; a proposal for an older registry, a signature by someone who
 * is not a sysadmin, and a machine that saw the registry before the leave being
 * shown an older one are all refused. `actor bootstrap` then starts registry mode
 * again, and the actors of before stay removed.
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliResult } from './cli-helpers.js';
import { expectStop, makeTrustWorld, type TrustWorld } from './trust-world.js';

let w: TrustWorld;
const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => w.cli(args, extra);
const as = (name: string): string[] => w.as(name);

beforeAll(async () => {
  w = await makeTrustWorld('fole-trust-leave-', ['bob', 'olga', 'dan']);
  await w.add('bob', 'human', 'sysadmin');
  await w.add('olga', 'human', 'operator');
}, 120_000);

afterAll(() => w.cleanup());

describe('leaving registry mode', () => {
  it('needs every sysadmin: a proposal file passed on, applied by the last signature', async () => {
    const alone = await cli(['actor', 'leave', ...as('alice')]);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('still to sign: bob');
    const file = join(w.dir, 'leave.json');
    const started = await cli(['actor', 'leave', '--out', file, '--json', ...as('alice')]);
    expect(started.code, started.stderr).toBe(0);
    expect(JSON.parse(started.stdout)).toMatchObject({ left: false, missing: ['bob'] });
    // never overwritten; an operator may not sign; alice signing again adds nothing
    expect((await cli(['actor', 'leave', '--out', file, ...as('alice')])).code).toBe(2);
    expectStop(
      await cli(['actor', 'leave', '--cosign', file, ...as('olga')]),
      'PERMISSION_DENIED',
      /needs permission actors\.admin/,
    );
    const again = await cli(['actor', 'leave', '--cosign', file, '--json', ...as('alice')]);
    expect(JSON.parse(again.stdout)).toMatchObject({ left: false, missing: ['bob'] });
    // still registry mode: the key holder alone is refused
    expectStop(await cli(['list']), 'PERMISSION_DENIED', /needs a registered actor/);

    // a proposal made for an older registry is void once the registry changed
    const stale = join(w.dir, 'stale.json');
    cpSync(file, stale);
    expect((await cli(['actor', 'grant', 'olga', 'backup.restore', ...as('alice')])).code).toBe(0);
    const voided = await cli(['actor', 'leave', '--cosign', stale, ...as('bob')]);
    expect(voided.code).toBe(2);
    expect(voided.stderr).toContain('the proposal was made for another state of the registry');
    const fresh = join(w.dir, 'leave-2.json');
    expect((await cli(['actor', 'leave', '--out', fresh, ...as('alice')])).code).toBe(0);
    const signatures = (JSON.parse(readFileSync(fresh, 'utf8')) as { signatures: unknown[] }).signatures;
    expect(signatures).toHaveLength(1);
    const done = await cli(['actor', 'leave', '--cosign', fresh, '--json', ...as('bob')]);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ left: true });
  });

  it('is single-operator mode afterwards, keeping the history and the audit log verifiable', async () => {
    const list = await cli(['list']);
    expect(list.code, list.stderr).toBe(0);
    const actors = await cli(['actor', 'list', '--json']);
    const listed = JSON.parse(actors.stdout) as { mode: string; leftAt: number; actors: { removed: boolean }[] };
    expect(listed.mode).toBe('single-operator');
    expect(listed.actors.every((a) => a.removed)).toBe(true);
    // a removed actor's key proves nothing now, and registry changes need a registry
    expectStop(
      await cli([
        'actor',
        'add',
        'zed',
        '--kind',
        'human',
        '--role',
        'operator',
        '--public-key',
        `${w.key('dan')}.pub`,
      ]),
      'PERMISSION_DENIED',
      /left registry mode/,
    );
    const verify = await cli(['audit', 'verify', '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });
  });

  it('never falls back to the registry of before on a machine that saw the leave', async () => {
    const registry = join(w.repoDir, 'registry');
    const saved = join(w.dir, 'registry-saved');
    cpSync(registry, saved, { recursive: true });
    // cut the leave entry (and what followed): the registry of before, with alice and bob in power
    const entries = readdirSync(registry).sort();
    const last = entries[entries.length - 1] as string;
    rmSync(join(registry, last));
    expectStop(await cli(['list', ...as('alice')]), 'TRUST_ROLLBACK', /fewer than the/);
    rmSync(registry, { recursive: true });
    expectStop(await cli(['list']), 'TRUST_ROLLBACK', /is gone/);
    cpSync(saved, registry, { recursive: true });
    expect(existsSync(join(registry, last))).toBe(true);
  });

  it('starts registry mode again with bootstrap: a new first sysadmin, the actors of before removed', async () => {
    const refused = await cli([
      'actor',
      'bootstrap',
      '--admin',
      'alice',
      '--admin-public-key',
      `${w.key('alice')}.pub`,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('the name alice is already taken');
    const boot = await cli(['actor', 'bootstrap', '--admin', 'dan', '--admin-public-key', `${w.key('dan')}.pub`]);
    expect(boot.code, boot.stderr).toBe(0);
    expectStop(await cli(['list']), 'PERMISSION_DENIED', /needs a registered actor/);
    expectStop(await cli(['list', ...as('alice')]), 'PERMISSION_DENIED', /alice is not a registered actor/);
    const byDan = await cli(['list', ...as('dan')]);
    expect(byDan.code, byDan.stderr).toBe(0);
  });
});
