/**
 * The audit log as a file that leaves the repository: JSON lines, a header with
 * the registry's signed entries (so the actors' public keys travel with it),
 * then one line per audit entry with its envelope and the disclosures not
 * redacted. `audit verify --file` checks it offline, with no repository and no
 * password: the registry chain, the audit chain, every signature and every
 * disclosure against its commitment.
 */
import { readFile } from 'node:fs/promises';
import { errnoCode, FoleBackupError, fsError } from '../errors.js';
import type { SealedObjects } from '../repository/slices.js';
import { disclosuresOf, type AuditLog } from './audit-store.js';
import {
  disclosureMatches,
  verifyAuditChain,
  type AuditProblem,
  type Disclosure,
  type VerifiedEntry,
} from './audit.js';
import type { Envelope } from './envelope.js';
import { RegistryError, replayRegistry, type RegistryState } from './registry.js';
import { readRegistryEnvelopes } from './registry-store.js';

const EXPORT_TYPE = 'fole-backup-audit-export';
/** An export file larger than this is refused unread (a million entries of a few hundred bytes each fit). */
const MAX_EXPORT_BYTES = 1024 * 1024 * 1024;

interface ExportHeader {
  type: typeof EXPORT_TYPE;
  v: 1;
  log: string;
  exportedAt: string;
  registry: unknown[];
}

interface ExportLine {
  envelope: Envelope;
  disclosures: Disclosure[];
}

/** The export's text: the header line and one line per entry. */
export async function exportAudit(
  repo: SealedObjects & { readonly config: { readonly id: string } },
  log: AuditLog,
): Promise<string> {
  const header: ExportHeader = {
    type: EXPORT_TYPE,
    v: 1,
    log: repo.config.id,
    exportedAt: new Date().toISOString(),
    registry: await readRegistryEnvelopes(repo),
  };
  const lines = [JSON.stringify(header)];
  for (const [seq, env] of log.envelopes.entries()) {
    const line: ExportLine = { envelope: env, disclosures: disclosuresOf(log, seq) };
    lines.push(JSON.stringify(line));
  }
  return `${lines.join('\n')}\n`;
}

/** What offline verification found. */
export interface FileVerification {
  log: string;
  registry: RegistryState | undefined;
  entries: VerifiedEntry[];
  problem?: AuditProblem;
}

/** Verify an export file offline. Throws USAGE for a file that is not an export; chain problems are returned. */
export async function verifyAuditFile(path: string): Promise<FileVerification> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new FoleBackupError('USAGE', `audit export ${path}: no such file`);
    throw fsError('read', path, err);
  }
  if (text.length > MAX_EXPORT_BYTES) throw new FoleBackupError('USAGE', `audit export ${path}: too large`);
  const lines = text.split('\n').filter((l) => l !== '');
  const parse = (l: string, n: number): unknown => {
    try {
      return JSON.parse(l);
    } catch {
      throw new FoleBackupError('USAGE', `audit export ${path}: line ${n + 1} is not JSON`);
    }
  };
  const header = parse(lines[0] ?? '', 0) as Partial<ExportHeader>;
  if (
    header.type !== EXPORT_TYPE ||
    header.v !== 1 ||
    typeof header.log !== 'string' ||
    !Array.isArray(header.registry)
  ) {
    throw new FoleBackupError('USAGE', `audit export ${path}: not an audit export of fole-backup`, {
      hint: 'make one with `fole-backup audit export --out FILE`',
    });
  }
  let registry: RegistryState | undefined;
  if (header.registry.length > 0) {
    try {
      registry = replayRegistry(header.registry);
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      return {
        log: header.log,
        registry: undefined,
        entries: [],
        problem: { seq: 0, reason: `its registry: ${err.message}` },
      };
    }
  }
  const body = lines.slice(1).map((l, i) => parse(l, i + 1) as Partial<ExportLine>);
  const verified = verifyAuditChain(
    body.map((b) => b.envelope),
    header.log,
    registry,
  );
  let problem = verified.problem;
  for (const e of verified.entries) {
    for (const d of body[e.body.seq]?.disclosures ?? []) {
      if (!disclosureMatches(e.body, d)) {
        problem ??= { seq: e.body.seq, reason: "a disclosure does not match the entry's commitment" };
      }
    }
  }
  return { log: header.log, registry, entries: verified.entries, ...(problem === undefined ? {} : { problem }) };
}
