import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import type { CheckReport } from '../../verify/check-repository.js';
import type { Runner } from '../context.js';
import { counted, formatBytes, formatDuration } from '../output.js';
import { describeFindings, finishReport, parseMaxProblems, readDataFlags, recordedLine } from './verify.js';

interface CheckFlags {
  readData?: boolean;
  readDataSubset?: string;
  seed?: string;
  maxProblems?: string;
  lock?: boolean;
}

/** OK, OK with known damage, or how many problems. */
function verdictWord(r: CheckReport): string {
  if (!r.ok) return `${r.problemCount} PROBLEM${r.problemCount === 1 ? '' : 'S'}`;
  return r.counts.knownDamageBackups > 0 ? 'OK, with known damage' : 'OK';
}

function describeCheck(r: CheckReport): string {
  const c = r.counts;
  const lines = [
    `repository ${r.repository}: ${verdictWord(r)}` +
      ` — checked ${r.levels.join(', ') || 'nothing'} in ${formatDuration(r.durationMs)}`,
    `  backups: ${c.snapshots}, index files: ${c.indexFiles}, packs: ${c.packs}, blobs: ${c.blobs}` +
      `, keys: ${c.keys}, locks: ${c.locks}`,
    `  file-list entries: ${c.treeEntries}, with ${c.blobRefs} chunk references checked against the index`,
  ];
  if (c.orphanPacks > 0)
    lines.push(`  ${c.orphanPacks} orphaned packs (${formatBytes(c.orphanBytes)}): harmless; prune removes them`);
  if (c.tempFiles > 0)
    lines.push(
      `  ${c.tempFiles} leftover temporary files (${formatBytes(c.tempBytes)}): harmless; prune removes those ` +
        `older than an hour`,
    );
  if (c.duplicateBlobs > 0) lines.push(`  ${c.duplicateBlobs} duplicate blobs: harmless; prune removes them`);
  if (r.subset !== undefined)
    lines.push(
      `  subset: ${r.subset.percent}% of the packs by seed ${JSON.stringify(r.subset.seed)}: ${r.subset.packs} ` +
        `packs, ${formatBytes(r.subset.bytes)} (the same --seed reads the same packs again)`,
    );
  if (r.readData)
    lines.push(
      `  packs read in full: ${c.packsRead}; blobs decrypted and hashed: ${c.blobsRead}; ` +
        `${formatBytes(c.bytesRead)} read in all (index files included)`,
    );
  else lines.push('  no pack data read (--read-data reads and verifies every pack)');
  if (c.knownDamageBackups > 0)
    lines.push(
      `  known damage: ${counted(c.knownDamageBackups, 'backup')} need${c.knownDamageBackups === 1 ? 's' : ''} data ` +
        `that repair found lost (${c.knownDamageFiles > 0 ? counted(c.knownDamageFiles, 'file') : 'their file lists'}` +
        ', listed below): a backup of the same content ' +
        'heals them; restore the others from another backup',
    );
  if (r.recorded !== undefined) lines.push(recordedLine(r.recorded));
  return [...lines, ...describeFindings(r)].join('\n');
}

export function registerCheck(program: Command, run: Runner): void {
  program
    .command('check')
    .description(
      "check the whole repository: config, keys, index, packs and every backup's file list; with --read-data, " +
        'every byte',
    )
    .option(
      '--read-data',
      'read every pack in full: SHA-256 against its name, header against the index, every blob decrypted and hashed',
    )
    .option(
      '--read-data-subset <percent>',
      'the same for a random share of the packs, e.g. 10%: run it often with a new seed to cover them all in time',
    )
    .option('--seed <text>', 'choose the --read-data-subset sample (default: a new random one, printed)')
    .option('--max-problems <n>', 'list at most this many problems (all are counted; default 20)')
    .option(
      '--no-lock',
      'take no repository lock (not needed for a read-only repository: it is read without one, with a warning)',
    )
    .addHelpText(
      'after',
      `
Orphaned packs (left by an interrupted backup), duplicate blobs, stale locks and
leftover temporary files (.tmp-*, left by an interrupted write) are reported as
info: they are harmless and do not fail the check; prune removes them.

Exit codes: 0 the repository is consistent; 3 STOP — damage found (with --json the
report comes with a "stop" member naming the code; each problem names the backup it
affects); 1 something could not be read for another reason and no damage was found.`,
    )
    .action(function (this: Command) {
      const flags = this.opts<CheckFlags>();
      return run(async (ctx) => {
        const readData = readDataFlags(flags);
        const maxProblems = parseMaxProblems(flags.maxProblems);
        const { checkRepository, checkVerdict } = await import('../../verify/check-repository.js');
        const repo = await ctx.openRepo('check');
        let report: CheckReport;
        try {
          report = await checkRepository(repo, {
            readData: readData === true,
            ...(typeof readData === 'object'
              ? { readDataSubset: { percent: readData.percent, seed: readData.seed ?? randomBytes(6).toString('hex') } }
              : {}),
            reporter: ctx.reporter,
            signal: ctx.interruptible(),
            lock: flags.lock !== false,
            ...(maxProblems === undefined ? {} : { maxProblems }),
          });
        } finally {
          ctx.reporter.stop();
          await repo.close();
        }
        finishReport(ctx, report, checkVerdict(report), () => describeCheck(report));
      });
    });
}
