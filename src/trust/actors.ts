/**
 * Managing the registry through the gate: make it (init --admin, actor
 * bootstrap), change it (add, remove, grant, revoke) as the authenticated
 * sysadmin, and describe it (actor list). Every change is pinned on this client
 * right away, so the client never accepts a registry older than one it wrote.
 */
import { FoleBackupError, StopError } from '../errors.js';
import type { SealedObjects } from '../repository/slices.js';
import type { Credentials, TrustContext } from './gate.js';
import type { Grant } from './permissions.js';
import { addSignature, isEnvelope, parsePayload, PAYLOAD_TYPE, signEnvelope, type Envelope } from './envelope.js';
import {
  activeSysadmins,
  entryValue,
  isActive,
  missingSignatures,
  type RegistryAction,
  type RegistryEntryBody,
  type RegistryState,
} from './registry.js';
import {
  appendRegistry,
  appendSignedEntry,
  createRegistry,
  nextBody,
  readRegistry,
  reopenRegistry,
} from './registry-store.js';
import { checkAgainstPin, readPin, writePin } from './trust-state.js';

type Repo = SealedObjects & { readonly config: { readonly id: string } };

/**
 * Make the registry of a repository that has none, with `admin` as its first (human) sysadmin. Refused
 * (TRUST_ROLLBACK) where this client has verified a registry for the repository before: a deleted registry is
 * never replaced by a new one from here.
 */
export async function bootstrapRegistry(
  repo: Repo,
  admin: { name: string; publicKey: string },
  stateDir: string,
): Promise<RegistryState> {
  const pin = await readPin(stateDir, repo.config.id);
  const existing = await readRegistry(repo);
  checkAgainstPin(pin, existing, repo.backend.location);
  if (existing !== undefined && existing.leftAt === undefined) {
    throw new FoleBackupError('ALREADY_EXISTS', 'this repository already has an actor registry', {
      hint: 'see it with `fole-backup actor list`; add actors with `fole-backup actor add`',
    });
  }
  // after a leave, the chain goes on: registry mode again, with the actors of before still removed
  const state =
    existing === undefined ? await createRegistry(repo, admin) : await reopenRegistry(repo, existing, admin);
  await writePin(stateDir, state);
  return state;
}

/** Sign and append one registry change as the principal the gate established, then pin the new head. */
export async function changeRegistry(
  repo: SealedObjects,
  trust: TrustContext,
  credentials: Credentials,
  action: RegistryAction,
  stateDir: string,
): Promise<RegistryState> {
  const registry = inRegistryMode(trust);
  if (credentials.signer === undefined || !trust.principal.authenticated) {
    throw new StopError('PERMISSION_DENIED', 'registry changes are signed by a registered sysadmin', {
      hint: 'run as one: --actor NAME --actor-key FILE',
    });
  }
  const next = await appendRegistry(repo, registry, action, {
    name: trust.principal.name,
    signer: credentials.signer,
  });
  await writePin(stateDir, next);
  return next;
}

/** The registry of a repository in registry mode; PERMISSION_DENIED (with what to do) in single-operator mode. */
function inRegistryMode(trust: TrustContext): RegistryState {
  if (trust.registry === undefined || trust.registry.leftAt !== undefined) {
    const left = trust.registry?.leftAt;
    throw new StopError(
      'PERMISSION_DENIED',
      left === undefined
        ? 'this repository has no actor registry (single-operator mode)'
        : `this repository left registry mode at registry entry ${left} (single-operator mode)`,
      { hint: 'make one first: `fole-backup actor bootstrap --admin NAME --admin-public-key FILE`' },
    );
  }
  return trust.registry;
}

/** Where a proposal to leave registry mode stands: appended (the new state), or still lacking signatures. */
export type LeaveOutcome =
  | { left: true; state: RegistryState }
  | { left: false; proposal: Envelope; missing: string[] };

/**
 * Sign the entry that leaves registry mode, as the authenticated sysadmin: a new one after the registry's head,
 * or `proposal`, the same entry another sysadmin signed first (and handed over as a file). Once every sysadmin
 * active now has signed, it is appended and pinned; until then the proposal comes back with who is missing. A
 * proposal made for another head (the registry changed since) is refused: start again.
 */
export async function leaveRegistry(
  repo: SealedObjects,
  trust: TrustContext,
  credentials: Credentials,
  proposal: Envelope | undefined,
  stateDir: string,
): Promise<LeaveOutcome> {
  const registry = inRegistryMode(trust);
  if (credentials.signer === undefined || !trust.principal.authenticated) {
    throw new StopError('PERMISSION_DENIED', 'leaving registry mode is signed by every sysadmin', {
      hint: 'run as one: --actor NAME --actor-key FILE',
    });
  }
  let env: Envelope;
  if (proposal === undefined) {
    env = signEnvelope(
      PAYLOAD_TYPE.registryEntry,
      entryValue(nextBody(registry, trust.principal.name, { op: 'leave' })),
      [credentials.signer],
    );
  } else {
    const body = isEnvelope(proposal) ? (parsePayload(proposal) as Partial<RegistryEntryBody> | undefined) : undefined;
    if (proposal.payloadType !== PAYLOAD_TYPE.registryEntry || body?.action?.op !== 'leave') {
      throw new FoleBackupError('USAGE', 'the file is not a proposal to leave registry mode');
    }
    if (body.trustId !== registry.trustId || body.seq !== registry.head.seq + 1 || body.prev !== registry.head.digest) {
      throw new FoleBackupError('USAGE', 'the proposal was made for another state of the registry: it changed since', {
        hint: 'start again: `fole-backup actor leave --out FILE`, then each sysadmin signs it',
      });
    }
    env = addSignature(proposal, credentials.signer);
  }
  const missing = missingSignatures(registry, env);
  if (missing.length > 0) return { left: false, proposal: env, missing };
  const state = await appendSignedEntry(repo, registry, env);
  await writePin(stateDir, state);
  return { left: true, state };
}

/** One actor as `actor list` shows it. */
export interface ActorListing {
  name: string;
  kind: string;
  role: string;
  grants: Grant[];
  fingerprint: string;
  addedAt: string;
  addedBy: string;
  removed: boolean;
}

/** Every actor ever registered, in the order they were added, and who may change the registry now. */
export function listActors(state: RegistryState): { actors: ActorListing[]; sysadmins: string[] } {
  const actors = [...state.actors.values()]
    .sort((a, b) => a.addedSeq - b.addedSeq)
    .map((a) => ({
      name: a.name,
      kind: a.kind,
      role: a.role,
      grants: a.grants,
      fingerprint: a.fingerprint,
      addedAt: a.addedAt,
      addedBy: a.addedBy,
      removed: !isActive(a),
    }));
  return { actors, sysadmins: activeSysadmins(state).map((a) => a.name) };
}
