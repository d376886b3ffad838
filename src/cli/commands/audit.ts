import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { errnoCode, fsError, StopError } from '../../errors.js';
import { exportAudit, verifyAuditFile } from '../../trust/audit-export.js';
import { readAudit, redactDisclosure, type AuditLog } from '../../trust/audit-store.js';
import type { AuditEntryBody, AuditProblem, VerifiedEntry } from '../../trust/audit.js';
import { parseWholeNumber } from '../numbers.js';
import { listSnapshots } from '../../snapshot/store.js';
import type { Snapshot } from '../../snapshot/snapshot.js';
import type { Context, Runner } from '../context.js';
import { alreadyInResult, UsageError } from '../output.js';

/** One entry as `audit log` prints it: the entry, and its redactable values where still disclosed. */
interface Listed extends AuditEntryBody {
  digest: string;
  signedBy: string | null;
  disclosed: Record<string, string>;
}

function listed(e: VerifiedEntry, log: AuditLog | undefined): Listed {
  return {
    ...e.body,
    digest: e.digest,
    signedBy: e.signedBy ?? null,
    disclosed: Object.fromEntries(log?.disclosed.get(e.body.seq) ?? []),
  };
}

function line(e: Listed): string {
  const args = e.args
    .map((a) => (typeof a === 'string' ? a : (e.disclosed[a.redactable] ?? `<redacted ${a.redactable}>`)))
    .join(' ');
  const result = e.result.status === 'ok' ? 'ok' : `${e.result.status.toUpperCase()} ${e.result.code ?? ''}`.trim();
  const kind = e.actor.kind === 'agent' ? ' (agent)' : '';
  const who = `${e.actor.name}${kind}${e.actor.authenticated ? '' : ' [unauthenticated]'}`;
  return `${String(e.seq).padStart(6)} ${e.time} ${who} ${e.op}: ${result}${args === '' ? '' : `  — ${args}`}`;
}

function problemStop(problem: AuditProblem): StopError {
  return new StopError('TRUST_BROKEN', `audit log entry ${problem.seq}: ${problem.reason}`, {
    hint:
      'the audit log was edited, truncated, reordered or forged from this entry on; keep the repository as it is ' +
      'and have a sysadmin compare it with an offsite copy or an earlier `audit export`',
  });
}

/** The `stop` member a --json result leads with when the log is broken (as every command prints a STOP). */
function stopMember(problem: StopError | undefined): { stop?: { code: string; message: string; hint: string | null } } {
  return problem === undefined
    ? {}
    : { stop: { code: problem.code, message: problem.message, hint: problem.hint ?? null } };
}

async function readVerified(ctx: Context, op: 'audit-log' | 'audit-verify' | 'audit-export') {
  const repo = await ctx.openRepo(op);
  try {
    const log = await readAudit(repo, ctx.trust().registry);
    if (op === 'audit-verify' && log.problem === undefined) {
      const problem = checkRecordedHeads(log, await listSnapshots(repo));
      if (problem !== undefined) return { repo, log: { ...log, problem } };
    }
    return { repo, log };
  } finally {
    await repo.close();
  }
}

/**
 * Every backup recorded the newest audit entry as it began: the log must still hold that entry with that
 * digest. A log cut back, or rewritten from some entry on, fails here even on a machine that pinned nothing.
 */
function checkRecordedHeads(log: AuditLog, snapshots: readonly Snapshot[]): AuditProblem | undefined {
  for (const s of snapshots) {
    const h = s.auditHead;
    if (h === undefined) continue;
    const e = log.entries[h.seq];
    if (e === undefined) {
      return { seq: h.seq, reason: `backup ${s.backupId} recorded this entry, which the log no longer holds` };
    }
    if (e.digest !== h.digest) return { seq: h.seq, reason: `backup ${s.backupId} recorded another entry here` };
  }
  return undefined;
}

export function registerAudit(program: Command, run: Runner): void {
  const audit = program
    .command('audit')
    .description('the tamper-evident log of every command run against the repository (docs/TRUST.md)');

  audit
    .command('log')
    .description('show the audit log, oldest first (sensitive values as recorded, or <redacted …>)')
    .option('--since <time>', 'only entries at or after this time (ISO 8601, e.g. 2026-12-01 or 2026-12-01T08:00Z)')
    .option('--by <name>', 'only entries of this actor (the global --actor says who runs this command)')
    .option('--op <operation>', 'only entries of this operation, e.g. restore, backup, actor-add')
    .action(function (this: Command) {
      const opts = this.opts<{ since?: string; by?: string; op?: string }>();
      return run(async (ctx) => {
        const since = opts.since === undefined ? undefined : Date.parse(opts.since);
        if (since !== undefined && Number.isNaN(since)) {
          throw new UsageError(
            `--since ${JSON.stringify(opts.since)} is not a time`,
            'e.g. 2026-12-01 or 2026-12-01T08:00Z',
          );
        }
        const { log } = await readVerified(ctx, 'audit-log');
        const shown = log.entries
          .filter((e) => since === undefined || Date.parse(e.body.time) >= since)
          .filter((e) => opts.by === undefined || e.body.actor.name === opts.by)
          .filter((e) => opts.op === undefined || e.body.op === opts.op)
          .map((e) => listed(e, log));
        const problem = log.problem === undefined ? undefined : problemStop(log.problem);
        ctx.out.result({ ...stopMember(problem), entries: shown }, () =>
          shown.length === 0 ? 'no audit entries match' : shown.map(line).join('\n'),
        );
        if (problem !== undefined) throw alreadyInResult(problem);
      });
    });

  audit
    .command('verify')
    .description('check the chain, every signature and every disclosure; exit 0 only if all hold')
    .option('--file <file>', 'verify an `audit export` file offline instead (no repository or password needed)')
    .action(function (this: Command) {
      const opts = this.opts<{ file?: string }>();
      return run(async (ctx) => {
        const v =
          opts.file !== undefined
            ? await verifyAuditFile(opts.file)
            : await readVerified(ctx, 'audit-verify').then(({ log }) => ({ ...log, log: undefined }));
        const count = v.entries.length;
        const signed = v.entries.filter((e) => e.signedBy !== undefined).length;
        const report = {
          ok: v.problem === undefined,
          entries: count,
          signed,
          ...(v.problem === undefined ? {} : { firstBad: v.problem }),
        };
        const problem = v.problem === undefined ? undefined : problemStop(v.problem);
        ctx.out.result({ ...stopMember(problem), ...report }, () =>
          problem === undefined
            ? `audit log OK: ${count} entries, ${signed} signed by registered actors, chain and disclosures intact`
            : `audit log BROKEN at entry ${v.problem?.seq}: ${v.problem?.reason} (${count} entries before it verify)`,
        );
        if (problem !== undefined) throw alreadyInResult(problem);
      });
    });

  audit
    .command('export')
    .description('write the audit log and the actors’ public keys as JSON lines, verifiable offline')
    .requiredOption('--out <file>', 'the file to write (never overwritten)')
    .action(function (this: Command) {
      const opts = this.opts<{ out: string }>();
      return run(async (ctx) => {
        const repo = await ctx.openRepo('audit-export');
        let text: string;
        let log: AuditLog;
        try {
          log = await readAudit(repo, ctx.trust().registry);
          if (log.problem !== undefined) throw problemStop(log.problem);
          text = await exportAudit(repo, log);
        } finally {
          await repo.close();
        }
        try {
          await writeFile(opts.out, text, { flag: 'wx', mode: 0o600 });
        } catch (err) {
          if (errnoCode(err) === 'EEXIST') throw new UsageError(`${opts.out} already exists; it is never overwritten`);
          throw fsError('write', opts.out, err);
        }
        ctx.out.result(
          { out: opts.out, entries: log.entries.length },
          () =>
            `wrote ${log.entries.length} audit entries to ${opts.out}; check it anywhere with ` +
            `\`fole-backup audit verify --file ${opts.out}\``,
        );
      });
    });

  audit
    .command('redact')
    .argument('<seq>', 'the entry (its number in `audit log`)')
    .description('delete the disclosed value of one sensitive field of an entry; the entry and chain stay intact')
    .requiredOption('--field <name>', 'the field, as `audit log --json` names it under "disclosed" (e.g. target)')
    .action(function (this: Command, seqText: string) {
      const opts = this.opts<{ field: string }>();
      return run(async (ctx) => {
        const seq = parseWholeNumber('entry', seqText, { min: 0, max: 9_999_999_999 });
        const repo = await ctx.openRepo('audit-redact');
        try {
          await redactDisclosure(repo, seq, opts.field);
        } finally {
          await repo.close();
        }
        ctx.out.result({ redacted: { seq, field: opts.field } }, () => `redacted ${opts.field} of audit entry ${seq}`);
      });
    });
}
