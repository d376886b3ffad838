/**
 * The trail of another repository (its actor registry and audit log) carried into this one by `copy`, so the
 * history of a lost repository can be read and verified from its offsite copy alone.
 *
 * The carried objects keep their names behind a prefix naming the origin's repository id, in the `witness/`
 * folder (the one that holds evidence about other repositories' logs): `<origin>.registry.<seq>`,
 * `<origin>.audit.<seq>` and `<origin>.audit.<seq>-<field>`. Each is the origin's envelope as its actors signed
 * it, sealed again with this repository's key and bound to its full name. Verification is the origin's own: the
 * registry replayed from its genesis (which names the origin's id), the audit chain linked entry to entry, each
 * entry naming the origin as its log and signed by its actor's key in that registry. Nothing here is read by this
 * repository's gate: the origin's actors, roles and approvals count for nothing in it.
 *
 * Copying is incremental and append-only: the origin's trail, verified from its start, must extend what is
 * carried (hold the same entry where the carried copy has its newest), and only the entries after it are
 * written, registry first, each create-only and in order. A run cut off leaves a shorter carried trail that the
 * next run extends; an origin whose trail was cut back or rewritten is TRUST_BROKEN before anything is written.
 * A copy reads only the newest carried entries; `audit verify --origin` reads and checks the carried copy whole.
 */
import { FoleBackupError, StopError } from '../errors.js';
import type { SealedObjects } from '../repository/slices.js';
import {
  disclosuresOf,
  newestEnvelope,
  readAudit,
  storeLogEntry,
  type AuditLog,
  type AuditPlace,
} from './audit-store.js';
import { isEnvelope, parsePayload, payloadDigest, PAYLOAD_TYPE, type Envelope } from './envelope.js';
import { RegistryError, replayRegistry, type RegistryState } from './registry.js';
import type { ObjectPlace } from './object-place.js';
import { newestRegistryEnvelope, readRegistryEnvelopes, storeRegistryEntry } from './registry-store.js';
import { isPlain } from './shape.js';

type Repo = SealedObjects & { readonly config: { readonly id: string } };

/** Repository ids this tool makes (UUIDs) and takes as an origin: they become part of object names. */
const ORIGIN_RE = /^[A-Za-z0-9_-]{1,64}$/;
const CARRIED_RE = /^([A-Za-z0-9_-]{1,64})\.(audit|registry)\.\d{10}$/;
const FOLDER = 'witness';

/** Where the trail carried from `origin` lives in the repository that holds it. */
export function carriedPlaces(origin: string): { registry: ObjectPlace; audit: AuditPlace } {
  if (!ORIGIN_RE.test(origin)) {
    throw new StopError(
      'TRUST_BROKEN',
      `repository id ${JSON.stringify(origin.slice(0, 80))} is not one this tool makes`,
      {
        hint: "its trail cannot be carried or named; check the source repository's config",
      },
    );
  }
  return {
    registry: { type: FOLDER, prefix: `${origin}.registry.` },
    audit: { type: FOLDER, prefix: `${origin}.audit.`, log: origin },
  };
}

/** The origins whose trail a repository holds, with how many audit entries of each, sorted by id. */
export async function listOrigins(repo: SealedObjects): Promise<{ origin: string; auditEntries: number }[]> {
  const counts = new Map<string, number>();
  for await (const o of repo.backend.list(FOLDER)) {
    const m = CARRIED_RE.exec(o.name);
    if (m === null) continue;
    const origin = m[1] as string;
    counts.set(origin, (counts.get(origin) ?? 0) + (m[2] === 'audit' ? 1 : 0));
  }
  return [...counts]
    .map(([origin, auditEntries]) => ({ origin, auditEntries }))
    .sort((a, b) => (a.origin < b.origin ? -1 : 1));
}

/** A trail read back and verified: the registry's envelopes and its replay, and the audit log checked against it. */
export interface Trail {
  registryEnvelopes: unknown[];
  registry: RegistryState | undefined;
  /** Its `problem` is the first that verification found, the registry's included (reported at entry 0). */
  log: AuditLog;
}

const emptyLog = (reason: string): AuditLog => ({
  entries: [],
  envelopes: [],
  disclosed: new Map(),
  salts: new Map(),
  problem: { seq: 0, reason },
  head: undefined,
});

/** Read and verify a trail: a repository's own (`places` undefined) or one it carries. */
async function readTrail(repo: Repo, log: string, places?: ReturnType<typeof carriedPlaces>): Promise<Trail> {
  let registryEnvelopes: unknown[];
  let registry: RegistryState | undefined;
  try {
    registryEnvelopes = await readRegistryEnvelopes(repo, places?.registry);
    registry = registryEnvelopes.length === 0 ? undefined : replayRegistry(registryEnvelopes);
  } catch (err) {
    if (!(err instanceof RegistryError || (err instanceof StopError && err.code === 'TRUST_BROKEN'))) throw err;
    return { registryEnvelopes: [], registry: undefined, log: emptyLog(`its actor registry: ${err.message}`) };
  }
  if (registry !== undefined && registry.repositoryId !== log) {
    return { registryEnvelopes, registry, log: emptyLog('its actor registry belongs to another repository') };
  }
  return { registryEnvelopes, registry, log: await readAudit(repo, registry, places?.audit) };
}

/** The trail carried from `origin`, verified as the origin's own would be (see the module comment). */
export function readCarriedTrail(repo: Repo, origin: string): Promise<Trail> {
  return readTrail(repo, origin, carriedPlaces(origin));
}

/** What a copy carries: the origin, and the registry and audit entries after what is carried ([from, to)). */
export interface CarryPlan {
  origin: string;
  registry: { from: number; to: number };
  audit: { from: number; to: number };
}

const refuse = (origin: string, why: string, hint: string): StopError =>
  new StopError('TRUST_BROKEN', `the trail of ${origin}: ${why}; nothing of it was carried`, { hint });

const REWRITTEN_HINT =
  'the source repository was cut back or rewritten since the last copy (or this is another copy of it); keep ' +
  "both as they are and have a sysadmin compare the source's `audit log` with " +
  '`audit log --origin ID` on the target';

/** What a copy needs of the trail the target carries: the newest entry of each chain, its digest. */
interface CarriedHeads {
  registry: { seq: number; digest: string; trustId: string } | undefined;
  audit: { seq: number; digest: string } | undefined;
}

const damagedHint = (origin: string): string =>
  `the target's copy was damaged or edited: see \`fole-backup audit verify --origin ${origin}\` on the target`;

/**
 * The newest entries the target carries, not the chains below them: a copy extends from there, and reading a
 * long log back from a distant target on every copy would cost one request per entry (`audit verify --origin`
 * reads and checks it all). TRUST_BROKEN for a newest entry that cannot be read or is not one of this origin's.
 */
async function readCarriedHeads(repo: Repo, origin: string): Promise<CarriedHeads> {
  const places = carriedPlaces(origin);
  const bad = (why: string): StopError => refuse(origin, `the target's copy: ${why}`, damagedHint(origin));
  let r: { seq: number; env: unknown } | undefined;
  let a: { seq: number; env: unknown } | undefined;
  try {
    r = await newestRegistryEnvelope(repo, places.registry);
    a = await newestEnvelope(repo, places.audit);
  } catch (err) {
    if (err instanceof StopError && err.code === 'TRUST_BROKEN') throw bad(err.message);
    if (err instanceof FoleBackupError && (err.code === 'REPO_CORRUPT' || err.code === 'CHECKSUM_MISMATCH')) {
      throw bad(`its newest entry cannot be read: ${err.message}`);
    }
    throw err;
  }
  const body = (x: { env: unknown }, type: string): Record<string, unknown> | undefined => {
    if (!isEnvelope(x.env) || x.env.payloadType !== type) return undefined;
    const b = parsePayload(x.env);
    return isPlain(b) ? b : undefined;
  };
  let registry: CarriedHeads['registry'];
  if (r !== undefined) {
    const b = body(r, PAYLOAD_TYPE.registryEntry);
    if (b?.seq !== r.seq || typeof b.trustId !== 'string') throw bad(`registry entry ${r.seq} is not one`);
    registry = { seq: r.seq, digest: payloadDigest(r.env as Envelope), trustId: b.trustId };
  }
  let audit: CarriedHeads['audit'];
  if (a !== undefined) {
    const b = body(a, PAYLOAD_TYPE.auditEntry);
    if (b?.seq !== a.seq || b.log !== origin) throw bad(`audit entry ${a.seq} is not one of this log`);
    audit = { seq: a.seq, digest: payloadDigest(a.env as Envelope) };
  }
  return { registry, audit };
}

/**
 * Decide what to carry from `source` (the origin's own trail, as read from it and verified) given the newest
 * entries the target carries. Pure. Throws TRUST_BROKEN when the source does not verify or does not extend what
 * is carried: fewer entries (truncated), another entry at the carried head (rewritten or forked), another
 * registry.
 */
function planCarry(origin: string, source: Trail, carried: CarriedHeads): CarryPlan {
  if (source.log.problem !== undefined) {
    const p = source.log.problem;
    throw refuse(
      origin,
      `the source's audit log fails verification at entry ${p.seq}: ${p.reason}`,
      'run `fole-backup audit verify` on the source; carry nothing until a sysadmin has found out why',
    );
  }
  const held = carried.registry === undefined ? 0 : carried.registry.seq + 1;
  if (carried.registry !== undefined) {
    const s = source.registry;
    if (s === undefined)
      throw refuse(origin, `the source has no actor registry, the target holds ${held} entries`, REWRITTEN_HINT);
    if (s.trustId !== carried.registry.trustId)
      throw refuse(origin, 'the source has another actor registry (its trust id differs)', REWRITTEN_HINT);
    if (s.digests.length < held) {
      throw refuse(
        origin,
        `the source's actor registry has ${s.digests.length} entries, the target holds ${held}`,
        REWRITTEN_HINT,
      );
    }
    if (s.digests[held - 1] !== carried.registry.digest) {
      throw refuse(origin, `registry entry ${held - 1} of the source differs from the one carried`, REWRITTEN_HINT);
    }
  }
  const have = carried.audit === undefined ? 0 : carried.audit.seq + 1;
  const has = source.log.entries.length;
  if (has < have) {
    throw refuse(
      origin,
      `the source's audit log has ${has} entries, the target holds ${have} (truncated)`,
      REWRITTEN_HINT,
    );
  }
  if (have > 0 && source.log.entries[have - 1]?.digest !== carried.audit?.digest) {
    throw refuse(
      origin,
      `audit entry ${have - 1} of the source differs from the one carried (rewritten)`,
      REWRITTEN_HINT,
    );
  }
  return {
    origin,
    registry: { from: held, to: source.registryEnvelopes.length },
    audit: { from: have, to: has },
  };
}

/** Read the source's trail and the one the target carries of it, and plan what to carry (see planCarry). */
export async function prepareCarry(from: Repo, to: Repo): Promise<{ plan: CarryPlan; source: Trail }> {
  const origin = from.config.id;
  const [source, carried] = await Promise.all([readTrail(from, origin), readCarriedHeads(to, origin)]);
  return { plan: planCarry(origin, source, carried), source };
}

/** Write the planned entries into `to`: registry entries, then audit entries with their disclosures, in order. */
export async function carryTrail(
  to: Repo,
  plan: CarryPlan,
  source: Trail,
  signal?: AbortSignal,
): Promise<{ registryEntries: number; auditEntries: number }> {
  const places = carriedPlaces(plan.origin);
  for (let seq = plan.registry.from; seq < plan.registry.to; seq++) {
    signal?.throwIfAborted();
    await storeRegistryEntry(to, places.registry, seq, source.registryEnvelopes[seq] as Envelope);
  }
  for (let seq = plan.audit.from; seq < plan.audit.to; seq++) {
    signal?.throwIfAborted();
    const env = source.log.envelopes[seq];
    if (env === undefined) throw new FoleBackupError('INTERNAL', `carry audit entry ${seq}: not read`);
    await storeLogEntry(to, places.audit, seq, env, disclosuresOf(source.log, seq));
  }
  return { registryEntries: plan.registry.to - plan.registry.from, auditEntries: plan.audit.to - plan.audit.from };
}

/**
 * The origin `ref` names among those a repository carries: its whole id, or a unique prefix of 8 or more
 * characters. NOT_FOUND naming the origins it does carry; USAGE for a prefix that several share.
 */
export async function resolveOrigin(repo: SealedObjects, ref: string): Promise<string> {
  const origins = (await listOrigins(repo)).map((o) => o.origin);
  const matches = origins.filter((o) => o === ref || (ref.length >= 8 && o.startsWith(ref)));
  if (matches.length === 1) return matches[0] as string;
  if (matches.length > 1) {
    throw new FoleBackupError('USAGE', `--origin ${ref} names ${matches.length} repositories`, {
      hint: `give more of the id: ${matches.join(', ')}`,
    });
  }
  throw new FoleBackupError(
    'NOT_FOUND',
    `this repository holds no audit trail of ${JSON.stringify(ref.slice(0, 80))}`,
    {
      hint:
        origins.length === 0
          ? '`fole-backup copy` carries the audit trail of the repository it copies from; none was copied here yet'
          : `it holds the trails of: ${origins.join(', ')}`,
    },
  );
}
