/**
 * The audit log's objects: `audit/<seq>` (ten digits), each a sealed envelope
 * written create-only, and `audit/<seq>-<field>`, the disclosure of one
 * redactable value of that entry. Appending takes the newest entry as `prev`
 * and writes the next name; a writer that loses the race for a name (another
 * command appended meanwhile) reads the new head and tries again, so
 * concurrent commands interleave and never fork the chain.
 */
import type { ObjectType } from '../backend/backend.js';
import { FoleBackupError, StopError } from '../errors.js';
import type { SealedObjects } from '../repository/slices.js';
import type { ActorSigner } from './actor-key.js';
import {
  auditValue,
  disclosureMatches,
  FIELD_RE,
  verifyAuditChain,
  type AuditEntryBody,
  type AuditProblem,
  type Disclosure,
  type VerifiedEntry,
} from './audit.js';
import { isEnvelope, parsePayload, payloadDigest, PAYLOAD_TYPE, signEnvelope, type Envelope } from './envelope.js';
import { namesIn, type ObjectPlace } from './object-place.js';
import type { ChainHead, RegistryState } from './registry.js';

const ENTRY_RE = /^\d{10}$/;
const DISCLOSURE_RE = /^(\d{10})-([a-z][a-zA-Z0-9]{0,31})$/;
const entryName = (seq: number): string => String(seq).padStart(10, '0');
const disclosureName = (seq: number, field: string): string => `${entryName(seq)}-${field}`;
/** Bound to the object's full name, so an entry of one log never opens as another's (a carried log's included). */
const aad = (name: string): Buffer => Buffer.from(`fole-audit:${name}`);
/** Tries to win a name against other writers before giving up. */
const MAX_APPEND_TRIES = 20;

type Repo = SealedObjects & { readonly config: { readonly id: string } };

/**
 * Where a log's objects are and whose log it is: a repository's own log is `audit/<seq>`; a log carried from
 * another repository (carried-trail.ts) keeps the same names behind a prefix naming its origin, in another
 * folder, and names the origin's id as its log.
 */
export interface AuditPlace extends ObjectPlace {
  /** The log id every entry must name. */
  log: string;
}

const ownLog = (repo: Repo): AuditPlace => ({ type: 'audit', prefix: '', log: repo.config.id });

/** An entry to append: everything but its place in the chain. */
export type AuditInput = Omit<AuditEntryBody, 'v' | 'log' | 'seq' | 'prev'>;

/** The entries' names in the log, in order, and the disclosures present, by seq. */
async function listAudit(
  repo: Repo,
  place: AuditPlace,
): Promise<{ entries: number; foreign: string[]; disclosures: Map<number, string[]> }> {
  const seqs: number[] = [];
  const foreign: string[] = [];
  const disclosures = new Map<number, string[]>();
  for await (const name of namesIn(repo.backend, place)) {
    if (ENTRY_RE.test(name)) seqs.push(Number(name));
    else {
      const m = DISCLOSURE_RE.exec(name);
      if (m === null) foreign.push(name);
      else disclosures.set(Number(m[1]), [...(disclosures.get(Number(m[1])) ?? []), m[2] as string]);
    }
  }
  seqs.sort((a, b) => a - b);
  // a gap is reported by readAudit; the count is the position the next entry takes only if there is none
  const entries = seqs.length === 0 ? 0 : (seqs.at(-1) as number) + 1;
  return { entries, foreign, disclosures };
}

/** The newest entry's position and digest (undefined for an empty log). */
export async function auditHead(repo: Repo): Promise<ChainHead | undefined> {
  const newest = await newestEnvelope(repo);
  return newest === undefined ? undefined : { seq: newest.seq, digest: payloadDigest(newest.env as Envelope) };
}

/** The newest entry's position and stored envelope, unverified (undefined for an empty log). */
export async function newestEnvelope(
  repo: Repo,
  place: AuditPlace = ownLog(repo),
): Promise<{ seq: number; env: unknown } | undefined> {
  const { entries } = await listAudit(repo, place);
  if (entries === 0) return undefined;
  const name = `${place.prefix}${entryName(entries - 1)}`;
  return { seq: entries - 1, env: await repo.loadJson(place.type, name, aad(name)) };
}

/**
 * The newest entry's body, read without verifying the chain (what the gate looks at on every command), or
 * undefined for an empty log or a newest entry that cannot be read (`audit verify` reports that).
 */
export async function lastAuditEntry(repo: Repo): Promise<AuditEntryBody | undefined> {
  try {
    const env = (await newestEnvelope(repo))?.env;
    const body = isEnvelope(env) ? (parsePayload(env) as AuditEntryBody | undefined) : undefined;
    return typeof body === 'object' && body !== null && 'registryHead' in body ? body : undefined;
  } catch {
    return undefined;
  }
}

/** The digest of the entry at `seq`, or undefined if there is none (to check a pinned head is still there). */
export async function auditDigestAt(repo: Repo, seq: number): Promise<string | undefined> {
  try {
    return payloadDigest((await repo.loadJson('audit', entryName(seq), aad(entryName(seq)))) as Envelope);
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}

/**
 * Append an entry, signed by `signer` when the actor was authenticated, with the disclosures of its redactable
 * values written after it. Returns the new head.
 */
export async function appendAudit(
  repo: Repo,
  input: AuditInput,
  disclosures: readonly Disclosure[],
  signer: ActorSigner | undefined,
): Promise<ChainHead> {
  for (let attempt = 0; attempt < MAX_APPEND_TRIES; attempt++) {
    const head = await auditHead(repo);
    const seq = head === undefined ? 0 : head.seq + 1;
    const body: AuditEntryBody = { v: 1, log: repo.config.id, seq, prev: head?.digest ?? null, ...input };
    const env = signEnvelope(PAYLOAD_TYPE.auditEntry, auditValue(body), signer === undefined ? [] : [signer]);
    try {
      await repo.createJson('audit', entryName(seq), env, aad(entryName(seq)));
    } catch (err) {
      if (err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS') continue;
      throw err;
    }
    for (const d of disclosures) {
      await repo.createJson('audit', disclosureName(seq, d.field), d, aad(disclosureName(seq, d.field)));
    }
    return { seq, digest: payloadDigest(env) };
  }
  throw new FoleBackupError(
    'REPO_LOCKED',
    `audit log: another writer took every next entry ${MAX_APPEND_TRIES} times`,
    {
      hint: 'too many commands at once; run it again',
    },
  );
}

/** The log read back and verified: its entries, the disclosures still present, and the first problem, if any. */
export interface AuditLog {
  entries: VerifiedEntry[];
  /** The verified entries' envelopes, as stored. */
  envelopes: Envelope[];
  /** Disclosed values by seq and field (those not redacted), and the salts their commitments were made with. */
  disclosed: Map<number, Map<string, string>>;
  salts: Map<number, Map<string, string>>;
  problem?: AuditProblem;
  head: ChainHead | undefined;
}

/**
 * Read and verify the whole log. A gap, a foreign object, an unreadable or forged entry, or a disclosure that
 * does not match its entry's commitment is reported as the problem (at the first entry it concerns).
 */
export async function readAudit(
  repo: Repo,
  registry: RegistryState | undefined,
  place: AuditPlace = ownLog(repo),
): Promise<AuditLog> {
  const { entries: count, foreign, disclosures } = await listAudit(repo, place);
  const envelopes: unknown[] = [];
  let problem: AuditProblem | undefined;
  const full = (name: string): string => `${place.prefix}${name}`;
  if (foreign.length > 0)
    problem = { seq: 0, reason: `${place.type}/${full(foreign[0] as string)} is not an audit object` };
  for (let seq = 0; seq < count && problem === undefined; seq++) {
    try {
      const name = full(entryName(seq));
      envelopes.push(await repo.loadJson(place.type, name, aad(name)));
    } catch (err) {
      const why = err instanceof FoleBackupError && err.code === 'NOT_FOUND' ? 'missing' : 'unreadable (damaged)';
      problem = { seq, reason: `the entry is ${why}` };
    }
  }
  const verified = verifyAuditChain(envelopes, place.log, registry);
  problem ??= verified.problem;
  const disclosed = new Map<number, Map<string, string>>();
  const salts = new Map<number, Map<string, string>>();
  for (const e of verified.entries) {
    for (const field of disclosures.get(e.body.seq) ?? []) {
      const name = full(disclosureName(e.body.seq, field));
      let d: unknown;
      try {
        d = await repo.loadJson(place.type, name, aad(name));
      } catch {
        d = undefined;
      }
      if (!disclosureMatches(e.body, d) || (d as Disclosure).field !== field) {
        problem ??= { seq: e.body.seq, reason: `the disclosure of ${field} does not match the entry's commitment` };
        continue;
      }
      const byField = disclosed.get(e.body.seq) ?? new Map<string, string>();
      byField.set(field, (d as Disclosure).value);
      disclosed.set(e.body.seq, byField);
      const saltByField = salts.get(e.body.seq) ?? new Map<string, string>();
      saltByField.set(field, (d as Disclosure).salt);
      salts.set(e.body.seq, saltByField);
    }
  }
  const last = verified.entries.at(-1);
  return {
    entries: verified.entries,
    envelopes: envelopes.slice(0, verified.entries.length) as Envelope[],
    disclosed,
    salts,
    ...(problem === undefined ? {} : { problem }),
    head: last === undefined ? undefined : { seq: last.body.seq, digest: last.digest },
  };
}

/** The disclosures of entry `seq` still present in a log read back, as stored (value and salt). */
export function disclosuresOf(log: AuditLog, seq: number): Disclosure[] {
  const out: Disclosure[] = [];
  for (const [field, value] of log.disclosed.get(seq) ?? []) {
    const salt = log.salts.get(seq)?.get(field);
    if (salt === undefined) throw new FoleBackupError('INTERNAL', `audit log: no salt for entry ${seq} field ${field}`);
    out.push({ salt, field, value });
  }
  return out;
}

/** Delete the disclosure of `field` in entry `seq`; the entry and the chain stay as they are. */
export async function redactDisclosure(
  repo: Repo,
  seq: number,
  field: string,
  place: AuditPlace = ownLog(repo),
): Promise<void> {
  if (!FIELD_RE.test(field)) throw new FoleBackupError('USAGE', `--field ${JSON.stringify(field)} is not a field name`);
  const name = `${place.prefix}${disclosureName(seq, field)}`;
  try {
    await repo.backend.stat({ type: place.type, name });
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') {
      throw new FoleBackupError('NOT_FOUND', `audit entry ${seq} has no disclosed value ${field}`, {
        hint: 'see the fields with `fole-backup audit log --json` (they are already redacted, or never were)',
      });
    }
    throw err;
  }
  await repo.backend.remove({ type: place.type, name });
}

/**
 * Store entry `seq` of a log kept elsewhere than its own repository (a carried log), as stored there: its
 * disclosures first, then the entry, create-only, so an entry present always has its disclosures beside it and a
 * run cut off is finished by writing the same objects again. An object already there is kept when it is the same
 * (its payload digest, a disclosure's value and salt); another one is a fork, TRUST_BROKEN naming it.
 */
export async function storeLogEntry(
  repo: Repo,
  place: AuditPlace,
  seq: number,
  env: Envelope,
  disclosures: readonly Disclosure[],
): Promise<void> {
  for (const d of disclosures) {
    const name = `${place.prefix}${disclosureName(seq, d.field)}`;
    await createOrSame(repo, place.type, name, d, (old) => {
      const o = old as Partial<Disclosure> | undefined;
      return o?.salt === d.salt && o.value === d.value && o.field === d.field;
    });
  }
  const name = `${place.prefix}${entryName(seq)}`;
  const digest = payloadDigest(env);
  await createOrSame(repo, place.type, name, env, (old) => isEnvelope(old) && payloadDigest(old) === digest);
}

async function createOrSame(
  repo: Repo,
  type: ObjectType,
  name: string,
  value: unknown,
  same: (old: unknown) => boolean,
): Promise<void> {
  try {
    await repo.createJson(type, name, value, aad(name));
  } catch (err) {
    if (!(err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS')) throw err;
    if (!same(await repo.loadJson(type, name, aad(name)))) {
      throw new StopError('TRUST_BROKEN', `${type}/${name} holds another entry than the one being carried`, {
        hint: 'two copies disagree about this log; keep both repositories as they are and have a sysadmin compare them',
      });
    }
  }
}
