/**
 * Who may do what: named permissions, the roles that bundle them, grants scoped
 * to one FOLE project, and the one check every entry point asks (`authorize`).
 * Pure: the registry (registry.ts) says who an actor is; this says what that
 * actor may do.
 */

/** Every permission, with what it allows. */
export const PERMISSIONS = {
  'backup.create': 'make backups',
  'backup.read': 'list backups, read manifests, browse snapshots',
  'backup.verify': 'verify backups and check the repository',
  'backup.restore': 'restore backups (and roll back an interrupted restore or a migration)',
  'backup.export': 'export a project or module',
  'backup.import': 'import an export',
  'backup.forget': 'forget backups, prune the repository, remove stale locks',
  'backup.keys': 'add, list and remove repository keys',
  'backup.approve': 'approve requests for gated operations',
  'actors.admin': 'register, remove and grant permissions to actors',
  'audit.read': 'read and verify the audit log',
  'audit.redact': 'redact a sensitive value from the audit log',
} as const;

/** A permission's name, e.g. `backup.restore`. */
export type Permission = keyof typeof PERMISSIONS;
export const PERMISSION_NAMES = Object.keys(PERMISSIONS) as Permission[];

/** What a role grants, everywhere (not scoped to a project). */
export const ROLES = {
  sysadmin: PERMISSION_NAMES,
  operator: ['backup.create', 'backup.read', 'backup.verify', 'backup.export', 'audit.read'],
  auditor: ['backup.read', 'backup.verify', 'audit.read'],
  /** An actor whose permissions are only its grants (e.g. a FOLE ProjectOwner given one project). */
  none: [],
} as const satisfies Record<string, readonly Permission[]>;

/** A role's name: `sysadmin`, `operator`, `auditor` or `none`. */
export type Role = keyof typeof ROLES;
export const ROLE_NAMES = Object.keys(ROLES) as Role[];

/** Permissions an agent never holds, whatever its role or grants: it may not approve, manage actors or keys. */
export const AGENT_FORBIDDEN: readonly Permission[] = ['actors.admin', 'backup.approve', 'backup.keys', 'audit.redact'];

/** Permissions a grant may scope to one project (the ones a project's owner or admin uses on their own project). */
export const PROJECT_SCOPABLE: readonly Permission[] = [
  'backup.read',
  'backup.verify',
  'backup.restore',
  'backup.export',
  'backup.import',
];

/** Whether an actor is a person or an AI agent: the registry says, never the caller. */
export type ActorKind = 'human' | 'agent';

/** One grant beyond the role: a permission, everywhere or on one project. */
export interface Grant {
  permission: Permission;
  /** The FOLE project id it is limited to; absent = everywhere. */
  project?: string;
}

/** What authorize needs to know about an actor. */
export interface ActorPermissions {
  name: string;
  kind: ActorKind;
  role: Role;
  grants: readonly Grant[];
}

/** What an operation touches: the whole repository, or one project of it. */
export interface Scope {
  project?: string;
}

/** authorize's verdict: allowed (and by what), or refused (and why). */
export type Authorization = { allowed: true; via: string } | { allowed: false; reason: string };

export function isPermission(p: unknown): p is Permission {
  return typeof p === 'string' && Object.hasOwn(PERMISSIONS, p);
}

export function isRole(r: unknown): r is Role {
  return typeof r === 'string' && Object.hasOwn(ROLES, r);
}

/**
 * Whether `actor` may use `permission` on `scope`. A role's permissions hold everywhere; a grant with a
 * project holds only on that project, so it never allows an operation on the whole repository or on
 * another project. An agent is refused the permissions in AGENT_FORBIDDEN whatever it was given.
 */
export function authorize(actor: ActorPermissions, permission: Permission, scope: Scope = {}): Authorization {
  if (actor.kind === 'agent' && AGENT_FORBIDDEN.includes(permission)) {
    return { allowed: false, reason: `an agent may never hold ${permission}` };
  }
  if ((ROLES[actor.role] as readonly Permission[]).includes(permission)) {
    return { allowed: true, via: `role ${actor.role}` };
  }
  for (const g of actor.grants) {
    if (g.permission !== permission) continue;
    if (g.project === undefined) return { allowed: true, via: `grant ${permission}` };
    if (scope.project !== undefined && g.project === scope.project) {
      return { allowed: true, via: `grant ${permission} on project ${g.project}` };
    }
  }
  const scoped = actor.grants.filter((g) => g.permission === permission && g.project !== undefined);
  if (scoped.length > 0) {
    const where = scope.project === undefined ? 'the whole repository' : `project ${scope.project}`;
    return {
      allowed: false,
      reason:
        `${actor.name} holds ${permission} only on project ${scoped.map((g) => g.project).join(', ')}, ` +
        `not on ${where}`,
    };
  }
  return { allowed: false, reason: `${actor.name} (role ${actor.role}) does not hold ${permission}` };
}

/** Why a grant is refused (undefined if it is acceptable): an agent may not receive AGENT_FORBIDDEN permissions,
 * and only PROJECT_SCOPABLE permissions take a project. */
export function grantProblem(kind: ActorKind, grant: Grant): string | undefined {
  if (kind === 'agent' && AGENT_FORBIDDEN.includes(grant.permission)) {
    return `an agent may never be granted ${grant.permission}`;
  }
  // registry entries are signed by human sysadmins only (registry.ts): a grant of actors.admin would allow nothing
  if (grant.permission === 'actors.admin') {
    return 'actors.admin comes only with the sysadmin role (add the actor as a sysadmin instead)';
  }
  if (grant.project !== undefined && !PROJECT_SCOPABLE.includes(grant.permission)) {
    return `${grant.permission} cannot be limited to a project (only ${PROJECT_SCOPABLE.join(', ')} can)`;
  }
  return undefined;
}

/** FOLE project ids as the registry accepts them: short, printable, no path separators. */
export const PROJECT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
