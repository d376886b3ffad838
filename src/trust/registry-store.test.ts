/**
 * The registry as stored objects: what was appended reads back, create-only saves keep two writers from forking
 * the chain, and any damage to registry/ (a gap, a stray name, a changed byte, an object from elsewhere) is
 * TRUST_BROKEN, never a shorter or different registry believed.
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FAST_KDF, TEST_PASSWORD } from '../../test/repo-helpers.js';
import { caught, newTeam, registered, T0, teamRegistry, testActor } from '../../test/trust-helpers.js';
import type { Backend } from '../backend/backend.js';
import { LocalBackend } from '../backend/local.js';
import { MemoryBackend } from '../backend/memory.js';
import { FoleBackupError, StopError } from '../errors.js';
import { Repository } from '../repository/repository.js';
import { PAYLOAD_TYPE, signEnvelope } from './envelope.js';
import { entryValue, type RegistryState } from './registry.js';
import { appendRegistry, createRegistry, readRegistry, registryObjectName } from './registry-store.js';

const team = newTeam();
const { alice, bob, opr } = team;

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const backends: [string, () => Promise<Backend>][] = [
  ['memory', async () => new MemoryBackend()],
  [
    'local',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'fole-registry-'));
      dirs.push(dir);
      return new LocalBackend(join(dir, 'repo'));
    },
  ],
];

async function names(backend: Backend): Promise<string[]> {
  const out: string[] = [];
  for await (const o of backend.list('registry')) out.push(o.name);
  return out.sort();
}

async function stopCode(p: Promise<unknown>): Promise<StopError> {
  const err = await caught(() => p);
  if (!(err instanceof StopError)) throw err;
  return err;
}

describe.each(backends)('the stored registry (%s backend)', (_label, makeBackend) => {
  async function newRepo(): Promise<Repository> {
    return Repository.init(await makeBackend(), TEST_PASSWORD, { kdf: FAST_KDF });
  }

  const threeEntries = (repo: Repository): Promise<RegistryState> => teamRegistry(repo, team);

  it('has no registry until one is created; what is appended reads back equal', async () => {
    const repo = await newRepo();
    expect(await readRegistry(repo)).toBeUndefined();
    const state = await threeEntries(repo);
    expect(await names(repo.backend)).toEqual(['0000000000', '0000000001', '0000000002']);
    const read = await readRegistry(repo);
    expect(read).toEqual(state);
    expect(read?.repositoryId).toBe(repo.config.id);
    expect(read?.head.seq).toBe(2);
    expect(read?.actors.get('opr')).toMatchObject({ role: 'operator', addedBy: 'bob', addedAt: T0.toISOString() });
    // and through a second handle opened with the password, as another process would
    const again = await Repository.open(repo.backend, TEST_PASSWORD);
    expect(await readRegistry(again)).toEqual(state);
  });

  it('refuses a second createRegistry with ALREADY_EXISTS and keeps the first', async () => {
    const repo = await newRepo();
    const first = await createRegistry(repo, { name: 'alice', publicKey: alice.signer.publicKey }, T0);
    const err = await caught(() => createRegistry(repo, { name: 'bob', publicKey: bob.signer.publicKey }, T0));
    expect(err).toBeInstanceOf(FoleBackupError);
    expect((err as FoleBackupError).code).toBe('ALREADY_EXISTS');
    expect(err.message).toBe('this repository already has an actor registry');
    const read = await readRegistry(repo);
    expect(read?.trustId).toBe(first.trustId);
    expect([...(read?.actors.keys() ?? [])]).toEqual(['alice']);
  });

  it('of two appends racing on the same head, exactly one succeeds and the other is ALREADY_EXISTS', async () => {
    const repo = await newRepo();
    const head = await createRegistry(repo, { name: 'alice', publicKey: alice.signer.publicKey }, T0);
    const results = await Promise.allSettled([
      appendRegistry(repo, head, { op: 'add', actor: registered(bob, 'human', 'sysadmin') }, alice, T0),
      appendRegistry(repo, head, { op: 'add', actor: registered(opr, 'human', 'operator') }, alice, T0),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const reason = (lost[0] as PromiseRejectedResult).reason as FoleBackupError;
    expect(reason.code).toBe('ALREADY_EXISTS');
    expect(reason.message).toBe('registry entry 1 was written by someone else meanwhile');
    expect(await readRegistry(repo)).toEqual((won[0] as PromiseFulfilledResult<RegistryState>).value);
  });

  it('is TRUST_BROKEN when an entry is removed from the middle or the start (a gap)', async () => {
    const repo = await newRepo();
    await threeEntries(repo);
    await repo.backend.remove({ type: 'registry', name: '0000000001' });
    const err = await stopCode(readRegistry(repo));
    expect(err.code).toBe('TRUST_BROKEN');
    expect(err.message).toMatch(/registry entry 1 is missing \(the chain has a gap\)$/);

    const other = await newRepo();
    await threeEntries(other);
    await other.backend.remove({ type: 'registry', name: '0000000000' });
    expect((await stopCode(readRegistry(other))).message).toMatch(/registry entry 0 is missing/);
  });

  it('is TRUST_BROKEN when registry/ holds an object with a foreign name', async () => {
    for (const name of ['notes', '00000000001', '000000001', '0000000003x']) {
      const repo = await newRepo();
      await threeEntries(repo);
      await repo.backend.save({ type: 'registry', name }, Buffer.from('x'));
      const err = await stopCode(readRegistry(repo));
      expect(err.code, name).toBe('TRUST_BROKEN');
      expect(err.message, name).toContain(`registry/${name} is not a registry entry name`);
    }
  });

  it('is TRUST_BROKEN when one byte of a stored entry is flipped, wherever it is', async () => {
    const repo = await newRepo();
    await threeEntries(repo);
    const h = { type: 'registry', name: '0000000001' } as const;
    const original = await repo.backend.load(h);
    for (const at of [0, 12, Math.floor(original.length / 2), original.length - 1]) {
      const damaged = Buffer.from(original);
      damaged[at] = (damaged[at] as number) ^ 0x01;
      await repo.backend.save(h, damaged);
      const err = await stopCode(readRegistry(repo));
      expect(err.code, `byte ${at}`).toBe('TRUST_BROKEN');
      expect(err.message, `byte ${at}`).toMatch(/registry entry 1 cannot be read/);
    }
    await repo.backend.save(h, original);
    expect((await readRegistry(repo))?.head.seq).toBe(2);
    // an empty object too
    await repo.backend.save(h, Buffer.alloc(0));
    expect((await stopCode(readRegistry(repo))).code).toBe('TRUST_BROKEN');
  });

  it('is TRUST_BROKEN for an entry copied from another repository, or moved to another position', async () => {
    const repo = await newRepo();
    await threeEntries(repo);
    const elsewhere = await newRepo();
    await threeEntries(elsewhere);
    const foreign = await elsewhere.backend.load({ type: 'registry', name: '0000000002' });
    await repo.backend.save({ type: 'registry', name: '0000000002' }, foreign);
    const err = await stopCode(readRegistry(repo));
    expect(err.code).toBe('TRUST_BROKEN');
    expect(err.message).toMatch(/registry entry 2 cannot be read/);

    // the name is bound into each entry's sealing, so entry 1's bytes cannot stand in as entry 3
    const own = await newRepo();
    await threeEntries(own);
    const one = await own.backend.load({ type: 'registry', name: '0000000001' });
    await own.backend.save({ type: 'registry', name: '0000000003' }, one);
    expect((await stopCode(readRegistry(own))).message).toMatch(/registry entry 3 cannot be read/);
  });

  it('is TRUST_BROKEN, naming the entry, for a readable entry that replay refuses', async () => {
    const repo = await newRepo();
    const state = await threeEntries(repo);
    // sealed with the right key, linked correctly, but signed by bob while naming alice as its signer
    const body = {
      v: 1 as const,
      trustId: state.trustId,
      seq: 3,
      prev: state.head.digest,
      time: T0.toISOString(),
      signer: 'alice',
      action: { op: 'remove' as const, name: 'opr' },
    };
    const env = signEnvelope(PAYLOAD_TYPE.registryEntry, entryValue(body), [bob.signer]);
    const name = registryObjectName(3);
    await repo.createJson('registry', name, env, Buffer.from(`fole-registry:${name}`));
    const err = await stopCode(readRegistry(repo));
    expect(err.code).toBe('TRUST_BROKEN');
    expect(err.message).toBe('the actor registry fails verification: registry entry 3: bad signature by alice');
  });

  it('writes nothing for a refused append, and says why', async () => {
    const repo = await newRepo();
    const state = await threeEntries(repo);
    const before = await names(repo.backend);
    const cases: [Promise<unknown>, string, RegExp][] = [
      [
        appendRegistry(repo, state, { op: 'remove', name: 'bob' }, opr, T0),
        'PERMISSION_DENIED',
        /^registry: signer opr is not a human sysadmin$/,
      ],
      [
        appendRegistry(repo, state, { op: 'remove', name: 'bob' }, { name: 'alice', signer: bob.signer }, T0),
        'PERMISSION_DENIED',
        /^registry: bad signature by alice$/,
      ],
      [
        appendRegistry(
          repo,
          state,
          { op: 'add', actor: registered(testActor('x'), 'human', 'auditor') },
          testActor('x'),
          T0,
        ),
        'PERMISSION_DENIED',
        /^registry: signer x is not a registered actor/,
      ],
      [
        appendRegistry(
          repo,
          state,
          { op: 'grant', name: 'opr', permission: 'backup.create', project: 'P1' },
          alice,
          T0,
        ),
        'USAGE',
        /cannot be limited to a project/,
      ],
      [
        appendRegistry(
          repo,
          state,
          { op: 'add', actor: { ...registered(opr, 'human', 'auditor'), name: 'opr2' } },
          alice,
          T0,
        ),
        'USAGE',
        /^registry: opr already has that public key$/,
      ],
    ];
    for (const [p, code, message] of cases) {
      const err = await caught(() => p);
      expect(err).toBeInstanceOf(FoleBackupError);
      expect((err as FoleBackupError).code, String(message)).toBe(code);
      expect(err.message).toMatch(message);
    }
    expect(await names(repo.backend)).toEqual(before);
    // the last sysadmin: remove bob, then alice may not remove herself
    const one = await appendRegistry(repo, state, { op: 'remove', name: 'bob' }, alice, T0);
    const last = await caught(() => appendRegistry(repo, one, { op: 'remove', name: 'alice' }, alice, T0));
    expect((last as FoleBackupError).code).toBe('USAGE');
    expect(last.message).toBe('registry: alice is the last sysadmin');
    expect(await names(repo.backend)).toEqual([...before, '0000000003']);
  });
});

describe('the stored registry on disk', () => {
  it('is TRUST_BROKEN for a stray file put straight into registry/, and stores entries as 0600 files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fole-registry-'));
    dirs.push(dir);
    const repo = await Repository.init(new LocalBackend(join(dir, 'repo')), TEST_PASSWORD, { kdf: FAST_KDF });
    await createRegistry(repo, { name: 'alice', publicKey: alice.signer.publicKey }, T0);
    expect(await readdir(join(dir, 'repo', 'registry'))).toEqual(['0000000000']);
    expect((await stat(join(dir, 'repo', 'registry', '0000000000'))).mode & 0o777).toBe(0o600);
    await writeFile(join(dir, 'repo', 'registry', 'README'), 'hello');
    const err = await stopCode(readRegistry(repo));
    expect(err.code).toBe('TRUST_BROKEN');
    expect(err.message).toContain('registry/README is not a registry entry name');
  });
});
