/**
 * authorize is the one check every entry point asks: a role holds its permissions everywhere, a project grant
 * holds only on its project, and an agent never holds what AGENT_FORBIDDEN lists, whatever it was given.
 */
import { describe, expect, it } from 'vitest';
import {
  AGENT_FORBIDDEN,
  authorize,
  grantProblem,
  isPermission,
  isRole,
  PERMISSION_NAMES,
  PROJECT_SCOPABLE,
  ROLE_NAMES,
  type ActorPermissions,
  type Grant,
  type Permission,
  type Role,
} from './permissions.js';

const actor = (role: Role, kind: 'human' | 'agent' = 'human', grants: Grant[] = []): ActorPermissions => ({
  name: `${kind}-${role}`,
  kind,
  role,
  grants,
});

const allowed = (a: ActorPermissions, p: Permission, project?: string): boolean =>
  authorize(a, p, project === undefined ? {} : { project }).allowed;

/** What each role must hold, written out here rather than read from ROLES, so a change to ROLES fails a test. */
const EXPECTED: Record<Role, Permission[]> = {
  sysadmin: [...PERMISSION_NAMES],
  operator: ['backup.create', 'backup.read', 'backup.verify', 'backup.export', 'audit.read'],
  auditor: ['backup.read', 'backup.verify', 'audit.read'],
  none: [],
};

describe('authorize', () => {
  it('gives each human role exactly its permissions, on the whole repository and on any project', () => {
    expect([...ROLE_NAMES].sort()).toEqual(Object.keys(EXPECTED).sort());
    expect(PERMISSION_NAMES).toHaveLength(12);
    for (const role of ROLE_NAMES) {
      const a = actor(role);
      const held = PERMISSION_NAMES.filter((p) => allowed(a, p));
      expect(held, role).toEqual(EXPECTED[role]);
      expect(
        PERMISSION_NAMES.filter((p) => allowed(a, p, 'P1')),
        role,
      ).toEqual(EXPECTED[role]);
    }
    expect(authorize(actor('operator'), 'backup.create')).toEqual({ allowed: true, via: 'role operator' });
    expect(authorize(actor('auditor'), 'backup.create')).toEqual({
      allowed: false,
      reason: 'human-auditor (role auditor) does not hold backup.create',
    });
  });

  it('never lets an agent use AGENT_FORBIDDEN, even as sysadmin and with a grant of it', () => {
    expect([...AGENT_FORBIDDEN].sort()).toEqual(['actors.admin', 'audit.redact', 'backup.approve', 'backup.keys']);
    for (const role of ROLE_NAMES) {
      const grants: Grant[] = AGENT_FORBIDDEN.map((permission) => ({ permission }));
      const a = actor(role, 'agent', grants);
      for (const p of AGENT_FORBIDDEN) {
        expect(authorize(a, p), `${role} ${p}`).toEqual({ allowed: false, reason: `an agent may never hold ${p}` });
        expect(allowed(a, p, 'P1'), `${role} ${p} on a project`).toBe(false);
      }
    }
    // everything else an agent sysadmin does hold
    const agentAdmin = actor('sysadmin', 'agent');
    expect(PERMISSION_NAMES.filter((p) => allowed(agentAdmin, p))).toEqual(
      PERMISSION_NAMES.filter((p) => !AGENT_FORBIDDEN.includes(p)),
    );
  });

  it('a grant without a project holds everywhere; one with a project only on that project', () => {
    const everywhere = actor('none', 'human', [{ permission: 'backup.restore' }]);
    expect(authorize(everywhere, 'backup.restore')).toEqual({ allowed: true, via: 'grant backup.restore' });
    expect(allowed(everywhere, 'backup.restore', 'P1')).toBe(true);
    expect(allowed(everywhere, 'backup.import')).toBe(false);

    const owner = actor('none', 'human', [{ permission: 'backup.restore', project: 'P1' }]);
    expect(authorize(owner, 'backup.restore', { project: 'P1' })).toEqual({
      allowed: true,
      via: 'grant backup.restore on project P1',
    });
    expect(authorize(owner, 'backup.restore', {})).toEqual({
      allowed: false,
      reason: 'human-none holds backup.restore only on project P1, not on the whole repository',
    });
    expect(authorize(owner, 'backup.restore')).toMatchObject({ allowed: false });
    expect(authorize(owner, 'backup.restore', { project: 'P2' })).toEqual({
      allowed: false,
      reason: 'human-none holds backup.restore only on project P1, not on project P2',
    });
    // a project id that merely starts with, or differs in case from, the granted one is another project
    for (const other of ['P10', 'p1', 'P', ' P1', 'P1 '])
      expect(allowed(owner, 'backup.restore', other), other).toBe(false);
    // it gives no other permission on its project
    expect(allowed(owner, 'backup.read', 'P1')).toBe(false);
  });

  it('several project grants each hold on their own project only', () => {
    const a = actor('auditor', 'agent', [
      { permission: 'backup.restore', project: 'P1' },
      { permission: 'backup.restore', project: 'P2' },
    ]);
    expect(allowed(a, 'backup.restore', 'P1')).toBe(true);
    expect(allowed(a, 'backup.restore', 'P2')).toBe(true);
    expect(allowed(a, 'backup.restore', 'P3')).toBe(false);
    expect(authorize(a, 'backup.restore')).toMatchObject({ reason: expect.stringMatching(/only on project P1, P2,/) });
  });

  it('a role permission holds everywhere even if a grant limits the same permission to a project', () => {
    const a = actor('operator', 'human', [{ permission: 'backup.read', project: 'P1' }]);
    expect(allowed(a, 'backup.read')).toBe(true);
    expect(allowed(a, 'backup.read', 'P2')).toBe(true);
  });
});

describe('grantProblem', () => {
  it('refuses granting an agent any AGENT_FORBIDDEN permission, and nothing else for lack of scope', () => {
    for (const p of PERMISSION_NAMES) {
      const problem = grantProblem('agent', { permission: p });
      if (AGENT_FORBIDDEN.includes(p)) expect(problem, p).toBe(`an agent may never be granted ${p}`);
      else expect(problem, p).toBeUndefined();
      if (p !== 'actors.admin') expect(grantProblem('human', { permission: p }), p).toBeUndefined();
    }
  });

  it('never grants actors.admin: only human sysadmins sign registry entries, so it would allow nothing', () => {
    expect(grantProblem('human', { permission: 'actors.admin' })).toMatch(/comes only with the sysadmin role/);
  });

  it('lets only PROJECT_SCOPABLE permissions take a project', () => {
    expect([...PROJECT_SCOPABLE].sort()).toEqual([
      'backup.export',
      'backup.import',
      'backup.read',
      'backup.restore',
      'backup.verify',
    ]);
    for (const p of PERMISSION_NAMES) {
      if (p === 'actors.admin') continue;
      const problem = grantProblem('human', { permission: p, project: 'P1' });
      if (PROJECT_SCOPABLE.includes(p)) expect(problem, p).toBeUndefined();
      else expect(problem, p).toMatch(new RegExp(`^${p.replace('.', '\\.')} cannot be limited to a project`));
    }
  });

  it('names the agent rule first when both apply', () => {
    expect(grantProblem('agent', { permission: 'backup.keys', project: 'P1' })).toBe(
      'an agent may never be granted backup.keys',
    );
  });
});

describe('isPermission and isRole', () => {
  it('accept the names and refuse anything else, including inherited property names', () => {
    expect(isPermission('backup.create')).toBe(true);
    expect(isRole('auditor')).toBe(true);
    for (const v of [
      'toString',
      '__proto__',
      'constructor',
      'hasOwnProperty',
      'backup',
      '',
      'BACKUP.CREATE',
      1,
      null,
    ]) {
      expect(isPermission(v), String(v)).toBe(false);
      expect(isRole(v), String(v)).toBe(false);
    }
  });
});
