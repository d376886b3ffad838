/**
 * A trail carried from one repository into another: it reads back and verifies as the origin's own, from the
 * holder alone; later copies add only the new entries, and a run cut off is finished by the next; an origin whose
 * log or registry was cut back or rewritten is refused before anything is written; damage to the carried copy is
 * named; and the carried actors count for nothing in the holder's gate.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAST_KDF, TEST_PASSWORD } from '../../test/repo-helpers.js';
import { caught, newTeam, T0, teamRegistry, type Team } from '../../test/trust-helpers.js';
import { MemoryBackend } from '../backend/memory.js';
import { StopError } from '../errors.js';
import { Repository } from '../repository/repository.js';
import { appendAudit, type AuditInput } from './audit-store.js';
import { commitment, disclose } from './audit.js';
import {
  carriedPlaces,
  carryTrail,
  listOrigins,
  prepareCarry,
  readCarriedTrail,
  resolveOrigin,
} from './carried-trail.js';
import { openGate } from './gate.js';
import type { RegistryState } from './registry.js';
import { readRegistry } from './registry-store.js';

/** This machine's trust state, for the gate. */
const stateDir = mkdtempSync(join(tmpdir(), 'fole-carried-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

const newRepo = (): Promise<Repository> => Repository.init(new MemoryBackend(), TEST_PASSWORD, { kdf: FAST_KDF });

/** Append an entry by `who` of `team` (signed), with one redactable value. */
async function log(repo: Repository, registry: RegistryState, team: Team, op: string): Promise<void> {
  const d = disclose('target', `/srv/${op}`);
  const input: AuditInput = {
    time: T0.toISOString(),
    actor: { name: 'alice', kind: 'human', authenticated: true },
    host: 'h',
    op,
    args: [op, '--target', { redactable: 'target' }],
    commitments: { target: commitment(d) },
    result: { status: 'ok' },
    backupIds: [],
    counts: {},
    durationMs: 1,
    registryHead: registry.head,
    approvals: [],
  };
  await appendAudit(repo, input, [d], team.alice.signer);
}

/** Carry `from`'s trail into `to` as copy does; returns the entries it added. */
async function carry(from: Repository, to: Repository): Promise<{ registryEntries: number; auditEntries: number }> {
  const { plan, source } = await prepareCarry(from, to);
  return carryTrail(to, plan, source);
}

async function carriedNames(repo: Repository): Promise<string[]> {
  const out: string[] = [];
  for await (const o of repo.backend.list('witness')) out.push(o.name);
  return out.sort();
}

async function origin(entries: number): Promise<{ repo: Repository; registry: RegistryState; team: Team }> {
  const team = newTeam();
  const repo = await newRepo();
  const registry = await teamRegistry(repo, team);
  for (let i = 0; i < entries; i++) await log(repo, registry, team, `op${i}`);
  return { repo, registry, team };
}

describe('a carried trail', () => {
  it('verifies from the holder alone as the origin’s own, signatures and disclosures included', async () => {
    const a = await origin(3);
    const b = await newRepo();
    expect(await carry(a.repo, b)).toEqual({ registryEntries: 3, auditEntries: 3 });
    await a.repo.close();
    const trail = await readCarriedTrail(b, a.repo.config.id);
    expect(trail.log.problem).toBeUndefined();
    expect(trail.registry?.trustId).toBe(a.registry.trustId);
    expect(trail.log.entries.map((e) => [e.body.op, e.signedBy, e.body.log])).toEqual(
      ['op0', 'op1', 'op2'].map((op) => [op, 'alice', a.repo.config.id]),
    );
    expect(trail.log.disclosed.get(1)?.get('target')).toBe('/srv/op1');
    expect(await listOrigins(b)).toEqual([{ origin: a.repo.config.id, auditEntries: 3 }]);
    expect(await resolveOrigin(b, a.repo.config.id.slice(0, 8))).toBe(a.repo.config.id);
    await expect(resolveOrigin(b, 'ffffffff')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // the holder's own registry and log are untouched by it
    expect(await readRegistry(b)).toBeUndefined();
  });

  it('adds only new entries, finishes a run cut off, and a second run adds nothing', async () => {
    const a = await origin(2);
    const b = await newRepo();
    await carry(a.repo, b);
    await log(a.repo, a.registry, a.team, 'later1');
    await log(a.repo, a.registry, a.team, 'later2');
    // a run that wrote one of the two new entries before it was cut off
    const { plan, source } = await prepareCarry(a.repo, b);
    expect(plan.audit).toEqual({ from: 2, to: 4 });
    await carryTrail(b, { ...plan, audit: { from: 2, to: 3 } }, source);
    expect(await carry(a.repo, b)).toEqual({ registryEntries: 0, auditEntries: 1 });
    expect(await carry(a.repo, b)).toEqual({ registryEntries: 0, auditEntries: 0 });
    const trail = await readCarriedTrail(b, a.repo.config.id);
    expect(trail.log.problem).toBeUndefined();
    expect(trail.log.entries.map((e) => e.body.op)).toEqual(['op0', 'op1', 'later1', 'later2']);
  });

  it.each([
    ['truncated', 'has 2 entries, the target holds 3'],
    ['rewritten', 'audit entry 2 of the source differs'],
  ] as const)('is refused from an origin whose log was %s since, and nothing is carried', async (how, message) => {
    const a = await origin(3);
    const b = await newRepo();
    await carry(a.repo, b);
    const before = await carriedNames(b);
    // whoever holds the origin's secret cuts its log back (and writes another entry in place of the last)
    await a.repo.backend.remove({ type: 'audit', name: '0000000002' });
    await a.repo.backend.remove({ type: 'audit', name: '0000000002-target' });
    if (how === 'rewritten') await log(a.repo, a.registry, a.team, 'other');
    await log(a.repo, a.registry, a.team, 'next');
    if (how === 'truncated') {
      await a.repo.backend.remove({ type: 'audit', name: '0000000002' });
      await a.repo.backend.remove({ type: 'audit', name: '0000000002-target' });
    }
    const err = await caught(() => carry(a.repo, b));
    expect(err).toBeInstanceOf(StopError);
    expect(err).toMatchObject({ code: 'TRUST_BROKEN' });
    expect(err.message).toContain(message);
    expect(await carriedNames(b)).toEqual(before);
  });

  it('is refused from an origin whose registry was replaced', async () => {
    const a = await origin(1);
    const b = await newRepo();
    await carry(a.repo, b);
    const before = await carriedNames(b);
    // a repository under a's id with a registry and log made anew: what whoever holds a's secret could put there
    const fresh = await newRepo();
    const impostor = Object.create(fresh, { config: { value: { ...fresh.config, id: a.repo.config.id } } });
    const team = newTeam();
    const registry = await teamRegistry(impostor, team);
    await log(impostor, registry, team, 'op0');
    const err = await caught(() => carry(impostor, b));
    expect(err).toMatchObject({ code: 'TRUST_BROKEN' });
    expect(err.message).toContain('the source has another actor registry (its trust id differs)');
    expect(await carriedNames(b)).toEqual(before);
  });

  it('names damage to the carried copy; a copy refuses to extend a newest entry that is not one', async () => {
    const a = await origin(3);
    const b = await newRepo();
    await carry(a.repo, b);
    const { audit } = carriedPlaces(a.repo.config.id);
    const middle = { type: 'witness' as const, name: `${audit.prefix}0000000001` };
    const newest = { type: 'witness' as const, name: `${audit.prefix}0000000002` };
    const saved = await b.backend.load(middle);
    await b.backend.remove(middle);
    expect((await readCarriedTrail(b, a.repo.config.id)).log.problem).toEqual({
      seq: 1,
      reason: 'the entry is missing',
    });
    await b.backend.save(middle, saved);
    // another entry's sealed bytes under the newest name: its associated data does not match
    await b.backend.remove(newest);
    await b.backend.save(newest, saved);
    expect((await readCarriedTrail(b, a.repo.config.id)).log.problem).toMatchObject({ seq: 2 });
    await log(a.repo, a.registry, a.team, 'later');
    const err = await caught(() => carry(a.repo, b));
    expect(err).toMatchObject({ code: 'TRUST_BROKEN' });
    expect(err.message).toContain("the target's copy: its newest entry cannot be read");
  });

  it('gives the origin’s actors nothing in the holder: its gate knows only its own registry', async () => {
    const a = await origin(1);
    const b = await newRepo();
    const bTeam = newTeam();
    await teamRegistry(b, bTeam);
    await carry(a.repo, b);
    // a's alice holds a's key: b's alice is another key, and a's other sysadmin bob is not b's bob either
    for (const who of [a.team.alice, a.team.bob]) {
      const err = await caught(() =>
        openGate(b, { actor: who.name, signer: who.signer }, 'backup', {}, { stateDir, now: new Date() }),
      );
      expect(err).toMatchObject({ code: 'PERMISSION_DENIED' });
    }
    const ok = await openGate(b, { actor: 'alice', signer: bTeam.alice.signer }, 'backup', {}, { stateDir });
    expect(ok.registry?.trustId).not.toBe(a.registry.trustId);
  });
});
