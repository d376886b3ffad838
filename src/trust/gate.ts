/**
 * The gate every operation passes at its entry point, before any work: read
 * and verify the registry (against this client's pin), prove who the caller is
 * from a signed request, and check the permission the operation needs. The
 * CLI, and later the HTTP server and the agent interface, call this one path,
 * so they cannot disagree about who may do what.
 *
 * What the gate cannot do: whoever can read the repository secret can open the
 * repository and call the library without it. The gate protects the repository
 * from callers that do not hold the secret (an agent talking to a server that
 * does): see docs/TRUST.md.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { FoleBackupError, StopError } from '../errors.js';
import { currentUser } from '../host/current-user.js';
import type { SealedObjects } from '../repository/slices.js';
import type { ActorSigner } from './actor-key.js';
import { hasValidSignature, isEnvelope, parsePayload, PAYLOAD_TYPE, signEnvelope, type Envelope } from './envelope.js';
import { OPERATIONS, type OperationName } from './operations.js';
import { authorize, type ActorKind, type Grant, type Role, type Scope } from './permissions.js';
import { activeSysadmins, isActive, type RegistryState } from './registry.js';
import { readRegistry } from './registry-store.js';
import { requiredApprovals } from './approvals.js';
import { checkClock } from './clock.js';
import { checkAgainstPin, checkAuditAgainstPin, readPin, writePin } from './trust-state.js';
import { auditDigestAt, lastAuditEntry } from './audit-store.js';
import type { RequestNonces } from './request-nonces.js';

/** Who the caller says they are: a name, and the private key that proves it (absent in single-operator mode). */
export interface Credentials {
  actor?: string;
  signer?: ActorSigner;
}

/** The caller as the gate established them. */
export interface Principal {
  name: string;
  kind: ActorKind;
  role: Role;
  grants: readonly Grant[];
  /** True when a signature by a registered key proved the name; false in single-operator mode. */
  authenticated: boolean;
}

/** The trust side of an open repository: its mode, its registry and who is asking. */
export interface TrustContext {
  mode: 'registry' | 'single-operator';
  /** The registry as verified; in single-operator mode too, once a repository left registry mode (leftAt). */
  registry: RegistryState | undefined;
  principal: Principal;
  /** The signed request that proved the principal (registry mode): the audit log keeps it. */
  request: Envelope | undefined;
  /** Distinct human approvals the operation needs before it may run (approval-flow.ts); 0 = none. */
  approvalsRequired: number;
  /** Approval requests the operation made or used: its audit entry names them. */
  approvalsUsed: string[];
}

/** How long a signed request stays valid either side of the verifier's clock. */
export const REQUEST_WINDOW_MS = 5 * 60 * 1000;

/** The signed body of a request: who asks for which operation, on which registry, when. */
export interface RequestBody {
  v: 1;
  trustId: string;
  actor: string;
  op: OperationName;
  /** What the operation touches: a request signed for one project is not valid for another or for all. */
  scope: Scope;
  time: string;
  /**
   * Random, so no two requests are the same bytes. A server that accepts requests over a network gives
   * authenticate its RequestNonces, which refuses a repeat; the CLI signs and checks in one process.
   */
  nonce: string;
}

/** Sign a request for `op` as `actor` (the CLI does this with the caller's key; a server's client would too). */
export function signRequest(
  signer: ActorSigner,
  trustId: string,
  actor: string,
  op: OperationName,
  now = new Date(),
  scope: Scope = {},
): Envelope {
  const body: RequestBody = {
    v: 1,
    trustId,
    actor,
    op,
    scope: scope.project === undefined ? {} : { project: scope.project },
    time: now.toISOString(),
    nonce: randomBytes(16).toString('hex'),
  };
  return signEnvelope(PAYLOAD_TYPE.request, { ...body, scope: { ...body.scope } }, [signer]);
}

/**
 * Prove who sent a signed request: the named actor is registered and not removed, the request is signed by
 * that actor's registered key, for this registry, this operation and this scope, its time is within
 * REQUEST_WINDOW_MS of `now`, and (given `nonces`, as a server that takes requests over a network must) it
 * was not accepted before. Throws StopError PERMISSION_DENIED saying what failed; never says more about the
 * registry than the caller needs.
 */
export function authenticate(
  registry: RegistryState,
  request: unknown,
  op: OperationName,
  now = new Date(),
  scope: Scope = {},
  nonces?: RequestNonces,
): Principal {
  const deny = (why: string, hint?: string): StopError =>
    new StopError('PERMISSION_DENIED', `cannot prove who is asking: ${why}`, {
      hint: hint ?? 'give your registered name and private key: --actor NAME --actor-key FILE',
    });
  if (!isEnvelope(request) || request.payloadType !== PAYLOAD_TYPE.request) throw deny('not a signed request');
  const body = parsePayload(request) as Partial<RequestBody> | undefined;
  if (body === undefined || body.v !== 1 || typeof body.actor !== 'string' || typeof body.scope !== 'object') {
    throw deny('a malformed request');
  }
  // one message for an unknown name and a wrong key: a caller without the key learns nothing about who exists
  const actor = registry.actors.get(body.actor);
  if (!isActive(actor) || !hasValidSignature(request, actor.fingerprint, actor.publicKey)) {
    throw deny(
      `${body.actor} is not a registered actor with the key given`,
      `give your registered name and the private key whose public half was registered for it (--actor-key ` +
        'FILE); a sysadmin registers actors (actor add)',
    );
  }
  if (body.trustId !== registry.trustId) throw deny('the request was made for another repository');
  if (body.op !== op) throw deny(`the request was signed for ${String(body.op)}, not ${op}`);
  if (body.scope?.project !== scope.project) {
    throw deny(
      `the request was signed for ` +
        (body.scope?.project === undefined ? 'the whole repository' : `project ${body.scope.project}`),
    );
  }
  const t = typeof body.time === 'string' ? Date.parse(body.time) : Number.NaN;
  if (!Number.isFinite(t) || Math.abs(t - now.getTime()) > REQUEST_WINDOW_MS) {
    throw deny('the request is not fresh (signed more than 5 minutes from now)', 'check the clocks, then try again');
  }
  if (nonces !== undefined) {
    const seen =
      typeof body.nonce === 'string' && /^[0-9a-f]{32}$/.test(body.nonce)
        ? nonces.admit(actor.name, body.nonce, t, now.getTime())
        : 'replay';
    if (seen === 'replay')
      throw deny('the request was used before (a replay), or has no valid nonce', 'sign a new one');
    if (seen === 'full') throw deny('too many requests in the last minutes', 'try again in a few minutes');
  }
  return { name: actor.name, kind: actor.kind, role: actor.role, grants: actor.grants, authenticated: true };
}

/** Where the gate keeps this client's pins, and the clock it judges by. */
export interface GateOptions {
  stateDir: string;
  now?: Date;
}

/**
 * Open the trust side of a repository for `op`: verify the registry against this client's pin (TRUST_ROLLBACK
 * if it is older or forked, TRUST_BROKEN if it fails verification), establish the principal, and check the
 * permission `op` needs on `scope` (PERMISSION_DENIED naming it and who can grant it). Without a registry the
 * repository is in single-operator mode: the caller holds the repository secret and is sysadmin.
 */
export async function openGate(
  repo: SealedObjects & { readonly config: { readonly id: string } },
  credentials: Credentials,
  op: OperationName,
  scope: Scope,
  opts: GateOptions,
): Promise<TrustContext> {
  const registry = await readRegistry(repo);
  const pin = await readPin(opts.stateDir, repo.config.id);
  checkAgainstPin(pin, registry, repo.backend.location);
  if (pin?.audit !== undefined && pin.trustId === registry?.trustId) {
    checkAuditAgainstPin(pin, await auditDigestAt(repo, pin.audit.seq), repo.backend.location);
  }
  if (registry === undefined) await refuseForgottenRegistry(repo);
  if (registry !== undefined && registry.repositoryId !== repo.config.id) {
    throw new StopError(
      'TRUST_BROKEN',
      'the actor registry belongs to another repository (its repository id differs)',
      {
        hint: 'registry objects were copied in from another repository; a sysadmin must investigate',
      },
    );
  }
  if (registry !== undefined && (pin === undefined || registry.head.seq > pin.registry.seq)) {
    await writePin(opts.stateDir, registry);
  }
  if (registry !== undefined && registry.leftAt === undefined && OPERATIONS[op].permission === undefined) {
    throw new FoleBackupError('ALREADY_EXISTS', 'this repository already has an actor registry', {
      hint: 'see it with `fole-backup actor list`; add actors with `fole-backup actor add`',
    });
  }
  if (registry === undefined) return singleOperator(credentials);
  // left registry mode: single-operator again, but the chain stays, so audit entries still name its head
  if (registry.leftAt !== undefined) return { ...singleOperator(credentials), registry };
  if (credentials.actor === undefined || credentials.signer === undefined) {
    throw new StopError(
      'PERMISSION_DENIED',
      `this repository has an actor registry: ${OPERATIONS[op].what} needs a registered actor`,
      { hint: 'say who you are: --actor NAME --actor-key FILE (or FOLE_BACKUP_ACTOR and FOLE_BACKUP_ACTOR_KEY)' },
    );
  }
  const now = opts.now ?? new Date();
  const request = signRequest(credentials.signer, registry.trustId, credentials.actor, op, now, scope);
  const principal = authenticate(registry, request, op, now, scope);
  const ctx: TrustContext = { mode: 'registry', registry, principal, request, approvalsRequired: 0, approvalsUsed: [] };
  requirePermission(ctx, op, scope);
  const rule: { what: string; humanDecision?: true; approvable?: true } = OPERATIONS[op];
  if (principal.kind === 'agent' && rule.humanDecision === true) {
    // an operation that can carry a human's approval asks for one at its approval step; the others a human runs
    if (rule.approvable !== true) {
      throw new StopError('AMBIGUOUS_INTENT', `${rule.what} is a human decision: ${principal.name} is an agent`, {
        hint: 'show the plan (--dry-run) to a human, who runs the command themselves',
      });
    }
    ctx.approvalsRequired = requiredApprovals({ op, requesterKind: principal.kind });
  }
  // approvals are judged and made by the clock: check it before any work
  if (ctx.approvalsRequired > 0 || op === 'approve') await checkClock(repo, now);
  return ctx;
}

/**
 * A repository without a registry whose newest audit entry was checked against one has lost its registry:
 * someone deleted registry/. Entries are sealed with the repository key, so without the secret nobody can
 * forge an audit log that hides this; it catches the deletion on a machine that never pinned the registry.
 */
async function refuseForgottenRegistry(
  repo: SealedObjects & { readonly config: { readonly id: string } },
): Promise<void> {
  const last = await lastAuditEntry(repo);
  if (last?.registryHead === null || last === undefined) return;
  throw new StopError(
    'TRUST_ROLLBACK',
    `the actor registry of ${repo.backend.location} is gone, but audit entry ${last.seq} was checked against ` +
      `registry entry ${last.registryHead.seq}`,
    {
      hint:
        'someone removed registry objects: do not use the repository until a sysadmin has restored registry/ ' +
        '(from an offsite copy) and found out why',
    },
  );
}

/** The trust context of a repository without a registry: the caller holds its secret and is sysadmin. */
export function singleOperator(credentials: Credentials): TrustContext {
  return {
    mode: 'single-operator',
    registry: undefined,
    principal: {
      name: credentials.actor ?? `${currentUser()}@${hostname()}`,
      kind: 'human',
      role: 'sysadmin',
      grants: [],
      authenticated: false,
    },
    request: undefined,
    approvalsRequired: 0,
    approvalsUsed: [],
  };
}

/** Throws StopError PERMISSION_DENIED unless the principal may run `op` on `scope`. */
export function requirePermission(ctx: TrustContext, op: OperationName, scope: Scope = {}): void {
  const permission = OPERATIONS[op].permission;
  if (permission === undefined) return;
  const verdict = authorize(ctx.principal, permission, scope);
  if (verdict.allowed) return;
  const admins = ctx.registry === undefined ? [] : activeSysadmins(ctx.registry).map((a) => a.name);
  throw new StopError('PERMISSION_DENIED', `${OPERATIONS[op].what} needs permission ${permission}: ${verdict.reason}`, {
    hint:
      ctx.principal.kind === 'agent' && verdict.reason.startsWith('an agent')
        ? 'only a human can do this'
        : `a sysadmin (${admins.join(', ') || 'none registered'}) can grant it: ` +
          `fole-backup actor grant ${ctx.principal.name} ${permission}`,
  });
}
