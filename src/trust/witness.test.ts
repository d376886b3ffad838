/**
 * A log checked against a witness's checkpoints: every way the two can disagree (a cut tail, another entry at a
 * checkpointed position) and every checkpoint that must not count (unsigned where a registry signs, signed by a
 * key the registry does not hold, of another registry or repository, damaged) is named with its entry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { registered, testActor } from '../../test/trust-helpers.js';
import type { AuditEntryBody, VerifiedEntry } from './audit.js';
import type { CanonicalValue } from './canonical.js';
import { PAYLOAD_TYPE, signEnvelope, type Envelope } from './envelope.js';
import { replayRegistry, type RegistryState } from './registry.js';
import { checkAgainstWitness, makeCheckpoint, type StoredCheckpoint } from './witness.js';

const LOG = '6f1c2f0e-8a55-4a4e-9d2a-6a8f0b1c2d3e';
const alice = testActor('alice');
const mallory = testActor('mallory');
const digestOf = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A registry whose only actor is alice, a human sysadmin. */
const registry: RegistryState = replayRegistry([
  signEnvelope(
    PAYLOAD_TYPE.registryEntry,
    {
      v: 1,
      trustId: randomBytes(16).toString('hex'),
      seq: 0,
      prev: null,
      time: '2026-03-01T12:00:00.000Z',
      signer: 'alice',
      action: { op: 'genesis', repositoryId: LOG, actor: { ...registered(alice, 'human', 'sysadmin') } },
    },
    [],
  ),
]);

/** A log of `n` entries; those from `registryFrom` on were checked against `registry`. */
function log(n: number, registryFrom = 0, salt = ''): VerifiedEntry[] {
  return Array.from({ length: n }, (_, seq) => ({
    body: { seq, registryHead: seq >= registryFrom ? registry.head : null } as AuditEntryBody,
    digest: digestOf(`${salt}entry ${seq}`),
    signedBy: undefined,
  }));
}

/** The checkpoint of entry `seq` of `entries`, as `audit checkpoint` makes it, and as a witness returns it. */
function checkpoint(
  entries: readonly VerifiedEntry[],
  seq: number,
  by = alice,
  mode: 'signed' | 'unsigned' = 'signed',
): StoredCheckpoint {
  const e = entries[seq] as VerifiedEntry;
  const reg = mode === 'signed' ? registry : undefined;
  return { seq, envelope: makeCheckpoint(LOG, reg, { seq, digest: e.digest }, by).envelope };
}

/** A checkpoint envelope with `body` as its payload, signed by `signers`. */
function raw(seq: number, patch: Record<string, CanonicalValue>, signers = [alice.signer]): StoredCheckpoint {
  const body = {
    v: 1,
    repositoryId: LOG,
    trustId: registry.trustId,
    seq,
    digest: digestOf(`entry ${seq}`),
    time: '2026-03-02T00:00:00.000Z',
    signer: 'alice',
    ...patch,
  };
  return { seq, envelope: signEnvelope(PAYLOAD_TYPE.checkpoint, body, signers) };
}

describe('checkAgainstWitness', () => {
  it('accepts a log that holds every checkpointed entry, and lists the checkpoints oldest first', () => {
    const entries = log(6);
    const r = checkAgainstWitness(LOG, registry, entries, [checkpoint(entries, 4), checkpoint(entries, 1)]);
    expect(r.problem).toBeUndefined();
    expect(r.checkpoints.map((c) => [c.seq, c.signer, c.trustId])).toEqual([
      [1, 'alice', registry.trustId],
      [4, 'alice', registry.trustId],
    ]);
    // the newest entry itself may be checkpointed
    expect(checkAgainstWitness(LOG, registry, entries, [checkpoint(entries, 5)]).problem).toBeUndefined();
    expect(checkAgainstWitness(LOG, registry, entries, [])).toEqual({ checkpoints: [] });
  });

  it('names a log cut before the newest checkpoint as truncated', () => {
    const entries = log(6);
    const stored = [checkpoint(entries, 2), checkpoint(entries, 5)];
    const r = checkAgainstWitness(LOG, registry, entries.slice(0, 4), stored);
    expect(r.problem?.seq).toBe(5);
    expect(r.problem?.reason).toMatch(/^truncated: the witness saw entry 5 on \S+Z; the log ends at entry 3$/);
    expect(checkAgainstWitness(LOG, registry, [], stored).problem?.reason).toMatch(/the log is empty$/);
  });

  it('names the first checkpointed entry the log holds with another digest as the fork', () => {
    const entries = log(6);
    const other = [...entries.slice(0, 3), ...log(6, 0, 'forged ').slice(3)];
    const stored = [checkpoint(entries, 1), checkpoint(entries, 3), checkpoint(entries, 5)];
    const r = checkAgainstWitness(LOG, registry, other, stored);
    expect(r.problem?.seq).toBe(3);
    expect(r.problem?.reason).toMatch(/^forked at entry 3: the witness saw another entry here on /);
    // every authentic checkpoint is listed, so a report can name the newest the witness saw
    expect(r.checkpoints.map((c) => c.seq)).toEqual([1, 3, 5]);
  });

  it('refuses a checkpoint signed by a key the registry does not hold, or not signed by its signer', () => {
    const entries = log(3);
    const byMallory = checkpoint(entries, 1, mallory);
    expect(checkAgainstWitness(LOG, registry, entries, [byMallory]).problem).toEqual({
      seq: 1,
      reason: "the witness's checkpoint of this entry is signed by mallory, who is not in the actor registry",
    });
    // mallory's key under alice's name
    const forged = checkAgainstWitness(LOG, registry, entries, [raw(1, {}, [mallory.signer])]);
    expect(forged.problem?.reason).toMatch(/has no valid signature by alice$/);
    expect(checkAgainstWitness(LOG, registry, entries, [raw(1, {})]).problem).toBeUndefined();
  });

  it('takes an unsigned checkpoint only for an entry made while the repository had no registry', () => {
    const entries = log(5, 3);
    const early = checkpoint(entries, 2, alice, 'unsigned');
    const late = checkpoint(entries, 4, alice, 'unsigned');
    expect(checkAgainstWitness(LOG, registry, entries, [early]).problem).toBeUndefined();
    expect(checkAgainstWitness(LOG, registry, entries, [early, late]).problem).toEqual({
      seq: 4,
      reason:
        "the witness's checkpoint of this entry is not signed, but the repository had an actor registry at that entry",
    });
    // without a registry, unsigned is the rule
    expect(checkAgainstWitness(LOG, undefined, entries, [early, late]).problem).toBeUndefined();
  });

  it('refuses a checkpoint of another registry, or one made under a registry the repository lost', () => {
    const entries = log(3);
    const other = raw(1, { trustId: randomBytes(16).toString('hex') });
    expect(checkAgainstWitness(LOG, registry, entries, [other]).problem?.reason).toMatch(/another actor registry/);
    const signed = checkpoint(entries, 1);
    expect(checkAgainstWitness(LOG, undefined, entries, [signed]).problem?.reason).toMatch(
      new RegExp(`was made under actor registry ${registry.trustId}, which the repository no longer has$`),
    );
    expect(checkAgainstWitness(LOG, registry, entries, [raw(1, { signer: null })]).problem?.reason).toMatch(
      /names an actor registry but no signer$/,
    );
  });

  it('refuses a damaged, foreign, misplaced or malformed checkpoint', () => {
    const entries = log(3);
    const reasonOf = (c: StoredCheckpoint): string | undefined =>
      checkAgainstWitness(LOG, registry, entries, [c]).problem?.reason;
    expect(reasonOf({ seq: 1, envelope: undefined })).toMatch(/cannot be read \(damaged\)$/);
    const audit = signEnvelope(PAYLOAD_TYPE.auditEntry, { seq: 1 }, [alice.signer]);
    expect(reasonOf({ seq: 1, envelope: audit })).toMatch(/is not a checkpoint$/);
    expect(reasonOf({ seq: 2, envelope: raw(1, {}).envelope as Envelope })).toMatch(/says it is of entry 1$/);
    expect(reasonOf(raw(1, { repositoryId: 'another' }))).toMatch(/is of another repository$/);
    expect(reasonOf(raw(1, { extra: 1 }))).toMatch(/has unknown fields$/);
    expect(reasonOf(raw(1, { digest: 'abc' }))).toMatch(/has a bad digest$/);
    expect(reasonOf(raw(1, { v: 2 }))).toMatch(/has version 2/);
    // the first bad checkpoint is named, even with good ones after it
    const r = checkAgainstWitness(LOG, registry, entries, [raw(2, {}), { seq: 1, envelope: undefined }]);
    expect(r.problem?.seq).toBe(1);
  });
});

describe('makeCheckpoint', () => {
  it('signs in registry mode and leaves the checkpoint unsigned without a registry', () => {
    const head = { seq: 7, digest: digestOf('entry 7') };
    const signed = makeCheckpoint(LOG, registry, head, alice, new Date('2026-03-03T00:00:00.000Z'));
    expect(signed.body).toEqual({
      v: 1,
      repositoryId: LOG,
      trustId: registry.trustId,
      seq: 7,
      digest: head.digest,
      time: '2026-03-03T00:00:00.000Z',
      signer: 'alice',
    });
    expect(signed.envelope.signatures.map((s) => s.keyid)).toEqual([alice.signer.fingerprint]);
    const unsigned = makeCheckpoint(LOG, undefined, head, alice);
    expect(unsigned.body.signer).toBeNull();
    expect(unsigned.body.trustId).toBeNull();
    expect(unsigned.envelope.signatures).toEqual([]);
  });
});
