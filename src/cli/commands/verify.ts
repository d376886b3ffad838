import { Option, type Command } from 'commander';
import { StopError, type FoleBackupError } from '../../errors.js';
import type { Info, Problem, ReportBase } from '../../verify/findings.js';
import { parsePercent } from '../../verify/subset.js';
import type { VerifyOptions, VerifyReport } from '../../verify/verify-backup.js';
import type { Context, Runner } from '../context.js';
import { parseWholeNumber } from '../numbers.js';
import { alreadyInResult, formatBytes, formatDuration, UsageError } from '../output.js';

interface VerifyFlags {
  readData?: boolean;
  readDataSubset?: string;
  seed?: string;
  scratchDir?: string;
  maxProblems?: string;
  lock?: boolean;
}

/** Parse --max-problems. */
export function parseMaxProblems(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  return parseWholeNumber('--max-problems', text, { min: 1, max: 1_000_000 });
}

const describeProblem = (p: Problem): string =>
  `  ${p.code} ${p.kind}${p.object ? ` ${p.object.length > 20 ? `${p.object.slice(0, 17)}…` : p.object}` : ''}` +
  `: ${p.message}`;

/** The problem and info lines of a report, for humans. */
export function describeFindings(r: ReportBase): string[] {
  const lines: string[] = [];
  if (r.problemCount > 0) {
    const more =
      r.problemCount > r.problems.length
        ? ` (first ${r.problems.length} of ${r.problemCount}; --max-problems shows more)`
        : '';
    lines.push(`problems${more}:`, ...r.problems.map(describeProblem));
  }
  if (r.infoCount > 0) {
    const more = r.infoCount > r.info.length ? ` (first ${r.info.length} of ${r.infoCount})` : '';
    lines.push(`info${more}:`, ...r.info.map((i: Info) => `  ${i.kind}: ${i.message}`));
  }
  return lines;
}

/** --read-data, or --read-data-subset N% with its --seed (verify's and check's flags alike). */
export function readDataFlags(flags: {
  readData?: boolean;
  readDataSubset?: string;
  seed?: string;
}): boolean | { percent: number; seed?: string } {
  if (flags.readDataSubset === undefined) {
    if (flags.seed !== undefined) throw new UsageError('--seed only applies to --read-data-subset');
    return flags.readData === true;
  }
  if (flags.readData === true) throw new UsageError('give --read-data or --read-data-subset, not both');
  const percent = parsePercent(flags.readDataSubset);
  if (percent === undefined) {
    throw new UsageError(`--read-data-subset must be a percentage in (0, 100], like 10%, not ${flags.readDataSubset}`);
  }
  return { percent, ...(flags.seed === undefined ? {} : { seed: flags.seed }) };
}

/**
 * Print a verify/check report, then throw the error it amounts to (if any), marked as already in the result: the
 * runner prints it on stderr, exits with its code and audits the command as the STOP or error it is. With --json
 * stdout gets one object: the report's fields, preceded, when it is not ok, by the same `stop` (exit 3) or `error`
 * (exit 1) member every other command prints — so `.ok`, `.problems` and `.stop.code` are always where a script
 * looks for them.
 */
export function finishReport(
  ctx: Context,
  report: ReportBase,
  verdict: FoleBackupError | undefined,
  human: () => string,
): void {
  const head =
    verdict === undefined
      ? {}
      : {
          [verdict instanceof StopError ? 'stop' : 'error']: {
            code: verdict.code,
            message: verdict.message,
            hint: verdict.hint ?? null,
          },
        };
  ctx.out[verdict === undefined ? 'report' : 'result']({ ...head, ...report }, human);
  if (verdict !== undefined) throw alreadyInResult(verdict);
}

/** The line saying that the damage found was recorded, and what that does (check and verify). */
export function recordedLine(name: string): string {
  return (
    `  the damage found is recorded (damage/${name.slice(0, 12)}): no command reads those blobs any more and ` +
    'the next backup stores them again; `fole-backup repair` moves the damaged packs aside'
  );
}

function describeVerify(r: VerifyReport): string {
  const c = r.counts;
  const lines = [
    `backup ${r.backupId}: ${r.ok ? 'OK' : `${r.problemCount} PROBLEM${r.problemCount === 1 ? '' : 'S'}`}` +
      ` — checked ${r.levels.join(', ') || 'nothing'} in ${formatDuration(r.durationMs)}`,
    `  ${c.files} files (${c.databases} of them SQLite databases), ${c.dirs} directories, ${formatBytes(c.bytes)}; ` +
      `${c.blobs}` +
      ` blob references in ${c.packs} packs`,
  ];
  if (r.readData !== 'none') {
    lines.push(
      `  read ${formatBytes(c.bytesRead)} from the repository; verified ${formatBytes(c.bytesVerified)}` +
        ` of content in ${c.filesRead} files, ${c.databasesChecked} databases integrity-checked`,
    );
  } else {
    lines.push('  no data read (--read-data reads and hashes every byte; --read-data-subset 10% a sample)');
  }
  if (r.subset)
    lines.push(
      `  subset: ${r.subset.percent}% of files by seed ${JSON.stringify(r.subset.seed)}` +
        `: ${r.subset.selectedFiles} files, ${formatBytes(r.subset.selectedBytes)}`,
    );
  if (r.manifestSha256) lines.push(`  manifest.json renders; SHA-256 ${r.manifestSha256}`);
  if (r.recorded !== undefined) lines.push(recordedLine(r.recorded));
  return [...lines, ...describeFindings(r)].join('\n');
}

export function registerVerify(program: Command, run: Runner): void {
  program
    .command('verify')
    .argument('<backup>', 'backup id (or a unique prefix of at least 8 characters) or "latest"')
    .description(
      'prove a backup can be restored: manifest, file list, index and packs; with --read-data, every byte and ' +
        'every database',
    )
    .addOption(
      new Option(
        '--read-data',
        'read every pack the backup needs in full, decrypt and hash every file, integrity-check every database',
      ).conflicts('readDataSubset'),
    )
    .option('--read-data-subset <percent>', 'the same for a deterministic random share of the files, e.g. 10%')
    .option(
      '--seed <text>',
      'choose the --read-data-subset sample (default: the backup id; the same seed picks the same files)',
    )
    .option(
      '--scratch-dir <dir>',
      'where databases are restored for integrity_check (default: $TMPDIR); needs room for all of the backup ' +
        'databases (several are rebuilt at once)',
    )
    .option('--max-problems <n>', 'list at most this many problems (all are counted; default 20)')
    .option(
      '--no-lock',
      'take no repository lock (not needed for a read-only repository: it is read without one, with a warning)',
    )
    .addHelpText(
      'after',
      `
Levels: the manifest decrypts and is well-formed; the file list reads and every entry is
valid; every blob is in the index and every pack it lives in exists and is long enough.
--read-data also reads those packs in full (SHA-256 against the name), decrypts and hashes
every chunk and every file, and restores every database to a private scratch file for
PRAGMA integrity_check. The run does not stop at the first problem.

Exit codes: 0 the backup is good; 3 STOP — damage found (MISSING_MANIFEST,
CHECKSUM_MISMATCH or DB_INTEGRITY_ERROR; with --json the report comes with a "stop"
member); 1 something could not be read for another reason (I/O, space) and no damage
was found.

Examples:
  fole-backup verify latest --read-data
  fole-backup verify latest --read-data-subset 5% --seed "$(date +%G-W%V)" --json`,
    )
    .action(function (this: Command, ref: string) {
      const flags = this.opts<VerifyFlags>();
      return run(async (ctx) => {
        const readData: VerifyOptions['readData'] = readDataFlags(flags);
        const maxProblems = parseMaxProblems(flags.maxProblems);
        const { verifyBackup, verifyVerdict } = await import('../../verify/verify-backup.js');
        const repo = await ctx.openRepo('verify');
        let report: VerifyReport;
        try {
          report = await verifyBackup(repo, ref, {
            readData,
            reporter: ctx.reporter,
            signal: ctx.interruptible(),
            lock: flags.lock !== false,
            ...(maxProblems === undefined ? {} : { maxProblems }),
            ...(flags.scratchDir === undefined ? {} : { scratchParent: flags.scratchDir }),
          });
        } finally {
          ctx.reporter.stop();
          await repo.close();
        }
        finishReport(ctx, report, verifyVerdict(report), () => describeVerify(report));
      });
    });
}
