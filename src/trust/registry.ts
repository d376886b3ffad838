/**
 * The registry of actors: an append-only chain of signed entries (genesis, add,
 * remove, grant, revoke), replayed from the first to give who is registered
 * now. Pure: the store (registry-store.ts) reads and appends the objects.
 *
 * Each entry names the digest of the one before (`prev`) and the registry's
 * trust id, and is signed by a human sysadmin who is registered and not removed
 * at that point of the chain. The genesis entry, which registers the first
 * sysadmin, is signed by nobody: it may be made where only that sysadmin's
 * public key is at hand, and its authority is being first (clients pin it).
 * Replay refuses the first entry that breaks any rule and names it, so a
 * forged, reordered or spliced registry is never half-believed.
 *
 * Leaving registry mode is an entry too, signed by every sysadmin then active:
 * it removes every actor, and only a reopen entry (unsigned, registering a new
 * first sysadmin, like the genesis entry) may follow it. The chain goes on, so
 * a client's pin still refuses an older registry in which the actors lived.
 */
import { fingerprintOf, isPublicKey } from './actor-key.js';
import type { CanonicalValue } from './canonical.js';
import { hasOnly, isPlain } from './shape.js';
import { hasValidSignature, isEnvelope, parsePayload, payloadDigest, PAYLOAD_TYPE, type Envelope } from './envelope.js';
import {
  grantProblem,
  isPermission,
  isRole,
  PROJECT_ID_RE,
  type ActorKind,
  type Grant,
  type Permission,
  type Role,
} from './permissions.js';

/** Actor names: printable, no spaces or path separators, at most 64 characters. */
export const ACTOR_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$/;

/** An actor as an entry registers it. */
export interface NewActor {
  name: string;
  kind: ActorKind;
  role: Role;
  /** Ed25519 SPKI DER, base64. */
  publicKey: string;
}

/** What one registry entry does. */
export type RegistryAction =
  | { op: 'genesis'; repositoryId: string; actor: NewActor }
  | { op: 'add'; actor: NewActor }
  | { op: 'remove'; name: string }
  | { op: 'grant'; name: string; permission: Permission; project?: string }
  | { op: 'revoke'; name: string; permission: Permission; project?: string }
  /** Back to single-operator mode: signed by every sysadmin active at that point; every actor is removed. */
  | { op: 'leave' }
  /** Registry mode again after a leave, with a new first sysadmin: unsigned, as the genesis entry is. */
  | { op: 'reopen'; actor: NewActor };

/** The signed body of a registry entry. */
export interface RegistryEntryBody {
  v: 1;
  /** The registry's own random id (128 bits, hex): binds every entry, approval and audit record to it. */
  trustId: string;
  /** Position in the chain, from 0. */
  seq: number;
  /** payloadDigest of the entry before; null for the genesis entry. */
  prev: string | null;
  /** When it was signed (ISO 8601, UTC). */
  time: string;
  /** The sysadmin who signed it. */
  signer: string;
  action: RegistryAction;
}

/** A registered actor as the chain says it is now. */
export interface ActorRecord {
  name: string;
  kind: ActorKind;
  role: Role;
  publicKey: string;
  fingerprint: string;
  grants: Grant[];
  /** The entry that added it, who signed that entry, and when. */
  addedSeq: number;
  addedBy: string;
  addedAt: string;
  /** The entry that removed it, if one did. */
  removedSeq?: number;
}

/** The newest entry of a chain: its position and its payload digest. */
export interface ChainHead {
  seq: number;
  digest: string;
}

/** The registry replayed. */
export interface RegistryState {
  trustId: string;
  repositoryId: string;
  head: ChainHead;
  /** Every actor ever registered, removed ones too (a name or key is never reused). */
  actors: Map<string, ActorRecord>;
  /** Payload digest of every entry, by seq (to check that another head is on this chain). */
  digests: string[];
  /** The leave entry, while the repository is out of registry mode (single-operator) until a reopen. */
  leftAt?: number;
  /** When the newest entry was signed: the next one may not be signed earlier. */
  headTime: string;
}

/** A registry entry refused: which one and why. */
export class RegistryError extends Error {
  constructor(
    readonly seq: number,
    readonly reason: string,
  ) {
    super(`registry entry ${seq}: ${reason}`);
    this.name = 'RegistryError';
  }
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** Whether an actor is registered and not removed. */
export function isActive(a: ActorRecord | undefined): a is ActorRecord {
  return a !== undefined && a.removedSeq === undefined;
}

/** The actors who may sign registry entries now: human sysadmins, not removed. */
export function activeSysadmins(state: Pick<RegistryState, 'actors'>): ActorRecord[] {
  return [...state.actors.values()].filter((a) => isActive(a) && a.kind === 'human' && a.role === 'sysadmin');
}

/** The actor, removed or not, that was registered with a public key (a key is never registered twice). */
function actorByKey(state: Pick<RegistryState, 'actors'>, fingerprint: string): ActorRecord | undefined {
  return [...state.actors.values()].find((a) => a.fingerprint === fingerprint);
}

/**
 * Replay a chain of registry envelopes, in seq order, into the state it describes. Throws RegistryError for the
 * first entry that is malformed, out of place, not signed by a sysadmin valid at that point, or that breaks a
 * rule (a reused name or key, removing the last sysadmin, a forbidden grant).
 */
export function replayRegistry(envelopes: readonly unknown[]): RegistryState {
  if (envelopes.length === 0) throw new RegistryError(0, 'the registry is empty');
  let state: RegistryState | undefined;
  envelopes.forEach((env, seq) => {
    state = applyEntry(state, env, seq);
  });
  return state as unknown as RegistryState;
}

/** Apply one more entry (the envelope at position `seq`) to a replayed state; the state given is not changed. */
export function applyEntry(state: RegistryState | undefined, env: unknown, seq: number): RegistryState {
  const fail = (reason: string): never => {
    throw new RegistryError(seq, reason);
  };
  if (!isEnvelope(env) || env.payloadType !== PAYLOAD_TYPE.registryEntry) fail('not a signed registry entry');
  const envelope = env as Envelope;
  const body = parsePayload(envelope);
  const problem = bodyProblem(body);
  if (problem !== undefined) fail(problem);
  const b = body as RegistryEntryBody;
  if (b.seq !== seq) fail(`it says it is entry ${b.seq}`);
  const digest = payloadDigest(envelope);

  if (state === undefined) {
    if (b.action.op !== 'genesis') fail('the first entry is not a genesis entry');
    if (b.prev !== null) fail('the genesis entry names an entry before it');
    const a = (b.action as Extract<RegistryAction, { op: 'genesis' }>).actor;
    if (a.kind !== 'human' || a.role !== 'sysadmin') fail('the first actor is not a human sysadmin');
    // unsigned: whoever holds the repository secret starts the chain, and clients pin it (trust-state.ts)
    if (b.signer !== a.name) fail('the genesis entry names another signer than the actor it registers');
    const record = recordOf(a, seq, b.signer, b.time);
    return {
      trustId: b.trustId,
      repositoryId: (b.action as Extract<RegistryAction, { op: 'genesis' }>).repositoryId,
      head: { seq, digest },
      headTime: b.time,
      actors: new Map([[a.name, record]]),
      digests: [digest],
    };
  }

  if (b.action.op === 'genesis') fail('a second genesis entry');
  if (b.trustId !== state.trustId) fail('it belongs to another registry (trust id differs)');
  if (b.prev !== state.head.digest) fail(`it does not follow entry ${seq - 1} (prev digest differs)`);
  // "registered before the request" (approvals.ts) reads these times: a chain may not go back in time
  if (Date.parse(b.time) < Date.parse(state.headTime)) {
    fail(`it was signed at ${b.time}, before entry ${seq - 1} (${state.headTime}): check the clock`);
  }
  if (state.leftAt !== undefined || b.action.op === 'reopen') return reopened(state, b, digest, fail);
  const signer = state.actors.get(b.signer);
  if (!isActive(signer)) fail(`signer ${b.signer} is not a registered actor at this point`);
  const s = signer as ActorRecord;
  if (s.kind !== 'human' || s.role !== 'sysadmin') fail(`signer ${b.signer} is not a human sysadmin`);
  if (!hasValidSignature(envelope, s.fingerprint, s.publicKey)) fail(`bad signature by ${b.signer}`);

  const actors = new Map([...state.actors].map(([k, v]) => [k, { ...v, grants: [...v.grants] }]));
  const target = (name: string): ActorRecord => {
    const t = actors.get(name);
    if (!isActive(t)) fail(`no registered actor ${name}`);
    return t as ActorRecord;
  };
  const action = b.action;
  switch (action.op) {
    case 'add': {
      const a = action.actor;
      if (actors.has(a.name)) fail(`the name ${a.name} is already taken (names are never reused)`);
      const fp = fingerprintOf(a.publicKey);
      const holder = actorByKey({ actors }, fp);
      if (holder !== undefined) fail(`${holder.name} already has that public key`);
      actors.set(a.name, recordOf(a, seq, b.signer, b.time));
      break;
    }
    case 'remove': {
      const t = target(action.name);
      if (t.kind === 'human' && t.role === 'sysadmin' && activeSysadmins({ actors }).length === 1) {
        fail(`${t.name} is the last sysadmin`);
      }
      t.removedSeq = seq;
      break;
    }
    case 'grant': {
      const t = target(action.name);
      const g: Grant = grantOf(action);
      const p = grantProblem(t.kind, g);
      if (p !== undefined) fail(p);
      if (t.grants.some((x) => sameGrant(x, g))) fail(`${t.name} already holds ${describeGrant(g)}`);
      t.grants.push(g);
      break;
    }
    case 'revoke': {
      const t = target(action.name);
      const g = grantOf(action);
      const i = t.grants.findIndex((x) => sameGrant(x, g));
      if (i < 0) fail(`${t.name} holds no grant ${describeGrant(g)}`);
      t.grants.splice(i, 1);
      break;
    }
    case 'leave': {
      const unsigned = missingSignatures(state, envelope);
      if (unsigned.length > 0)
        fail(`leaving registry mode needs every sysadmin's signature: ${unsigned.join(', ')} did not sign`);
      for (const a of actors.values()) if (isActive(a)) a.removedSeq = seq;
      break;
    }
  }
  return {
    trustId: state.trustId,
    repositoryId: state.repositoryId,
    head: { seq, digest },
    headTime: b.time,
    actors,
    digests: [...state.digests, digest],
    ...(action.op === 'leave' ? { leftAt: seq } : {}),
  };
}

/** The sysadmins active in `state` whose signature `envelope` lacks (leaving needs all of them). */
export function missingSignatures(state: Pick<RegistryState, 'actors'>, envelope: Envelope): string[] {
  return activeSysadmins(state)
    .filter((a) => !hasValidSignature(envelope, a.fingerprint, a.publicKey))
    .map((a) => a.name);
}

/** The entry after a leave: only a reopen, which registers a new first sysadmin never registered before. */
function reopened(
  state: RegistryState,
  b: RegistryEntryBody,
  digest: string,
  fail: (reason: string) => never,
): RegistryState {
  if (state.leftAt === undefined) fail('a reopen entry follows only a leave entry');
  if (b.action.op !== 'reopen') fail(`the registry was left at entry ${state.leftAt}: only a reopen entry may follow`);
  const a = (b.action as Extract<RegistryAction, { op: 'reopen' }>).actor;
  if (a.kind !== 'human' || a.role !== 'sysadmin') fail('the first actor after a reopen is not a human sysadmin');
  if (b.signer !== a.name) fail('the reopen entry names another signer than the actor it registers');
  if (state.actors.has(a.name)) fail(`the name ${a.name} is already taken (names are never reused)`);
  const holder = actorByKey(state, fingerprintOf(a.publicKey));
  if (holder !== undefined) fail(`${holder.name} already had that public key (keys are never reused)`);
  const actors = new Map(state.actors);
  actors.set(a.name, recordOf(a, b.seq, b.signer, b.time));
  return {
    trustId: state.trustId,
    repositoryId: state.repositoryId,
    head: { seq: b.seq, digest },
    headTime: b.time,
    actors,
    digests: [...state.digests, digest],
  };
}

function recordOf(a: NewActor, seq: number, by: string, at: string): ActorRecord {
  return {
    name: a.name,
    kind: a.kind,
    role: a.role,
    publicKey: a.publicKey,
    fingerprint: fingerprintOf(a.publicKey),
    grants: [],
    addedSeq: seq,
    addedBy: by,
    addedAt: at,
  };
}

function grantOf(a: { permission: Permission; project?: string }): Grant {
  return a.project === undefined ? { permission: a.permission } : { permission: a.permission, project: a.project };
}

function sameGrant(a: Grant, b: Grant): boolean {
  return a.permission === b.permission && a.project === b.project;
}

/** "backup.restore" or "backup.restore on project P". */
export function describeGrant(g: Grant): string {
  return g.project === undefined ? g.permission : `${g.permission} on project ${g.project}`;
}

/** The body as a value canonicalJson takes (an action's optional project is left out when absent). */
export function entryValue(b: RegistryEntryBody): CanonicalValue {
  return b as unknown as CanonicalValue;
}

/** Why a parsed payload is not a registry entry body (undefined if it is one). */
function bodyProblem(v: unknown): string | undefined {
  if (!isPlain(v)) return 'not a registry entry';
  if (!hasOnly(v, ['v', 'trustId', 'seq', 'prev', 'time', 'signer', 'action'])) return 'unknown fields';
  if (v.v !== 1) return `version ${String(v.v)} is not one this build reads`;
  if (typeof v.trustId !== 'string' || !HEX32.test(v.trustId)) return 'bad trust id';
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 0) return 'bad seq';
  if (v.prev !== null && (typeof v.prev !== 'string' || !HEX64.test(v.prev))) return 'bad prev digest';
  if (typeof v.time !== 'string' || !ISO_RE.test(v.time) || Number.isNaN(Date.parse(v.time))) return 'bad time';
  if (typeof v.signer !== 'string' || !ACTOR_NAME_RE.test(v.signer)) return 'bad signer name';
  return actionProblem(v.action);
}

function actionProblem(a: unknown): string | undefined {
  if (!isPlain(a)) return 'no action';
  switch (a.op) {
    case 'genesis':
      if (!hasOnly(a, ['op', 'repositoryId', 'actor'])) return 'unknown fields in the action';
      if (typeof a.repositoryId !== 'string' || a.repositoryId.length > 64) return 'bad repository id';
      return newActorProblem(a.actor);
    case 'add':
      if (!hasOnly(a, ['op', 'actor'])) return 'unknown fields in the action';
      return newActorProblem(a.actor);
    case 'reopen':
      if (!hasOnly(a, ['op', 'actor'])) return 'unknown fields in the action';
      return newActorProblem(a.actor);
    case 'leave':
      return hasOnly(a, ['op']) ? undefined : 'unknown fields in the action';
    case 'remove':
      if (!hasOnly(a, ['op', 'name'])) return 'unknown fields in the action';
      return typeof a.name === 'string' && ACTOR_NAME_RE.test(a.name) ? undefined : 'bad actor name';
    case 'grant':
    case 'revoke':
      if (!hasOnly(a, ['op', 'name', 'permission', 'project'])) return 'unknown fields in the action';
      if (typeof a.name !== 'string' || !ACTOR_NAME_RE.test(a.name)) return 'bad actor name';
      if (!isPermission(a.permission)) return `unknown permission ${String(a.permission).slice(0, 40)}`;
      if (a.project !== undefined && (typeof a.project !== 'string' || !PROJECT_ID_RE.test(a.project))) {
        return 'bad project id';
      }
      return undefined;
    default:
      return `unknown action ${String(a.op).slice(0, 40)}`;
  }
}

function newActorProblem(a: unknown): string | undefined {
  if (!isPlain(a) || !hasOnly(a, ['name', 'kind', 'role', 'publicKey'])) return 'bad actor';
  if (typeof a.name !== 'string' || !ACTOR_NAME_RE.test(a.name)) return 'bad actor name';
  if (a.kind !== 'human' && a.kind !== 'agent') return 'bad actor kind';
  if (!isRole(a.role)) return 'bad role';
  if (!isPublicKey(a.publicKey)) return 'bad public key';
  return undefined;
}
