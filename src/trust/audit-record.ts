/**
 * Recording one operation in the audit log: what the gate decided, the command
 * line with its sensitive values committed to (not written), how it ended, and
 * the backups and counts its result names. The CLI calls it once per command
 * that opened a repository, after the command, whether it succeeded, failed,
 * stopped or was refused; a server calls the same function.
 */
import { hostname } from 'node:os';
import { FoleBackupError, isStop } from '../errors.js';
import type { SealedObjects } from '../repository/slices.js';
import { appendAudit, type AuditInput } from './audit-store.js';
import { commitment, disclose, type AuditResult, type Disclosure } from './audit.js';
import type { Credentials, TrustContext } from './gate.js';
import { isActive, type ChainHead, type RegistryState } from './registry.js';
import { readPin, writePin } from './trust-state.js';

/**
 * Flags whose values are sensitive (paths into a STORAGE_ROOT or of the machine): recorded as redactable
 * commitments, never as text in the entry. Secrets never reach argv at all (passwords and passphrases come
 * from files, the environment or a prompt), so there is nothing else to strip.
 */
export const SENSITIVE_FLAGS: Readonly<Record<string, string>> = {
  '--target': 'target',
  '--storage-root': 'storageRoot',
  '-s': 'storageRoot',
  '--staging-dir': 'stagingDir',
  '--scratch-dir': 'scratchDir',
  '--include': 'include',
  '--exclude': 'exclude',
};

/** The command line as the entry records it, and the disclosures of the values it withholds. Pure but for salts. */
export function redactableArgs(argv: readonly string[]): { args: AuditInput['args']; disclosures: Disclosure[] } {
  const args: AuditInput['args'] = [];
  const disclosures: Disclosure[] = [];
  const used = new Map<string, number>();
  const withhold = (base: string, value: string): { redactable: string } => {
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    const field = n === 1 ? base : `${base}${n}`;
    disclosures.push(disclose(field, value));
    return { redactable: field };
  };
  for (let i = 0; i < argv.length && args.length < 256; i++) {
    const a = (argv[i] as string).slice(0, 4096);
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const field = SENSITIVE_FLAGS[flag];
    if (field !== undefined && eq > 0) {
      args.push(flag, withhold(field, a.slice(eq + 1)));
    } else if (field !== undefined && i + 1 < argv.length) {
      args.push(a, withhold(field, (argv[++i] as string).slice(0, 4096)));
    } else {
      args.push(a);
    }
  }
  return { args, disclosures };
}

/** How the command ended: its error (undefined for success) and its result value, if it made one. */
export interface Outcome {
  error?: unknown;
  result?: unknown;
}

/** How an outcome is recorded: ok, or the error's code (a STOP as such). */
export function resultOf(error: unknown): AuditResult {
  if (error === undefined) return { status: 'ok' };
  if (isStop(error)) return { status: 'stop', code: error.code };
  return { status: 'error', code: error instanceof FoleBackupError ? error.code : 'INTERNAL' };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Backup ids and counts a command's result names (its top-level fields; arrays of backups one level down). */
export function summarize(result: unknown): { backupIds: string[]; counts: Record<string, number> } {
  const backupIds = new Set<string>();
  const counts: Record<string, number> = {};
  const visit = (v: unknown, depth: number): void => {
    if (typeof v === 'string' && UUID_RE.test(v)) backupIds.add(v);
    else if (Array.isArray(v) && depth < 2) for (const x of v.slice(0, 1000)) visit(x, depth + 1);
    else if (typeof v === 'object' && v !== null && depth < 3) {
      for (const [k, x] of Object.entries(v)) {
        if (/^(backupId|id|parent|backup|removed|kept|backups)$/.test(k)) visit(x, depth + 1);
        if (depth === 0 && Number.isSafeInteger(x) && Object.keys(counts).length < 24) counts[k] = x as number;
      }
    }
  };
  visit(result, 0);
  return { backupIds: [...backupIds].slice(0, 1000), counts };
}

/** What recordOperation needs to know about the run. */
export interface OperationRecord {
  op: string;
  argv: readonly string[];
  startedAt: number;
  outcome: Outcome;
  credentials: Credentials;
  /** What the gate established; undefined when the gate refused (then the actor is unauthenticated). */
  trust: TrustContext | undefined;
  /** The registry as read, for naming a refused caller's kind. */
  registry: RegistryState | undefined;
  stateDir: string;
}

/** Append the audit entry for one operation and, in registry mode, pin the new audit head on this client. */
export async function recordOperation(
  repo: SealedObjects & { readonly config: { readonly id: string } },
  r: OperationRecord,
): Promise<ChainHead> {
  const { args, disclosures } = redactableArgs(r.argv);
  const trust = r.trust;
  const claimed = r.credentials.actor ?? 'unknown';
  const known = r.registry?.actors.get(claimed);
  const actor =
    trust === undefined
      ? { name: claimed.slice(0, 256), kind: isActive(known) ? known.kind : ('human' as const), authenticated: false }
      : {
          name: trust.principal.name.slice(0, 256),
          kind: trust.principal.kind,
          authenticated: trust.principal.authenticated,
        };
  const { backupIds, counts } = summarize(r.outcome.result);
  const input: AuditInput = {
    time: new Date().toISOString(),
    actor,
    host: hostname().slice(0, 256),
    op: r.op,
    args,
    commitments: Object.fromEntries(disclosures.map((d) => [d.field, commitment(d)])),
    result: resultOf(r.outcome.error),
    backupIds,
    counts,
    durationMs: Math.max(0, Math.round(Date.now() - r.startedAt)),
    registryHead: r.registry?.head ?? null,
    approvals: [...(trust?.approvalsUsed ?? [])],
  };
  const signer = actor.authenticated ? r.credentials.signer : undefined;
  const head = await appendAudit(repo, input, disclosures, signer);
  if (r.registry !== undefined) {
    const pin = await readPin(r.stateDir, repo.config.id);
    if (
      pin !== undefined &&
      pin.trustId === r.registry.trustId &&
      (pin.audit === undefined || head.seq > pin.audit.seq)
    ) {
      await writePin(r.stateDir, r.registry, head);
    }
  }
  return head;
}
