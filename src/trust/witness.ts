/**
 * Witness checkpoints: signed statements "the audit log of repository R held entry N, with digest D, at time T",
 * kept in a second repository, the witness (RFC 6962's signed tree heads; C2SP tlog-checkpoint). Checkpoints are
 * sealed with the witness's key, so whoever can rewrite the first repository, even with its secret, cannot
 * make its log agree with them again after cutting or rewriting it. Pure: making a checkpoint, and checking a
 * verified log against the checkpoints a witness holds. The store (witness-store.ts) reads and writes them.
 */
import type { ActorSigner } from './actor-key.js';
import type { AuditProblem, VerifiedEntry } from './audit.js';
import type { CanonicalValue } from './canonical.js';
import { hasValidSignature, isEnvelope, parsePayload, PAYLOAD_TYPE, signEnvelope, type Envelope } from './envelope.js';
import { ACTOR_NAME_RE, type RegistryState } from './registry.js';
import { hasOnly, isPlain } from './shape.js';

/** What a checkpoint states. */
export interface CheckpointBody {
  v: 1;
  /** The repository whose audit log it is (the log's id). */
  repositoryId: string;
  /** That repository's actor registry, null in single-operator mode. */
  trustId: string | null;
  /** The entry checkpointed: its position and its payload digest (what the next entry's `prev` names). */
  seq: number;
  digest: string;
  time: string;
  /** The actor who signed it, null when unsigned (single-operator mode). */
  signer: string | null;
}

/** A checkpoint as a witness holds it: the seq its name says, and its envelope (undefined: it cannot be read). */
export interface StoredCheckpoint {
  seq: number;
  envelope: unknown;
}

/** The checkpoint of `head` in the log of `repositoryId`, signed by `by` in registry mode, unsigned without one. */
export function makeCheckpoint(
  repositoryId: string,
  registry: RegistryState | undefined,
  head: { seq: number; digest: string },
  by: { name: string; signer: ActorSigner } | undefined,
  now = new Date(),
): { body: CheckpointBody; envelope: Envelope } {
  const signed = registry === undefined ? undefined : by;
  const body: CheckpointBody = {
    v: 1,
    repositoryId,
    trustId: registry?.trustId ?? null,
    seq: head.seq,
    digest: head.digest,
    time: now.toISOString(),
    signer: signed?.name ?? null,
  };
  const value = body as unknown as CanonicalValue;
  return { body, envelope: signEnvelope(PAYLOAD_TYPE.checkpoint, value, signed === undefined ? [] : [signed.signer]) };
}

/** What checking a log against a witness found: the checkpoints that are authentic, and the first problem. */
export interface WitnessCheck {
  /** Every well-formed checkpoint of this log, signed as it must be, oldest first, whether the log agrees or not. */
  checkpoints: CheckpointBody[];
  problem?: AuditProblem;
}

/**
 * Check a verified log (`entries`, in seq order from 0, of the repository `log` whose registry is `registry`)
 * against the checkpoints a witness holds for it. Each checkpoint must be well-formed and about this log; in
 * registry mode signed by an actor of the registry (removed ones keep their keys) under the same trust id; an
 * unsigned one stands only for an entry made while the repository had no registry. The log must hold every
 * checkpointed entry with its digest: a different one is a fork, a log ending before the newest checkpoint
 * was truncated. Returns the first problem, naming the entry.
 */
export function checkAgainstWitness(
  log: string,
  registry: RegistryState | undefined,
  entries: readonly VerifiedEntry[],
  stored: readonly StoredCheckpoint[],
): WitnessCheck {
  const checkpoints: CheckpointBody[] = [];
  let problem: AuditProblem | undefined;
  for (const c of [...stored].sort((x, y) => x.seq - y.seq)) {
    const checked = checkOne(c, log, registry, entries);
    if (typeof checked === 'string') {
      problem ??= { seq: c.seq, reason: `the witness's checkpoint of this entry ${checked}` };
      continue;
    }
    checkpoints.push(checked);
    const entry = entries[checked.seq];
    if (entry !== undefined && entry.digest !== checked.digest) {
      problem ??= {
        seq: checked.seq,
        reason:
          `forked at entry ${checked.seq}: the witness saw another entry here on ${checked.time} ` +
          `(digest ${short(checked.digest)}, the log's is ${short(entry.digest)})`,
      };
    }
  }
  const newest = checkpoints.at(-1);
  if (problem === undefined && newest !== undefined && newest.seq >= entries.length) {
    const end = entries.length === 0 ? 'the log is empty' : `the log ends at entry ${entries.length - 1}`;
    problem = { seq: newest.seq, reason: `truncated: the witness saw entry ${newest.seq} on ${newest.time}; ${end}` };
  }
  return problem === undefined ? { checkpoints } : { checkpoints, problem };
}

/** A stored checkpoint's body if it is well-formed, of this log and signed as it must be; else why not. */
function checkOne(
  c: StoredCheckpoint,
  log: string,
  registry: RegistryState | undefined,
  entries: readonly VerifiedEntry[],
): CheckpointBody | string {
  if (!isEnvelope(c.envelope) || c.envelope.payloadType !== PAYLOAD_TYPE.checkpoint) {
    return c.envelope === undefined ? 'cannot be read (damaged)' : 'is not a checkpoint';
  }
  const body = parsePayload(c.envelope);
  const problem = bodyProblem(body);
  if (problem !== undefined) return problem;
  const b = body as CheckpointBody;
  if (b.seq !== c.seq) return `says it is of entry ${b.seq}`;
  if (b.repositoryId !== log) return 'is of another repository';
  return signatureProblem(c.envelope, b, registry, entries[b.seq]) ?? b;
}

/** A digest as messages show it: its first 16 hex digits. */
export function short(digest: string): string {
  return `${digest.slice(0, 16)}…`;
}

/** Why a checkpoint's signature does not stand for `registry`'s repository (undefined if it does). */
function signatureProblem(
  env: Envelope,
  b: CheckpointBody,
  registry: RegistryState | undefined,
  entry: VerifiedEntry | undefined,
): string | undefined {
  if (b.signer === null) {
    if (b.trustId !== null) return 'names an actor registry but no signer';
    // a repository may start without a registry: its checkpoints from then stay valid once it has one
    if (registry === undefined || entry === undefined || entry.body.registryHead === null) return undefined;
    return 'is not signed, but the repository had an actor registry at that entry';
  }
  if (registry === undefined) return `was made under actor registry ${b.trustId}, which the repository no longer has`;
  if (b.trustId !== registry.trustId) return 'belongs to another actor registry (its trust id differs)';
  const a = registry.actors.get(b.signer);
  if (a === undefined) return `is signed by ${b.signer}, who is not in the actor registry`;
  if (!hasValidSignature(env, a.fingerprint, a.publicKey)) return `has no valid signature by ${b.signer}`;
  return undefined;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

function bodyProblem(v: unknown): string | undefined {
  if (!isPlain(v)) return 'is not a checkpoint';
  if (!hasOnly(v, ['v', 'repositoryId', 'trustId', 'seq', 'digest', 'time', 'signer'])) return 'has unknown fields';
  if (v.v !== 1) return `has version ${String(v.v)}, not one this build reads`;
  if (typeof v.repositoryId !== 'string' || v.repositoryId.length > 64) return 'has a bad repository id';
  if (v.trustId !== null && (typeof v.trustId !== 'string' || !HEX32.test(v.trustId))) return 'has a bad trust id';
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 0) return 'has a bad seq';
  if (typeof v.digest !== 'string' || !HEX64.test(v.digest)) return 'has a bad digest';
  if (typeof v.time !== 'string' || !ISO_RE.test(v.time) || Number.isNaN(Date.parse(v.time))) return 'has a bad time';
  if (v.signer !== null && (typeof v.signer !== 'string' || !ACTOR_NAME_RE.test(v.signer))) {
    return 'has a bad signer name';
  }
  return undefined;
}
