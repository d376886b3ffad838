/**
 * The pin is this machine's memory of the newest registry it verified: a repository whose registry is gone,
 * shorter, forked or replaced must be refused (TRUST_ROLLBACK), never quietly believed, and the pin file itself
 * is a file under a name the repository's plaintext id must not be able to steer.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAST_KDF, TEST_PASSWORD } from '../../test/repo-helpers.js';
import { caught, newTeam, registered, T0, teamRegistry, testActor } from '../../test/trust-helpers.js';
import { MemoryBackend } from '../backend/memory.js';
import { StopError } from '../errors.js';
import { Repository } from '../repository/repository.js';
import { openGate } from './gate.js';
import type { RegistryState } from './registry.js';
import { appendRegistry, createRegistry, readRegistry } from './registry-store.js';
import { checkAgainstPin, defaultStateDir, type Pin, readPin, writePin } from './trust-state.js';

const team = newTeam();
const { alice, bob, opr } = team;

let root: string;
let stateDir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fole-pin-'));
  stateDir = join(root, 'state');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A repository whose registry has alice, bob and opr (entries 0..2). */
async function repoWithRegistry(): Promise<{ repo: Repository; state: RegistryState }> {
  const repo = await Repository.init(new MemoryBackend(), TEST_PASSWORD, { kdf: FAST_KDF });
  return { repo, state: await teamRegistry(repo, team) };
}

const open = (repo: Repository) =>
  openGate(repo, { actor: 'alice', signer: alice.signer }, 'list', {}, { stateDir, now: new Date() });

async function rollback(repo: Repository): Promise<StopError> {
  const err = await caught(() => open(repo));
  if (!(err instanceof StopError)) throw err;
  expect(err.code).toBe('TRUST_ROLLBACK');
  return err;
}

async function removeAll(repo: Repository, from = 0): Promise<void> {
  const names: string[] = [];
  for await (const o of repo.backend.list('registry')) names.push(o.name);
  for (const name of names) if (Number(name) >= from) await repo.backend.remove({ type: 'registry', name });
}

describe('the pin a client keeps', () => {
  it('is written when the gate opens a registry, as a 0600 file named by the repository id', async () => {
    const { repo, state } = await repoWithRegistry();
    expect(await readPin(stateDir, repo.config.id)).toBeUndefined();
    await open(repo);
    const pin = await readPin(stateDir, repo.config.id);
    expect(pin).toEqual({ v: 1, repositoryId: repo.config.id, trustId: state.trustId, registry: state.head });
    expect(await readdir(stateDir)).toEqual([`${repo.config.id}.json`]);
    expect((await stat(join(stateDir, `${repo.config.id}.json`))).mode & 0o777).toBe(0o600);
  });

  it('is not written for a repository without a registry (nothing to pin)', async () => {
    const repo = await Repository.init(new MemoryBackend(), TEST_PASSWORD, { kdf: FAST_KDF });
    const ctx = await openGate(repo, {}, 'list', {}, { stateDir });
    expect(ctx.mode).toBe('single-operator');
    expect(await readPin(stateDir, repo.config.id)).toBeUndefined();
  });

  it('refuses a repository whose registry was deleted: never back to single-operator mode', async () => {
    const { repo } = await repoWithRegistry();
    await open(repo);
    await removeAll(repo);
    expect(await readRegistry(repo)).toBeUndefined();
    expect((await rollback(repo)).message).toMatch(/is gone, but this machine verified one \(3 entries\)/);
  });

  it('refuses a registry cut back to a shorter prefix (which would bring back a removed actor)', async () => {
    const { repo, state } = await repoWithRegistry();
    await appendRegistry(repo, state, { op: 'remove', name: 'opr' }, alice, T0);
    await open(repo);
    await removeAll(repo, 3);
    expect((await readRegistry(repo))?.actors.get('opr')?.removedSeq).toBeUndefined();
    expect((await rollback(repo)).message).toMatch(/has 3 entries, fewer than the 4 verified here/);
  });

  it('refuses a fork: the same length, or longer, with a different entry where the pin is', async () => {
    const { repo } = await repoWithRegistry();
    await open(repo);
    await removeAll(repo, 2);
    const atOne = await readRegistry(repo);
    if (atOne === undefined) throw new Error('registry expected');
    const fork = await appendRegistry(repo, atOne, { op: 'add', actor: registered(opr, 'human', 'sysadmin') }, bob, T0);
    expect(fork.head.seq).toBe(2);
    expect((await rollback(repo)).message).toMatch(/does not extend the one verified here \(entry 2 differs: a fork\)/);
    await appendRegistry(repo, fork, { op: 'remove', name: 'alice' }, opr, T0);
    expect((await rollback(repo)).message).toMatch(/entry 2 differs: a fork/);
    // the refused registry did not move the pin
    expect((await readPin(stateDir, repo.config.id))?.registry.seq).toBe(2);
  });

  it('refuses a registry made anew under another trust id, even a longer one', async () => {
    const { repo } = await repoWithRegistry();
    await open(repo);
    await removeAll(repo);
    let state = await createRegistry(repo, { name: 'alice', publicKey: alice.signer.publicKey }, T0);
    for (const a of [bob, opr, testActor('x')])
      state = await appendRegistry(repo, state, { op: 'add', actor: registered(a, 'human', 'auditor') }, alice, T0);
    expect(state.head.seq).toBe(3);
    expect((await rollback(repo)).message).toMatch(/is a different registry \(another trust id\)/);
  });

  it('accepts a registry that extends the pinned one, and advances the pin', async () => {
    const { repo, state } = await repoWithRegistry();
    await open(repo);
    const longer = await appendRegistry(repo, state, { op: 'remove', name: 'opr' }, alice, T0);
    const ctx = await open(repo);
    expect(ctx.registry?.head).toEqual(longer.head);
    expect((await readPin(stateDir, repo.config.id))?.registry).toEqual(longer.head);
    // and from then on the entry it was pinned at before is a rollback
    await removeAll(repo, 3);
    expect((await rollback(repo)).message).toMatch(/fewer than the 4 verified here/);
  });

  it('is TRUST_BROKEN when the pin file is damaged', async () => {
    const { repo, state } = await repoWithRegistry();
    await open(repo);
    const path = join(stateDir, `${repo.config.id}.json`);
    const good = JSON.parse(await readFile(path, 'utf8')) as Pin;
    const damaged: string[] = [
      '',
      '{',
      'null',
      '[]',
      JSON.stringify({ ...good, v: 2 }),
      JSON.stringify({ ...good, repositoryId: '6f1c2f0e-8a55-4a4e-9d2a-6a8f0b1c2d3e' }),
      JSON.stringify({ ...good, trustId: 7 }),
      JSON.stringify({ ...good, registry: { seq: -1, digest: state.head.digest } }),
      JSON.stringify({ ...good, registry: { seq: 1.5, digest: state.head.digest } }),
      JSON.stringify({ ...good, registry: { seq: 2, digest: state.head.digest.toUpperCase() } }),
      JSON.stringify({ ...good, registry: null }),
    ];
    for (const text of damaged) {
      await writeFile(path, text);
      const err = await caught(() => open(repo));
      expect((err as StopError).code, text).toBe('TRUST_BROKEN');
      expect(err.message, text).toBe(`the trust state ${path} is damaged`);
    }
    await writeFile(path, JSON.stringify(good));
    await expect(open(repo)).resolves.toMatchObject({ mode: 'registry' });
  });

  it('never lets a repository id name a path: "/", "..", or anything but [A-Za-z0-9_-]', async () => {
    const { state } = await repoWithRegistry();
    for (const id of ['../escape', 'a/b', '..', '.', '', 'a.json', 'x\u0000', `${'a'.repeat(65)}`, '/etc/passwd']) {
      const read = await caught(() => readPin(stateDir, id));
      expect((read as StopError).code, id).toBe('TRUST_BROKEN');
      expect(read.message, id).toBe('the repository id is not one this tool makes');
      const write = await caught(() => writePin(stateDir, { ...state, repositoryId: id }));
      expect((write as StopError).code, id).toBe('TRUST_BROKEN');
    }
    // nothing was written anywhere under the test's folder but the (empty) state folder
    expect(await readdir(root)).toEqual(['state']);
    expect(await readdir(stateDir)).toEqual([]);
  });
});

describe('checkAgainstPin', () => {
  const head = { seq: 2, digest: 'a'.repeat(64) };
  const pin: Pin = { v: 1, repositoryId: 'r', trustId: 'f'.repeat(32), registry: head };
  const state = (digests: string[], trustId = pin.trustId): RegistryState => ({
    trustId,
    repositoryId: 'r',
    head: { seq: digests.length - 1, digest: digests[digests.length - 1] as string },
    headTime: '2026-03-01T12:00:00.000Z',
    actors: new Map(),
    digests,
  });

  it('accepts anything without a pin, the pinned head, and extensions of it', () => {
    expect(() => checkAgainstPin(undefined, undefined, 'x')).not.toThrow();
    expect(() => checkAgainstPin(undefined, state(['b'.repeat(64)]), 'x')).not.toThrow();
    expect(() => checkAgainstPin(pin, state(['0', '1', head.digest]), 'x')).not.toThrow();
    expect(() => checkAgainstPin(pin, state(['0', '1', head.digest, '3']), 'x')).not.toThrow();
  });

  it('refuses, naming the location, a missing, shorter, forked or foreign registry', () => {
    const cases: [RegistryState | undefined, RegExp][] = [
      [undefined, /^the actor registry of local:\/r is gone/],
      [state(['0', head.digest]), /has 2 entries, fewer than the 3/],
      [state(['0', '1', 'c'.repeat(64)]), /entry 2 differs: a fork/],
      [state(['0', '1', 'c'.repeat(64), '3']), /entry 2 differs: a fork/],
      [state(['0', '1', head.digest], 'e'.repeat(32)), /another trust id/],
    ];
    for (const [s, message] of cases) {
      const err = (() => {
        try {
          checkAgainstPin(pin, s, 'local:/r');
        } catch (e) {
          return e as StopError;
        }
        throw new Error(`no refusal for ${String(message)}`);
      })();
      expect(err.code).toBe('TRUST_ROLLBACK');
      expect(err.message).toMatch(message);
    }
  });
});

describe('defaultStateDir', () => {
  it('prefers FOLE_BACKUP_STATE_DIR, then XDG_STATE_HOME, then ~/.local/state, ignoring empty values', () => {
    expect(defaultStateDir({ FOLE_BACKUP_STATE_DIR: '/s', XDG_STATE_HOME: '/x' })).toBe('/s');
    expect(defaultStateDir({ FOLE_BACKUP_STATE_DIR: '', XDG_STATE_HOME: '/x' })).toBe('/x/fole-backup');
    expect(defaultStateDir({ XDG_STATE_HOME: '' })).toMatch(/\/\.local\/state\/fole-backup$/);
  });
});
