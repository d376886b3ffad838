/**
 * Key files: several per repository; a damaged or hostile key file is skipped
 * and reported, never a lock-out or a gigabyte of scrypt; a repository without
 * key files or whose config was replaced says so instead of "wrong password".
 * Real key files in a real local repository, the real CLI where output matters.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { MemoryBackend } from '../src/backend/memory.js';
import { generateMasterKey, MAX_KDF_N, wrapMasterKey } from '../src/crypto/keys.js';
import type { ProgressReporter } from '../src/progress/reporter.js';
import { addKey, changePassword, listKeys, removeKey } from '../src/repository/keys.js';
import { MAX_KEY_TRIES, Repository } from '../src/repository/repository.js';
import { runCli } from './cli-helpers.js';
import { FAST_KDF, makeRepo, TEST_PASSWORD } from './repo-helpers.js';

/** A key file name that sorts before every real one (real names are SHA-256 hex). */
const FIRST = '0'.repeat(64);

let dir: string;
let repoDir: string;
let keyName: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fole-keys-'));
  repoDir = join(dir, 'repo');
  const repo = await makeRepo(new LocalBackend(repoDir));
  keyName = repo.keyName;
  await repo.close();
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function recorder(): ProgressReporter & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, phase() {}, progress() {}, warn: (m) => void warnings.push(m) };
}

const keyPath = (name: string): string => join(repoDir, 'keys', name);
const realKey = (): Record<string, unknown> =>
  JSON.parse(readFileSync(keyPath(keyName), 'utf8')) as Record<string, unknown>;
const openRepo = (password: string, reporter = recorder()): Promise<Repository> =>
  Repository.open(new LocalBackend(repoDir), password, { reporter });

describe('several keys per repository', () => {
  it('opens with every key, removes one, and never the one in use or the last', async () => {
    const backend = new MemoryBackend();
    const repo = await makeRepo(backend);
    const second = await addKey(repo, 'second password');
    const viaSecond = await Repository.open(backend, 'second password');
    expect(viaSecond.keyName).toBe(second);
    expect(viaSecond.config.id).toBe(repo.config.id);
    expect((await listKeys(repo)).map((k) => k.current)).toEqual(expect.arrayContaining([true, false]));
    await expect(removeKey(viaSecond, second.slice(0, 10))).rejects.toThrow(/the one you opened/);
    await expect(removeKey(repo, 'abc')).rejects.toThrow(/at least 8/);
    expect(await removeKey(repo, second.slice(0, 10))).toBe(second);
    await expect(Repository.open(backend, 'second password')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    const again = await Repository.open(backend, TEST_PASSWORD);
    expect((await listKeys(again)).length).toBe(1);
    await expect(removeKey(again, again.keyName)).rejects.toThrow(/the one you opened/);
  });
});

describe('labels and key passwd', () => {
  it('labels a key, and key passwd replaces the key in use keeping its label', async () => {
    const backend = new MemoryBackend();
    const repo = await makeRepo(backend);
    const laptop = await addKey(repo, 'laptop password', 'alice laptop');
    await expect(addKey(repo, 'x', 'bad\u001b[2Jlabel')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(addKey(repo, 'x', 'y'.repeat(101))).rejects.toMatchObject({ code: 'USAGE' });
    const viaLaptop = await Repository.open(backend, 'laptop password');
    const changed = await changePassword(viaLaptop, 'new laptop password');
    expect(changed.removed).toBe(laptop);
    const keys = await listKeys(repo);
    expect(keys.map((k) => [k.name, k.label])).toEqual(
      expect.arrayContaining([
        [changed.added, 'alice laptop'],
        [repo.keyName, undefined],
      ]),
    );
    expect(keys).toHaveLength(2);
    await expect(Repository.open(backend, 'laptop password')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    expect((await Repository.open(backend, 'new laptop password')).keyName).toBe(changed.added);
  });

  it('key passwd and key list through the CLI: the label shown, the old password refused', async () => {
    const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD };
    const newPw = join(dir, 'new-password');
    writeFileSync(newPw, 'a new password\n');
    const p = await runCli(
      ['key', 'passwd', '--repo', repoDir, '--new-password-file', newPw, '--label', 'ops team'],
      env,
    );
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/replaced by [0-9a-f]{16}: only the new password/);
    const old = await runCli(['key', 'list', '--repo', repoDir], env);
    expect(old.code).toBe(3);
    const l = await runCli(['key', 'list', '--repo', repoDir], { FOLE_BACKUP_PASSWORD: 'a new password' });
    expect(l.stdout).toMatch(/^\* [0-9a-f]{16}.*"ops team"$/m);
  });
});

describe('a damaged or hostile key file', () => {
  it('is skipped and reported when it sorts first, and the valid password still opens the repository', async () => {
    writeFileSync(keyPath(FIRST), '{garbage\n');
    const reporter = recorder();
    const repo = await openRepo(TEST_PASSWORD, reporter);
    expect(repo.keyName).toBe(keyName);
    expect(reporter.warnings).toEqual([
      expect.stringMatching(new RegExp(`key file ${FIRST.slice(0, 12)}\\S* is damaged and was skipped: not JSON`)),
    ]);
    await repo.close();
  });

  it('is skipped, never derived, when its scrypt parameters exceed what init and key add create', async () => {
    // named to sort before the real key file, so each is tried before it
    const hostile: Record<string, Record<string, unknown>> = {
      [`${'0'.repeat(63)}1`]: { ...realKey(), N: 2 ** 20 },
      [`${'0'.repeat(63)}2`]: { ...realKey(), N: MAX_KDF_N * 2 },
      [`${'0'.repeat(63)}3`]: { ...realKey(), r: 32 },
      [`${'0'.repeat(63)}4`]: { ...realKey(), p: 16 },
      [`${'0'.repeat(63)}5`]: { ...realKey(), N: 3 * 1024 },
    };
    for (const [name, k] of Object.entries(hostile)) writeFileSync(keyPath(name), JSON.stringify(k));
    const reporter = recorder();
    const repo = await openRepo(TEST_PASSWORD, reporter);
    expect(repo.keyName).toBe(keyName);
    expect(reporter.warnings).toHaveLength(5);
    for (const w of reporter.warnings) expect(w).toMatch(/is damaged and was skipped: unsupported scrypt parameters/);
    await repo.close();
  });

  it('is skipped without being read in full when it is larger than any key file', async () => {
    writeFileSync(keyPath(FIRST), JSON.stringify(realKey()) + ' '.repeat(100 * 1024));
    const reporter = recorder();
    await (await openRepo(TEST_PASSWORD, reporter)).close();
    expect(reporter.warnings).toEqual([
      expect.stringMatching(/is damaged and was skipped: \d+ bytes, more than a key file can be/),
    ]);
  });

  it('leaves a wrong password a STOP PERMISSION_DENIED that names the damaged file', async () => {
    writeFileSync(keyPath(FIRST), '{garbage');
    const reporter = recorder();
    const err = await openRepo('not the password', reporter).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'StopError', code: 'PERMISSION_DENIED' });
    expect((err as Error).message).toMatch(
      new RegExp(`no key file opens with this password; 1 damaged key file was skipped: ${FIRST.slice(0, 12)}`),
    );
    expect(reporter.warnings).toHaveLength(1);
  });

  it('is a STOP saying so when every key file is damaged', async () => {
    writeFileSync(keyPath(keyName), '{"version":1}');
    const err = await openRepo(TEST_PASSWORD).catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: 'StopError',
      code: 'CHECKSUM_MISMATCH',
      message: expect.stringMatching(/every key file is damaged/),
    });
  });

  it('is listed as damaged by `key list`, and `key remove` removes it', async () => {
    writeFileSync(keyPath(FIRST), '{garbage');
    const repo = await openRepo(TEST_PASSWORD);
    const keys = await listKeys(repo);
    expect(keys).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: keyName, current: true }),
        expect.objectContaining({ name: FIRST, current: false, damaged: expect.stringMatching(/not JSON/) }),
      ]),
    );
    expect(await removeKey(repo, FIRST.slice(0, 10))).toBe(FIRST);
    expect(readdirSync(join(repoDir, 'keys'))).toEqual([keyName]);
    await repo.close();
  });

  it('cannot be written: init and key add refuse scrypt parameters the reader would refuse', async () => {
    await expect(
      Repository.init(new MemoryBackend(), TEST_PASSWORD, { kdf: { ...FAST_KDF, N: 2 ** 20 } }),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
    const repo = await makeRepo();
    await expect(repo.addKey('another', { ...FAST_KDF, r: 16 })).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('can be told apart from another named to share a long prefix with it, in key list and key remove', async () => {
    const twin = `${FIRST.slice(0, 63)}1`;
    writeFileSync(keyPath(FIRST), '{garbage');
    writeFileSync(keyPath(twin), '{garbage');
    const list = await runCli(['key', 'list', '--repo', repoDir], { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(`! ${FIRST}`);
    expect(list.stdout).toContain(`! ${twin}`);
    const ambiguous = await runCli(['key', 'remove', FIRST.slice(0, 16), '--repo', repoDir], {
      FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
    });
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.stderr).toContain(twin);
    const removed = await runCli(['key', 'remove', twin, '--repo', repoDir], { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
    expect(removed.code, removed.stderr).toBe(0);
  });

  it('makes check a STOP whose hint is about the key file, not about the backups', async () => {
    writeFileSync(keyPath(FIRST), '{garbage');
    const r = await runCli(['check', '--repo', repoDir], { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/only key files are damaged; the backups are not affected/);
    expect(r.stderr).toMatch(/key remove/);
  });

  it('is reported by the CLI as a warning while the command succeeds', async () => {
    writeFileSync(keyPath(FIRST), '{garbage');
    const r = await runCli(['list', '--repo', repoDir, '--json'], { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });
    expect(r.stderr).toMatch(/warning: key file 000000000000\S* is damaged and was skipped: not JSON/);
    expect(r.code).toBe(0);
  });
});

describe('a generated key file', () => {
  it('never overwrites an existing file', async () => {
    const existing = join(repoDir, '..', 'existing.key');
    writeFileSync(existing, 'the only copy of another key\n');
    const r = await runCli(['init', '--repo', join(repoDir, '..', 'new-repo'), '--generate-key-file', existing], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already exists; it is never overwritten/);
    expect(readFileSync(existing, 'utf8')).toBe('the only copy of another key\n');
  });
});

describe('many key files', () => {
  it('are tried at most MAX_KEY_TRIES times; --key-hint names the key to try first', async () => {
    // planted key files with valid parameters, each a scrypt derivation, named to sort first
    for (let i = 0; i < MAX_KEY_TRIES + 5; i++) {
      const planted = await wrapMasterKey(generateMasterKey('another-repository'), 'not the password', FAST_KDF);
      writeFileSync(keyPath(`0${String(i).padStart(63, '0')}`), JSON.stringify(planted));
    }
    const err = await openRepo(TEST_PASSWORD).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'PERMISSION_DENIED',
      message: expect.stringMatching(new RegExp(`among the ${MAX_KEY_TRIES} tried`)),
      hint: expect.stringMatching(/--key-hint/),
    });
    const repo = await Repository.open(new LocalBackend(repoDir), TEST_PASSWORD, { keyHint: keyName.slice(0, 10) });
    expect(repo.keyName).toBe(keyName);
    await repo.close();
    const cli = await runCli(['list', '--repo', repoDir, '--key-hint', keyName.slice(0, 10)], {
      FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
    });
    expect(cli.code, cli.stderr).toBe(0);
    const viaEnv = await runCli(['list', '--repo', repoDir], {
      FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
      FOLE_BACKUP_KEY_HINT: keyName.slice(0, 10),
    });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
  });
});

describe('a repository that no password can open', () => {
  it('says it has no key files when keys/ is empty or missing, not that the password is wrong', async () => {
    rmSync(keyPath(keyName));
    const empty = await openRepo(TEST_PASSWORD).catch((e: unknown) => e);
    expect(empty).toMatchObject({
      name: 'StopError',
      code: 'CHECKSUM_MISMATCH',
      message: expect.stringMatching(/has no key files \(keys\/ is empty or missing\)/),
    });
    expect((empty as { hint: string }).hint).toMatch(/restore keys\/ from a copy/);
    rmSync(join(repoDir, 'keys'), { recursive: true });
    await expect(openRepo(TEST_PASSWORD)).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
      message: expect.stringMatching(/has no key files/),
    });
  });

  it('says the config and the key files disagree when the config id was changed', async () => {
    const configPath = join(repoDir, 'config');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { id: string };
    const original = config.id;
    writeFileSync(configPath, JSON.stringify({ ...config, id: '00000000-0000-4000-8000-000000000000' }));
    const err = await openRepo(TEST_PASSWORD).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'StopError', code: 'CHECKSUM_MISMATCH' });
    expect((err as Error).message).toMatch(
      new RegExp(
        `config and the key files disagree.*made for repository ${original}` +
          `.*config says 00000000-0000-4000-8000-000000000000`,
      ),
    );
    expect((err as { hint: string }).hint).toMatch(
      /either the config was replaced .*restore the config of repository .* or keys\/ were copied/,
    );
    // without the right password nothing can be told apart: still a wrong password
    await expect(openRepo('not the password')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
  });
});
