import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { errnoCode, FoleBackupError, fsError, StopError } from '../../errors.js';
import type { AuditLog } from '../../trust/audit-store.js';
import type { AuditEntryBody, AuditProblem, VerifiedEntry } from '../../trust/audit.js';
import type { CheckpointBody } from '../../trust/witness.js';
import {
  consultWitness,
  WITNESS_FLAG_HELP,
  WITNESS_PASSWORD_HELP,
  withWitness,
  witnessPassword,
  type WitnessFlags,
} from '../witness.js';
import { parseWholeNumber } from '../numbers.js';
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

const LOG_BROKEN_HINT =
  'the audit log was edited, truncated, reordered or forged from this entry on; keep the repository as it is ' +
  'and have a sysadmin compare it with an offsite copy or an earlier `audit export`';
const WITNESS_DISAGREES_HINT =
  'the audit log is not the one the witness saw: entries were removed or rewritten (or the witness holds a ' +
  'checkpoint nobody registered signed); keep both repositories as they are and have a sysadmin compare the log ' +
  'with an offsite copy or an earlier `audit export`';

function problemStop(problem: AuditProblem, hint = LOG_BROKEN_HINT): StopError {
  return new StopError('TRUST_BROKEN', `audit log entry ${problem.seq}: ${problem.reason}`, { hint });
}

/** The `stop` member a --json result leads with when the log is broken (as every command prints a STOP). */
function stopMember(problem: StopError | undefined): { stop?: { code: string; message: string; hint: string | null } } {
  return problem === undefined
    ? {}
    : { stop: { code: problem.code, message: problem.message, hint: problem.hint ?? null } };
}

/**
 * The log read and verified, with the id of the repository it is of and the registry it was checked against: this
 * repository's own, or with `origin` the one carried from that repository by `copy` (checked against the registry
 * carried with it; this repository's gate still decides who may read it).
 */
async function readVerified(ctx: Context, op: 'audit-log' | 'audit-verify' | 'audit-checkpoint', origin?: string) {
  const { readCarriedTrail, resolveOrigin } = await import('../../trust/carried-trail.js');
  const { readAudit } = await import('../../trust/audit-store.js');
  const { listSnapshots } = await import('../../snapshot/store.js');
  const repo = await ctx.openRepo(op);
  try {
    if (origin !== undefined) {
      const id = await resolveOrigin(repo, origin);
      const trail = await readCarriedTrail(repo, id);
      return { repo, log: trail.log, id, registry: trail.registry };
    }
    const own = { id: repo.config.id, registry: ctx.trust().registry };
    const log = await readAudit(repo, own.registry);
    if (op !== 'audit-log' && log.problem === undefined) {
      const problem = checkRecordedHeads(log, await listSnapshots(repo));
      if (problem !== undefined) return { repo, log: { ...log, problem }, ...own };
    }
    return { repo, log, ...own };
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

/** What `--json` says of the witness a log was checked against. */
interface WitnessReport {
  location: string;
  checkpoints: number;
  newest: { seq: number; time: string } | null;
}

const ORIGIN_HELP =
  'the log `copy` carried here from that repository (its id, or 8+ characters of it), not this repository’s own';

const checkpoints = (n: number): string => `${n} checkpoint${n === 1 ? '' : 's'}`;

const WITNESS_HELP = `
A witness is a second fole-backup repository (other storage, its own password)
that keeps signed checkpoints of this audit log: whoever cuts or rewrites this
log, even holding this repository's secret, cannot make it agree with them again
without the witness's secret. See docs/TRUST.md, "Witness checkpoints".`;

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
    .option('--origin <id>', ORIGIN_HELP)
    .action(function (this: Command) {
      const opts = this.opts<{ since?: string; by?: string; op?: string; origin?: string }>();
      return run(async (ctx) => {
        const since = opts.since === undefined ? undefined : Date.parse(opts.since);
        if (since !== undefined && Number.isNaN(since)) {
          throw new UsageError(
            `--since ${JSON.stringify(opts.since)} is not a time`,
            'e.g. 2026-12-01 or 2026-12-01T08:00Z',
          );
        }
        const { log } = await readVerified(ctx, 'audit-log', opts.origin);
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
    .option('--witness <location>', 'also check the log against the checkpoints in this witness repository (see below)')
    .option('--witness-password-file <file>', WITNESS_PASSWORD_HELP)
    .option('--origin <id>', ORIGIN_HELP)
    .addHelpText(
      'after',
      `${WITNESS_HELP}

With --origin, the audit log and actor registry that \`copy\` carried here from
that repository are verified as that repository's own: its registry from its
first entry, its chain, its actors' signatures. A lost repository's history can
be checked this way from its offsite copy alone; its actors count for nothing
here.

Example (nightly, after \`audit checkpoint\`):
  FOLE_BACKUP_WITNESS_PASSWORD_FILE=/root/witness.key fole-backup audit verify --witness /mnt/offsite/witness`,
    )
    .action(function (this: Command) {
      const opts = this.opts<{ file?: string; origin?: string } & WitnessFlags>();
      return run(async (ctx) => {
        if (opts.file !== undefined && opts.origin !== undefined) {
          throw new UsageError('--file and --origin name different logs', 'give one of them');
        }
        const password = opts.witness === undefined ? undefined : await witnessPassword(opts);
        const { verifyAuditFile } = await import('../../trust/audit-export.js');
        const v =
          opts.file !== undefined
            ? await verifyAuditFile(opts.file).then((f) => ({ ...f, id: f.log }))
            : await readVerified(ctx, 'audit-verify', opts.origin).then(({ log, id, registry }) => ({
                ...log,
                id,
                registry,
              }));
        let firstBad = v.problem;
        let witness: WitnessReport | undefined;
        let witnessProblem = false;
        if (opts.witness !== undefined && password !== undefined) {
          const location = opts.witness;
          const { check, count } = await withWitness(location, password, v.id, (w) =>
            consultWitness(w, v.id, v.registry, v.entries),
          );
          if (count === 0 && firstBad === undefined) {
            throw new FoleBackupError('NOT_FOUND', `the witness ${location} holds no checkpoint of this audit log`, {
              hint: `make one with \`fole-backup audit checkpoint --witness ${location}\``,
            });
          }
          const newest = check.checkpoints.at(-1);
          witness = { location, checkpoints: count, newest: newest ? { seq: newest.seq, time: newest.time } : null };
          if (firstBad === undefined && check.problem !== undefined) {
            firstBad = check.problem;
            witnessProblem = true;
          }
        }
        const count = v.entries.length;
        const signed = v.entries.filter((e) => e.signedBy !== undefined).length;
        const report = {
          ok: firstBad === undefined,
          entries: count,
          signed,
          ...(firstBad === undefined ? {} : { firstBad }),
          ...(witness === undefined ? {} : { witness }),
        };
        const problem =
          firstBad === undefined
            ? undefined
            : problemStop(firstBad, witnessProblem ? WITNESS_DISAGREES_HINT : undefined);
        const consistent =
          witness === undefined
            ? ''
            : ` and consistent with ${checkpoints(witness.checkpoints)} in ${witness.location}` +
              (witness.newest === null ? '' : ` (newest: entry ${witness.newest.seq}, ${witness.newest.time})`);
        const checked = witnessProblem
          ? `checked against ${checkpoints(witness?.checkpoints ?? 0)} in ${witness?.location}`
          : `${count} entries before it verify`;
        const whose = opts.origin === undefined ? 'audit log' : `audit log of ${v.id} (carried here)`;
        ctx.out.result(
          { ...stopMember(problem), ...report, ...(opts.origin === undefined ? {} : { origin: v.id }) },
          () =>
            problem === undefined
              ? `${whose} OK: ${count} entries, ${signed} signed by registered actors, chain and disclosures intact` +
                consistent
              : `${whose} BROKEN at entry ${firstBad?.seq}: ${firstBad?.reason} (${checked})`,
        );
        if (problem !== undefined) throw alreadyInResult(problem);
      });
    });

  audit
    .command('checkpoint')
    .description('store a signed checkpoint of the audit log (its newest entry) in a witness repository')
    .requiredOption('--witness <location>', WITNESS_FLAG_HELP)
    .option('--witness-password-file <file>', WITNESS_PASSWORD_HELP)
    .addHelpText(
      'after',
      `${WITNESS_HELP}
The log is verified first: a broken log, or one that disagrees with the
witness, is never checkpointed.

Example (from cron, after the nightly backup; the witness made once with \`init\`):
  FOLE_BACKUP_WITNESS_PASSWORD_FILE=/root/witness.key fole-backup audit checkpoint --witness /mnt/offsite/witness`,
    )
    .action(function (this: Command) {
      const opts = this.opts<WitnessFlags & { witness: string }>();
      return run(async (ctx) => {
        const password = await witnessPassword(opts);
        const { storeCheckpoint } = await import('../../trust/witness-store.js');
        const { makeCheckpoint, short } = await import('../../trust/witness.js');
        const { repo, log } = await readVerified(ctx, 'audit-checkpoint');
        if (log.problem !== undefined) throw problemStop(log.problem);
        const head = log.entries.at(-1);
        if (head === undefined) throw new FoleBackupError('NOT_FOUND', 'the audit log is empty: nothing to checkpoint');
        const id = repo.config.id;
        const trust = ctx.trust();
        const { signer } = await ctx.credentials();
        const by =
          trust.mode === 'registry' && signer !== undefined ? { name: trust.principal.name, signer } : undefined;
        const { body, stored } = await withWitness(opts.witness, password, id, async (w) => {
          const agreed = async (): Promise<CheckpointBody | undefined> => {
            const { check } = await consultWitness(w, id, trust.registry, log.entries);
            if (check.problem !== undefined) throw problemStop(check.problem, WITNESS_DISAGREES_HINT);
            return check.checkpoints.find((c) => c.seq === head.body.seq);
          };
          const already = await agreed();
          if (already !== undefined) return { body: already, stored: false };
          const made = makeCheckpoint(id, trust.registry, { seq: head.body.seq, digest: head.digest }, by);
          if (await storeCheckpoint(w, id, made.body.seq, made.envelope)) return { body: made.body, stored: true };
          // another checkpoint of this entry was stored meanwhile: it must say the same
          return { body: (await agreed()) ?? made.body, stored: false };
        });
        const where = stored ? 'stored in' : 'already in';
        ctx.out.result(
          { ...body, witness: opts.witness, stored },
          () => `checkpoint of audit entry ${body.seq} (digest ${short(body.digest)}) ${where} ${opts.witness}`,
        );
      });
    });

  audit
    .command('export')
    .description('write the audit log and the actors’ public keys as JSON lines, verifiable offline')
    .requiredOption('--out <file>', 'the file to write (never overwritten)')
    .action(function (this: Command) {
      const opts = this.opts<{ out: string }>();
      return run(async (ctx) => {
        const { readAudit } = await import('../../trust/audit-store.js');
        const { exportAudit } = await import('../../trust/audit-export.js');
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
    .option('--origin <id>', `${ORIGIN_HELP}: a value redacted there after a copy stays here until redacted here`)
    .action(function (this: Command, seqText: string) {
      const opts = this.opts<{ field: string; origin?: string }>();
      return run(async (ctx) => {
        const seq = parseWholeNumber('entry', seqText, { min: 0, max: 9_999_999_999 });
        const { carriedPlaces, resolveOrigin } = await import('../../trust/carried-trail.js');
        const { redactDisclosure } = await import('../../trust/audit-store.js');
        const repo = await ctx.openRepo('audit-redact');
        let origin: string | undefined;
        try {
          origin = opts.origin === undefined ? undefined : await resolveOrigin(repo, opts.origin);
          const place = origin === undefined ? undefined : carriedPlaces(origin).audit;
          await redactDisclosure(repo, seq, opts.field, place);
        } finally {
          await repo.close();
        }
        const of = origin === undefined ? '' : ` of ${origin}`;
        ctx.out.report(
          { redacted: { seq, field: opts.field, ...(origin === undefined ? {} : { origin }) } },
          () => `redacted ${opts.field} of audit entry ${seq}${of}`,
        );
      });
    });
}
