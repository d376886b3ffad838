/**
 * Shared helpers for the trust tests: actors with real Ed25519 keys, and the first error a call throws (so a
 * test can assert its code and message rather than only that something was thrown).
 */
import { type ActorSigner, generateActorKey, signerFromPem } from '../src/trust/actor-key.js';
import type { ActorKind, Role } from '../src/trust/permissions.js';
import type { NewActor, RegistryState } from '../src/trust/registry.js';
import { appendRegistry, createRegistry } from '../src/trust/registry-store.js';

type RegistryRepository = Parameters<typeof createRegistry>[0];

/** An actor's name and private key, as a caller would hold them. */
export interface TestActor {
  name: string;
  signer: ActorSigner;
}

export function testActor(name: string): TestActor {
  return { name, signer: signerFromPem(generateActorKey().privatePem, `${name}.key`) };
}

/** The actor as a registry entry registers it. */
export function registered(a: TestActor, kind: ActorKind, role: Role): NewActor {
  return { name: a.name, kind, role, publicKey: a.signer.publicKey };
}

/** What `f` throws (or rejects with); fails the test if it returns. */
export async function caught(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`threw a non-Error: ${String(err)}`);
  }
  throw new Error('expected an error, but it returned');
}

/** When the registry entries of these tests are made. */
export const T0 = new Date('2026-03-01T12:00:00.000Z');

/** Alice (the first sysadmin), bob (a second human sysadmin) and opr (an operator). */
export interface Team {
  alice: TestActor;
  bob: TestActor;
  opr: TestActor;
}

export function newTeam(): Team {
  return { alice: testActor('alice'), bob: testActor('bob'), opr: testActor('opr') };
}

/** Make the team's registry in `repo`: entry 0 registers alice, 1 adds bob (by alice), 2 adds opr (by bob). */
export async function teamRegistry(repo: RegistryRepository, t: Team): Promise<RegistryState> {
  let state = await createRegistry(repo, { name: 'alice', publicKey: t.alice.signer.publicKey }, T0);
  state = await appendRegistry(repo, state, { op: 'add', actor: registered(t.bob, 'human', 'sysadmin') }, t.alice, T0);
  return appendRegistry(repo, state, { op: 'add', actor: registered(t.opr, 'human', 'operator') }, t.bob, T0);
}
