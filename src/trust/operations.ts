/**
 * Every operation that opens a repository, and the permission it needs: the
 * one table the gate reads, so no command decides its own rule.
 */
import type { Permission } from './permissions.js';

interface OperationRule {
  /** What it is, for messages ("a backup needs permission …"). */
  what: string;
  /** The permission it needs; undefined = whoever holds the repository secret (making the registry itself). */
  permission: Permission | undefined;
  /** Destructive: an agent may not run it on its own (spec §10), whatever its permissions. */
  humanDecision?: true;
  /** A human decision an agent may still run once a human approved its exact plan (approval-flow.ts). */
  approvable?: true;
}

/** Every operation that opens a repository: what it is called in messages, the permission it needs, and whether
 * it is a human decision an agent may not take on its own. */
export const OPERATIONS = {
  backup: { what: 'a backup', permission: 'backup.create' },
  list: { what: 'listing backups', permission: 'backup.read' },
  'copy-from': { what: 'copying backups out of this repository', permission: 'backup.export' },
  'copy-to': { what: 'copying backups into this repository', permission: 'backup.create' },
  manifest: { what: 'reading a manifest', permission: 'backup.read' },
  browse: { what: 'browsing backups', permission: 'backup.read' },
  dump: { what: "writing out a backup's files", permission: 'backup.export' },
  verify: { what: 'verifying a backup', permission: 'backup.verify' },
  check: { what: 'checking the repository', permission: 'backup.verify' },
  repair: { what: 'a repair', permission: 'backup.forget', humanDecision: true },
  'repair-preview': { what: 'a repair dry run', permission: 'backup.verify' },
  restore: { what: 'a restore', permission: 'backup.restore', humanDecision: true, approvable: true },
  'restore-preview': { what: 'a restore dry run', permission: 'backup.read' },
  'migration-rollback': {
    what: 'a migration rollback',
    permission: 'backup.restore',
    humanDecision: true,
    approvable: true,
  },
  forget: { what: 'forgetting backups', permission: 'backup.forget', humanDecision: true, approvable: true },
  'forget-preview': { what: 'a forget dry run', permission: 'backup.read' },
  prune: { what: 'pruning', permission: 'backup.forget', humanDecision: true, approvable: true },
  'prune-preview': { what: 'a prune dry run', permission: 'backup.read' },
  unlock: { what: 'removing locks', permission: 'backup.forget', humanDecision: true },
  'key-list': { what: 'listing keys', permission: 'backup.keys' },
  'key-add': { what: 'adding a key', permission: 'backup.keys' },
  'key-remove': { what: 'removing a key', permission: 'backup.keys' },
  'key-passwd': { what: 'changing a key', permission: 'backup.keys' },
  init: { what: 'making a repository', permission: undefined },
  'actor-bootstrap': { what: 'making the actor registry', permission: undefined },
  'actor-list': { what: 'listing actors', permission: 'audit.read' },
  'actor-add': { what: 'adding an actor', permission: 'actors.admin' },
  'actor-remove': { what: 'removing an actor', permission: 'actors.admin' },
  'actor-grant': { what: 'granting a permission', permission: 'actors.admin' },
  'actor-revoke': { what: 'revoking a permission', permission: 'actors.admin' },
  'actor-leave': { what: 'leaving registry mode', permission: 'actors.admin', humanDecision: true },
  'audit-log': { what: 'reading the audit log', permission: 'audit.read' },
  'audit-verify': { what: 'verifying the audit log', permission: 'audit.read' },
  'audit-export': { what: 'exporting the audit log', permission: 'audit.read' },
  'audit-checkpoint': { what: 'checkpointing the audit log in a witness', permission: 'audit.read' },
  'audit-redact': { what: 'redacting the audit log', permission: 'audit.redact', humanDecision: true },
  approve: { what: 'approving a request', permission: 'backup.approve' },
  'approvals-list': { what: 'listing approval requests', permission: 'backup.read' },
  'approvals-deny': { what: 'denying a request', permission: 'backup.approve' },
} as const satisfies Record<string, OperationRule>;

/** The name of an operation in OPERATIONS, e.g. `restore`. */
export type OperationName = keyof typeof OPERATIONS;
