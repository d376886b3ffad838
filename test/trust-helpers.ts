/**
 * Shared helpers for the trust tests: actors with real Ed25519 keys, and the first error a call throws (so a
 * test can assert its code and message rather than only that something was thrown).
 */
import { type ActorSigner, generateActorKey, signerFromPem } from '../src/trust/actor-key.js';
import type { ActorKind, Role } from '../src/trust/permissions.js';
import type { NewActor } from '../src/trust/registry.js';

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
