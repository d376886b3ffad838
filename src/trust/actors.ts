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
import { activeSysadmins, isActive, type RegistryAction, type RegistryState } from './registry.js';
import { appendRegistry, createRegistry, readRegistry } from './registry-store.js';
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
  if (existing !== undefined) {
    throw new FoleBackupError('ALREADY_EXISTS', 'this repository already has an actor registry', {
      hint: 'see it with `fole-backup actor list`; add actors with `fole-backup actor add`',
    });
  }
  const state = await createRegistry(repo, admin);
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
  if (trust.registry === undefined) {
    throw new StopError('PERMISSION_DENIED', 'this repository has no actor registry (single-operator mode)', {
      hint: 'make one first: `fole-backup actor bootstrap --admin NAME --admin-public-key FILE`',
    });
  }
  if (credentials.signer === undefined || !trust.principal.authenticated) {
    throw new StopError('PERMISSION_DENIED', 'registry changes are signed by a registered sysadmin', {
      hint: 'run as one: --actor NAME --actor-key FILE',
    });
  }
  const next = await appendRegistry(repo, trust.registry, action, {
    name: trust.principal.name,
    signer: credentials.signer,
  });
  await writePin(stateDir, next);
  return next;
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
