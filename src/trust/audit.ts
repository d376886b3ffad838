/**
 * The audit log: one entry per command run against a repository, refusals
 * and errors included, as a hash chain of create-only objects. Pure: building
 * an entry, committing to its sensitive values, and verifying a chain. The
 * store (audit-store.ts) reads and appends the objects.
 *
 * Each entry names its position (`seq`) and the digest of the entry before
 * (`prev`), so an edit, a deleted or reordered entry, or a spliced-in one
 * breaks the chain at a place verification names; a truncated tail is caught
 * against the newest head a client pinned (trust-state.ts). An entry made by an
 * authenticated actor is signed with that actor's key (DSSE, envelope.ts).
 *
 * Sensitive values (paths a command named) are not in the entry: it holds a
 * salted commitment, SHA-256 over canonical [salt, field, value] with 128
 * random bits of salt, and the value lives in a separate disclosure object
 * (SD-JWT's scheme). Deleting the disclosure redacts the value and leaves the
 * entry, its digest and the chain byte-identical.
 */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../crypto/hash.js';
import { canonicalBytes, type CanonicalValue } from './canonical.js';
import { hasValidSignature, isEnvelope, parsePayload, payloadDigest, PAYLOAD_TYPE, type Envelope } from './envelope.js';
import type { ChainHead, RegistryState } from './registry.js';
import { hasOnly, isPlain } from './shape.js';

/** How a command ended. */
export interface AuditResult {
  status: 'ok' | 'error' | 'stop';
  /** The error or STOP code. */
  code?: string;
}

/** What an audit entry records. */
export interface AuditEntryBody {
  v: 1;
  /** The chain it belongs to: the repository's id. */
  log: string;
  seq: number;
  prev: string | null;
  time: string;
  actor: { name: string; kind: 'human' | 'agent'; authenticated: boolean };
  host: string;
  /** The operation (operations.ts), or the command when the gate never named one. */
  op: string;
  /** The command line after the program name; a sensitive value replaced by `{ "redactable": FIELD }`. */
  args: (string | { redactable: string })[];
  /** Commitments to the sensitive values, by field name. */
  commitments: Record<string, string>;
  scope?: { project?: string };
  result: AuditResult;
  /** Backups the command made, read, restored or removed. */
  backupIds: string[];
  /** Counts and byte totals from the command's result. */
  counts: Record<string, number>;
  durationMs: number;
  /** The registry head the command was checked against (null in single-operator mode). */
  registryHead: ChainHead | null;
  /** Approval request ids the command used. */
  approvals: string[];
}

/** The value of one redactable field, with the salt its commitment was made with: a disclosure object. */
export interface Disclosure {
  salt: string;
  field: string;
  value: string;
}

/** Field names of redactable values: what `audit redact --field` takes. */
export const FIELD_RE = /^[a-z][a-zA-Z0-9]{0,31}$/;

/** The commitment to a disclosure: SHA-256 (hex) over canonical JSON [salt, field, value]. */
export function commitment(d: Disclosure): string {
  return sha256Hex(canonicalBytes([d.salt, d.field, d.value]));
}

/** A new disclosure for a sensitive value, with 128 random bits of salt. */
export function disclose(field: string, value: string): Disclosure {
  return { salt: randomBytes(16).toString('base64url'), field, value };
}

/** One entry in a verified chain: its body, its digest, and whether a registered actor signed it. */
export interface VerifiedEntry {
  body: AuditEntryBody;
  digest: string;
  signedBy: string | undefined;
}

/** The first entry that failed verification, and why. */
export interface AuditProblem {
  seq: number;
  reason: string;
}

/**
 * Verify a chain of audit envelopes given in seq order: every entry well-formed and in its place, linked to the
 * one before, of this log; an entry saying its actor was authenticated signed by that actor's registered key
 * (`registry`: the registry as it is now, whose actors keep their keys after removal). Stops at the first bad
 * entry and names it.
 */
export function verifyAuditChain(
  envelopes: readonly unknown[],
  log: string,
  registry: RegistryState | undefined,
): { entries: VerifiedEntry[]; problem?: AuditProblem } {
  const entries: VerifiedEntry[] = [];
  let prev: string | null = null;
  for (const [seq, env] of envelopes.entries()) {
    const bad = (reason: string): { entries: VerifiedEntry[]; problem: AuditProblem } => ({
      entries,
      problem: { seq, reason },
    });
    if (!isEnvelope(env) || env.payloadType !== PAYLOAD_TYPE.auditEntry) return bad('not an audit entry');
    const body = parsePayload(env as Envelope);
    const problem = bodyProblem(body);
    if (problem !== undefined) return bad(problem);
    const b = body as AuditEntryBody;
    if (b.seq !== seq) return bad(`it says it is entry ${b.seq}`);
    if (b.log !== log) return bad('it belongs to another repository');
    if (b.prev !== prev) return bad(`it does not follow entry ${seq - 1} (prev digest differs)`);
    const rh = b.registryHead;
    if (rh !== null && registry !== undefined && registry.digests[rh.seq] !== rh.digest) {
      return bad(
        `it was checked against registry entry ${rh.seq}, which this registry does not hold (a fork or rollback)`,
      );
    }
    if (rh !== null && registry === undefined) return bad('it was checked against an actor registry that is gone');
    let signedBy: string | undefined;
    if (b.actor.authenticated) {
      const a = registry?.actors.get(b.actor.name);
      if (a === undefined) return bad(`its actor ${b.actor.name} is not in the registry`);
      if (!hasValidSignature(env as Envelope, a.fingerprint, a.publicKey)) return bad(`bad signature by ${a.name}`);
      signedBy = a.name;
    }
    const digest = payloadDigest(env as Envelope);
    entries.push({ body: b, digest, signedBy });
    prev = digest;
  }
  return { entries };
}

/** Whether a disclosure matches the commitment its entry holds for that field. */
export function disclosureMatches(entry: AuditEntryBody, d: unknown): d is Disclosure {
  if (typeof d !== 'object' || d === null) return false;
  const x = d as Record<string, unknown>;
  if (typeof x.salt !== 'string' || typeof x.field !== 'string' || typeof x.value !== 'string') return false;
  const c = entry.commitments[x.field];
  return c !== undefined && commitment(x as unknown as Disclosure) === c;
}

/** The body as a value canonicalJson takes. */
export function auditValue(b: AuditEntryBody): CanonicalValue {
  return b as unknown as CanonicalValue;
}

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

function bodyProblem(v: unknown): string | undefined {
  if (!isPlain(v)) return 'not an audit entry';
  const allowed = [
    'v',
    'log',
    'seq',
    'prev',
    'time',
    'actor',
    'host',
    'op',
    'args',
    'commitments',
    'scope',
    'result',
    'backupIds',
    'counts',
    'durationMs',
    'registryHead',
    'approvals',
  ];
  if (!hasOnly(v, allowed)) return 'unknown fields';
  if (v.v !== 1) return `version ${String(v.v)} is not one this build reads`;
  if (typeof v.log !== 'string' || v.log.length > 64) return 'bad log id';
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 0) return 'bad seq';
  if (v.prev !== null && (typeof v.prev !== 'string' || !HEX64.test(v.prev))) return 'bad prev digest';
  if (typeof v.time !== 'string' || !ISO_RE.test(v.time) || Number.isNaN(Date.parse(v.time))) return 'bad time';
  const a = v.actor;
  if (
    !isPlain(a) ||
    typeof a.name !== 'string' ||
    a.name.length > 256 ||
    (a.kind !== 'human' && a.kind !== 'agent') ||
    typeof a.authenticated !== 'boolean'
  ) {
    return 'bad actor';
  }
  if (typeof v.host !== 'string' || v.host.length > 256) return 'bad host';
  if (typeof v.op !== 'string' || v.op.length > 64) return 'bad op';
  if (!Array.isArray(v.args) || v.args.length > 256) return 'bad args';
  for (const x of v.args) {
    if (typeof x === 'string') continue;
    if (!isPlain(x) || typeof x.redactable !== 'string' || !FIELD_RE.test(x.redactable)) return 'bad args';
  }
  if (!isPlain(v.commitments)) return 'bad commitments';
  for (const [k, c] of Object.entries(v.commitments)) {
    if (!FIELD_RE.test(k) || typeof c !== 'string' || !HEX64.test(c)) return 'bad commitments';
  }
  const r = v.result;
  if (!isPlain(r) || !['ok', 'error', 'stop'].includes(r.status as string)) return 'bad result';
  if (r.code !== undefined && typeof r.code !== 'string') return 'bad result';
  if (!Array.isArray(v.backupIds) || !v.backupIds.every((x) => typeof x === 'string')) return 'bad backup ids';
  if (!isPlain(v.counts) || !Object.values(v.counts).every((n) => Number.isSafeInteger(n))) return 'bad counts';
  if (!Number.isSafeInteger(v.durationMs)) return 'bad duration';
  const h = v.registryHead;
  if (h !== null && (!isPlain(h) || !Number.isSafeInteger(h.seq) || typeof h.digest !== 'string')) {
    return 'bad registry head';
  }
  if (!Array.isArray(v.approvals) || !v.approvals.every((x) => typeof x === 'string')) return 'bad approvals';
  return undefined;
}
