/**
 * The registry's objects in the repository: `registry/<seq>` (ten digits), each
 * a sealed signed envelope, written create-only so two sysadmins appending at
 * once cannot fork the chain (one gets ALREADY_EXISTS and tries again on the
 * new head).
 */
import { randomBytes } from 'node:crypto';
import { FoleBackupError, StopError } from '../errors.js';
import type { SealedObjects } from '../repository/slices.js';
import type { ActorSigner } from './actor-key.js';
import { isEnvelope, payloadDigest, signEnvelope, PAYLOAD_TYPE, type Envelope } from './envelope.js';
import { namesIn, type ObjectPlace } from './object-place.js';
import {
  applyEntry,
  entryValue,
  RegistryError,
  replayRegistry,
  type RegistryAction,
  type RegistryEntryBody,
  type RegistryState,
} from './registry.js';

const NAME_RE = /^\d{10}$/;
/** A registry longer than this is refused unread: nobody registers a million actors, and replay holds it all. */
const MAX_ENTRIES = 100_000;

export const registryObjectName = (seq: number): string => String(seq).padStart(10, '0');
/** Bound to the object's full name, so a carried registry's entries never open as the repository's own. */
const aad = (name: string): Buffer => Buffer.from(`fole-registry:${name}`);

const OWN: ObjectPlace = { type: 'registry', prefix: '' };

/** An actor signing registry entries: the name the registry knows it by and its private key. */
export interface NamedSigner {
  name: string;
  signer: ActorSigner;
}

/**
 * Read and replay the registry. Undefined when the repository has none (single-operator mode). Throws
 * StopError TRUST_BROKEN, naming the first bad entry, for a chain with a gap, a foreign object name, or an entry
 * replay refuses.
 */
export async function readRegistry(repo: SealedObjects): Promise<RegistryState | undefined> {
  const envelopes = await readRegistryEnvelopes(repo);
  if (envelopes.length === 0) return undefined;
  try {
    return replayRegistry(envelopes);
  } catch (err) {
    if (err instanceof RegistryError) throw broken(err.message);
    throw err;
  }
}

/** The registry's entries as stored, in order, not yet replayed ([] when there is no registry). Throws
 * TRUST_BROKEN for a gap, a foreign name or an entry that cannot be read. */
export async function readRegistryEnvelopes(repo: SealedObjects, place: ObjectPlace = OWN): Promise<unknown[]> {
  const names = await entryNames(repo, place);
  const envelopes: unknown[] = [];
  for (const [i, name] of names.entries()) {
    if (name !== registryObjectName(i)) throw broken(`registry entry ${i} is missing (the chain has a gap)`);
    try {
      const full = `${place.prefix}${name}`;
      envelopes.push(await repo.loadJson(place.type, full, aad(full)));
    } catch (err) {
      if (err instanceof FoleBackupError && err.code !== 'REPO_CORRUPT' && err.code !== 'CHECKSUM_MISMATCH') throw err;
      throw broken(`registry entry ${i} cannot be read: ${(err as Error).message}`);
    }
  }
  return envelopes;
}

/** The entries' names in `place`, sorted; TRUST_BROKEN for a name that is not an entry's or too many. */
async function entryNames(repo: SealedObjects, place: ObjectPlace): Promise<string[]> {
  const names: string[] = [];
  for await (const name of namesIn(repo.backend, place)) {
    if (!NAME_RE.test(name)) throw broken(`${place.type}/${place.prefix}${name} is not a registry entry name`);
    names.push(name);
    if (names.length > MAX_ENTRIES) throw broken(`more than ${MAX_ENTRIES} registry entries`);
  }
  return names.sort();
}

/**
 * The newest entry in `place` (by the highest name; a gap below it is not looked for) and its stored envelope,
 * unverified; undefined when there is none.
 */
export async function newestRegistryEnvelope(
  repo: SealedObjects,
  place: ObjectPlace,
): Promise<{ seq: number; env: unknown } | undefined> {
  const newest = (await entryNames(repo, place)).at(-1);
  if (newest === undefined) return undefined;
  const name = `${place.prefix}${newest}`;
  return { seq: Number(newest), env: await repo.loadJson(place.type, name, aad(name)) };
}

/** Append the first entry: a registry whose first sysadmin is `admin`. Fails ALREADY_EXISTS if one exists. */
export async function createRegistry(
  repo: SealedObjects & { readonly config: { readonly id: string } },
  admin: { name: string; publicKey: string },
  now = new Date(),
): Promise<RegistryState> {
  const body: RegistryEntryBody = {
    v: 1,
    trustId: randomBytes(16).toString('hex'),
    seq: 0,
    prev: null,
    time: now.toISOString(),
    signer: admin.name,
    action: {
      op: 'genesis',
      repositoryId: repo.config.id,
      actor: { name: admin.name, kind: 'human', role: 'sysadmin', publicKey: admin.publicKey },
    },
  };
  // The first entry is signed by nobody: whoever holds the repository secret starts the chain (and every client
  // pins it from then on, trust-state.ts). Every later entry needs a sysadmin's signature.
  const env = signEnvelope(PAYLOAD_TYPE.registryEntry, entryValue(body), []);
  const state = applyEntry(undefined, env, 0);
  await writeEntry(
    repo,
    0,
    env,
    () =>
      new FoleBackupError('ALREADY_EXISTS', 'this repository already has an actor registry', {
        hint: 'see it with `fole-backup actor list`; add actors with `fole-backup actor add`',
      }),
  );
  return state;
}

/** Register a new first sysadmin after a leave entry (registry mode again): unsigned, as the genesis entry is. */
export async function reopenRegistry(
  repo: SealedObjects,
  state: RegistryState,
  admin: { name: string; publicKey: string },
  now = new Date(),
): Promise<RegistryState> {
  const actor = { name: admin.name, kind: 'human' as const, role: 'sysadmin' as const, publicKey: admin.publicKey };
  const env = signEnvelope(
    PAYLOAD_TYPE.registryEntry,
    entryValue(nextBody(state, admin.name, { op: 'reopen', actor }, now)),
    [],
  );
  return appendSignedEntry(repo, state, env);
}

/** The body of the entry after `state`'s head. */
export function nextBody(
  state: RegistryState,
  signer: string,
  action: RegistryAction,
  now = new Date(),
): RegistryEntryBody {
  return {
    v: 1,
    trustId: state.trustId,
    seq: state.head.seq + 1,
    prev: state.head.digest,
    time: now.toISOString(),
    signer,
    action,
  };
}

/**
 * Sign `action` as `by` and append it after `state`'s head. The entry is checked by the same replay every reader
 * runs before it is written, so a refused action (a non-sysadmin signer, removing the last sysadmin, a forbidden
 * grant) writes nothing: it throws StopError PERMISSION_DENIED or a USAGE error saying why.
 */
export async function appendRegistry(
  repo: SealedObjects,
  state: RegistryState,
  action: RegistryAction,
  by: NamedSigner,
  now = new Date(),
): Promise<RegistryState> {
  const env = signEnvelope(PAYLOAD_TYPE.registryEntry, entryValue(nextBody(state, by.name, action, now)), [by.signer]);
  return appendSignedEntry(repo, state, env);
}

/**
 * Append an entry already signed (by one sysadmin, or by every one for a leave) after `state`'s head, checked by
 * the replay every reader runs: a refused entry writes nothing.
 */
export async function appendSignedEntry(
  repo: SealedObjects,
  state: RegistryState,
  env: Envelope,
): Promise<RegistryState> {
  const seq = state.head.seq + 1;
  let next: RegistryState;
  try {
    next = applyEntry(state, env, seq);
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    const signerProblem = /^signer |^bad signature/.test(err.reason);
    throw signerProblem
      ? new StopError('PERMISSION_DENIED', `registry: ${err.reason}`, {
          hint: 'registry entries are signed by a human sysadmin: run as one (--actor NAME --actor-key FILE)',
        })
      : new FoleBackupError('USAGE', `registry: ${err.reason}`);
  }
  await writeEntry(
    repo,
    seq,
    env,
    () =>
      new FoleBackupError('ALREADY_EXISTS', `registry entry ${seq} was written by someone else meanwhile`, {
        hint: 'run the command again: it will apply after their change',
      }),
  );
  return next;
}

/** Write entry `seq` create-only; a name already taken throws what `taken` makes. */
async function writeEntry(repo: SealedObjects, seq: number, env: unknown, taken: () => Error): Promise<void> {
  const name = registryObjectName(seq);
  try {
    await repo.createJson('registry', name, env, aad(name));
  } catch (err) {
    throw err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS' ? taken() : err;
  }
}

/**
 * Store entry `seq` of a registry kept elsewhere than its own repository (a carried registry) as it was signed,
 * create-only. An entry already there is kept when it is the same (its payload digest); another one is
 * TRUST_BROKEN.
 */
export async function storeRegistryEntry(
  repo: SealedObjects,
  place: ObjectPlace,
  seq: number,
  env: Envelope,
): Promise<void> {
  const name = `${place.prefix}${registryObjectName(seq)}`;
  try {
    await repo.createJson(place.type, name, env, aad(name));
  } catch (err) {
    if (!(err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS')) throw err;
    const old = await repo.loadJson(place.type, name, aad(name));
    if (!isEnvelope(old) || payloadDigest(old) !== payloadDigest(env)) {
      throw broken(`${place.type}/${name} holds another entry than the one being carried`);
    }
  }
}

function broken(why: string): StopError {
  return new StopError('TRUST_BROKEN', `the actor registry fails verification: ${why}`, {
    hint:
      'someone edited, removed or forged registry objects; do not use this repository until a human has ' +
      'investigated (restore registry/ from an offsite copy, or compare with `fole-backup audit log`)',
  });
}
