/**
 * `trust doctor` run as another Unix user (nobody), as a sysadmin runs it for
 * an agent's user: it names every secret that user can read — the password in
 * its environment, a readable password file, a repository key file or a
 * human's private key left readable — and not what the user cannot read or its
 * own key.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateActorKey } from '../src/trust/actor-key.js';
import { runCli } from './cli-helpers.js';
import { canRun } from './needs.js';

const NOBODY = 65534;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fole-doctor-'));
  chmodSync(dir, 0o755);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Report {
  ok: boolean;
  secretsReadable: { what: string; path?: string }[];
}

const asNobody = { uid: NOBODY, gid: NOBODY };

describe.runIf(canRun(process.getuid?.() === 0, 'root (to run as nobody)'))('trust doctor', () => {
  it('finds nothing where the secrets are kept from the user, and says so with exit 0', async () => {
    const safe = join(dir, 'safe');
    mkdirSync(safe, { mode: 0o755 });
    writeFileSync(join(safe, 'fole-backup.key'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    writeFileSync(join(safe, 'alice.key'), generateActorKey().privatePem, { mode: 0o600 });
    writeFileSync(join(safe, 'notes.txt'), 'nothing secret', { mode: 0o644 });
    const r = await runCli(
      ['trust', 'doctor', '--scan', safe, '--secret', join(safe, 'fole-backup.key'), '--json'],
      {},
      asNobody,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, secretsReadable: [] });
  });

  it('names each secret the user can read, and exits 1', async () => {
    const leaky = join(dir, 'leaky');
    mkdirSync(join(leaky, 'deep', 'er'), { recursive: true, mode: 0o755 });
    chmodSync(join(leaky, 'deep'), 0o755);
    chmodSync(join(leaky, 'deep', 'er'), 0o755);
    const repoKey = join(leaky, 'deep', 'er', 'fole.key');
    writeFileSync(repoKey, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o644 });
    const humanKey = join(leaky, 'alice.key');
    writeFileSync(humanKey, generateActorKey().privatePem, { mode: 0o644 });
    const encrypted = join(leaky, 'bob.key');
    writeFileSync(encrypted, generateActorKey('pass phrase').privatePem, { mode: 0o644 });
    // the agent's own key: expected to be readable by it
    const own = join(leaky, 'agent.key');
    writeFileSync(own, generateActorKey().privatePem, { mode: 0o600 });
    chownSync(own, NOBODY, NOBODY);
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, 'hunter2\n', { mode: 0o644 });
    const r = await runCli(
      ['trust', 'doctor', '--scan', leaky, '--json'],
      { FOLE_BACKUP_PASSWORD: 'in-the-env', FOLE_BACKUP_PASSWORD_FILE: passwordFile, FOLE_BACKUP_ACTOR_KEY: own },
      asNobody,
    );
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.ok).toBe(false);
    const found = report.secretsReadable.map((e) => [e.what, e.path ?? null]).sort();
    expect(found).toEqual(
      [
        ['the repository password (environment variable FOLE_BACKUP_PASSWORD)', null],
        ['a file named as holding a secret', passwordFile],
        ['a repository key file', repoKey],
        ["an actor's private key", humanKey],
        ["an actor's private key (passphrase-protected: still open to guessing)", encrypted],
      ].sort(),
    );
    // the human text names them too, and never prints a secret's content
    const text = await runCli(['trust', 'doctor', '--scan', leaky], { FOLE_BACKUP_PASSWORD: 'in-the-env' }, asNobody);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(humanKey);
    expect(text.stdout + text.stderr).not.toContain('in-the-env');
    expect(text.stdout).toMatch(/can bypass every permission and approval/);
  });
});
