/**
 * What this client has verified, kept outside the repository (TUF's rule for
 * clients: never accept metadata older than what you have already seen). Per
 * repository id, one small file holds the registry's trust id and the newest
 * registry head this client verified. A repository whose registry is missing,
 * shorter, forked or under another trust id is TRUST_ROLLBACK: deleting
 * registry/ never falls back to single-operator mode, and putting back an older
 * registry never brings back a removed actor.
 *
 * Where: $FOLE_BACKUP_STATE_DIR, else $XDG_STATE_HOME/fole-backup, else
 * ~/.local/state/fole-backup. The file is written atomically, mode 0600.
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errnoCode, fsError, StopError } from '../errors.js';
import { writeFileAtomic } from '../fs/durable.js';
import type { ChainHead, RegistryState } from './registry.js';

/** The newest trust state this client verified for one repository. */
export interface Pin {
  v: 1;
  repositoryId: string;
  trustId: string;
  registry: ChainHead;
  /** The newest audit entry this client wrote or verified. */
  audit?: ChainHead;
}

/** The folder pins live in (see the module comment for how it is chosen). */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FOLE_BACKUP_STATE_DIR !== undefined && env.FOLE_BACKUP_STATE_DIR !== '') return env.FOLE_BACKUP_STATE_DIR;
  if (env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '') return join(env.XDG_STATE_HOME, 'fole-backup');
  return join(homedir(), '.local', 'state', 'fole-backup');
}

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const pinPath = (dir: string, repositoryId: string): string => {
  // the id comes from the repository's plaintext config: never let it name a path elsewhere
  if (!ID_RE.test(repositoryId)) throw new StopError('TRUST_BROKEN', 'the repository id is not one this tool makes');
  return join(dir, `${repositoryId}.json`);
};

/** The pin for a repository id, or undefined if this client has never verified a registry for it. */
export async function readPin(dir: string, repositoryId: string): Promise<Pin | undefined> {
  const path = pinPath(dir, repositoryId);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    // a state directory this user cannot enter is another user's (HOME inherited across a user switch): this
    // user has verified nothing there
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || (code === 'EACCES' && !(await canEnter(dir)))) return undefined;
    throw fsError('read', path, err);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  if (!isPin(v) || v.repositoryId !== repositoryId) {
    throw new StopError('TRUST_BROKEN', `the trust state ${path} is damaged`, {
      path,
      hint:
        'it records the newest actor registry this machine verified; restore it from a backup of this machine, ' +
        'or remove it to trust the repository as it is now (only after checking the registry with a sysadmin)',
    });
  }
  return v;
}

async function canEnter(dir: string): Promise<boolean> {
  return access(dir, constants.R_OK | constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Record that this client verified `state` (and, if given, the audit log up to `audit`; else the pinned one). */
export async function writePin(dir: string, state: RegistryState, audit?: ChainHead): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw fsError('create', dir, err);
  }
  const old = await readPin(dir, state.repositoryId).catch(() => undefined);
  const keep = audit ?? (old?.trustId === state.trustId ? old.audit : undefined);
  const pin: Pin = {
    v: 1,
    repositoryId: state.repositoryId,
    trustId: state.trustId,
    registry: state.head,
    ...(keep === undefined ? {} : { audit: keep }),
  };
  await writeFileAtomic(pinPath(dir, state.repositoryId), Buffer.from(`${JSON.stringify(pin, null, 2)}\n`));
}

/**
 * Throws TRUST_ROLLBACK unless the registry read now (undefined: none) is the pinned one or extends it. Pure.
 */
export function checkAgainstPin(pin: Pin | undefined, state: RegistryState | undefined, location: string): void {
  if (pin === undefined) return;
  const rollback = (why: string): StopError =>
    new StopError('TRUST_ROLLBACK', `the actor registry of ${location} ${why}`, {
      hint:
        'this machine has verified a newer registry for this repository: someone removed or replaced registry ' +
        'objects, or this is an old copy. Do not use it until a sysadmin has found out why (compare with an ' +
        'offsite copy and `fole-backup audit log`)',
    });
  if (state === undefined) throw rollback(`is gone, but this machine verified one (${pin.registry.seq + 1} entries)`);
  if (state.trustId !== pin.trustId) throw rollback('is a different registry (another trust id) than the one verified');
  if (state.head.seq < pin.registry.seq) {
    throw rollback(`has ${state.head.seq + 1} entries, fewer than the ${pin.registry.seq + 1} verified here`);
  }
  if (state.digests[pin.registry.seq] !== pin.registry.digest) {
    throw rollback(`does not extend the one verified here (entry ${pin.registry.seq} differs: a fork)`);
  }
}

/** Throws TRUST_ROLLBACK unless the audit log still holds the pinned entry (`digestAt`: its digest now). */
export function checkAuditAgainstPin(pin: Pin | undefined, digestAt: string | undefined, location: string): void {
  if (pin?.audit === undefined || digestAt === pin.audit.digest) return;
  throw new StopError(
    'TRUST_ROLLBACK',
    `the audit log of ${location} ` +
      (digestAt === undefined ? `has lost entry ${pin.audit.seq}` : `entry ${pin.audit.seq} differs from the one`) +
      ' this machine wrote or verified',
    {
      hint:
        'someone truncated, replaced or edited the audit log, or this is an old copy of the repository; a ' +
        'sysadmin must find out why (`fole-backup audit verify` names the first bad entry)',
    },
  );
}

function isHead(head: unknown): head is ChainHead {
  if (typeof head !== 'object' || head === null) return false;
  const h = head as Record<string, unknown>;
  return (
    Number.isSafeInteger(h.seq) &&
    (h.seq as number) >= 0 &&
    typeof h.digest === 'string' &&
    /^[0-9a-f]{64}$/.test(h.digest)
  );
}

function isPin(v: unknown): v is Pin {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return (
    p.v === 1 &&
    typeof p.repositoryId === 'string' &&
    typeof p.trustId === 'string' &&
    isHead(p.registry) &&
    (p.audit === undefined || isHead(p.audit))
  );
}
