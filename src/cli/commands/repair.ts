import type { Command } from 'commander';
import type { RepairReport } from '../../repair/repair.js';
import type { Runner } from '../context.js';
import { counted, formatBytes, formatDuration } from '../output.js';
import { parseWholeNumber } from '../numbers.js';

const HEAL_TEXT = {
  likely: 'the next backup likely heals it (unchanged in the STORAGE_ROOT)',
  unlikely: 'changed or gone since: this backup keeps no copy of it',
  unknown: 'healed by the next backup only if it has not changed',
} as const;

function describeRepair(r: RepairReport): string {
  const would = (done: string, planned: string): string => (r.dryRun ? planned : done);
  const outcome = r.nothingToDo
    ? `${r.dryRun ? 'dry run: ' : ''}nothing to repair — every pack is sound and indexed`
    : r.dryRun
      ? 'DRY RUN, nothing was changed'
      : `repaired in ${formatDuration(r.durationMs)}`;
  const lines = [
    `repository ${r.repository}: ${outcome}`,
    `  packs: ${r.packs.scanned} read in full (${formatBytes(r.packs.bytesRead)}): ${r.packs.sound} sound, ` +
      `${r.packs.damaged} damaged, ${r.packs.missing} missing`,
    `  index files: ${r.indexFiles.scanned}: ${r.indexFiles.kept} kept as they are, ${r.indexFiles.removed} ` +
      `${would('replaced', 'to replace')} (${r.indexFiles.unreadable} unreadable)` +
      (r.dryRun ? '' : `, ${r.indexFiles.written} written`),
  ];
  if (r.salvagedBlobs > 0)
    lines.push(
      `  ${counted(r.salvagedBlobs, 'sound blob')} of damaged packs ${would('copied', 'to copy')} into new packs ` +
        '(salvage)',
    );
  for (const p of r.movedAside)
    lines.push(`  damaged pack ${p.slice(0, 12)} ${would('moved aside to', 'to move aside to')} quarantine/data.${p}`);
  for (const p of r.missingPacks) lines.push(`  pack ${p.slice(0, 12)} is missing: its blobs are gone`);
  if (r.lostBlobs > 0)
    lines.push(`  ${counted(r.lostBlobs, 'blob')} that backups need: no sound copy left (lost; recorded for check)`);
  for (const a of r.affected) {
    lines.push(
      a.fileListLost
        ? `  backup ${a.backupId} (${a.createdAt}): its file list is lost — it can be neither listed nor restored; ` +
            `\`fole-backup forget ${a.backupId}\` removes it`
        : `  backup ${a.backupId} (${a.createdAt}): ${counted(a.files, 'file')} need${a.files === 1 ? 's' : ''} ` +
            `lost data${a.likelyHealed > 0 ? ` (the next backup likely heals ${a.likelyHealed})` : ''}; its other ` +
            'files restore',
    );
    for (const f of a.examples) lines.push(`    ${f.path} — ${HEAL_TEXT[f.heal]}`);
    if (a.files > a.examples.length) lines.push(`    … and ${a.files - a.examples.length} more`);
  }
  if (r.unreadableBackups.length > 0)
    lines.push(
      `  ${counted(r.unreadableBackups.length, 'backup')} cannot be read (${r.unreadableBackups.join(', ')}): ` +
        'repair does not deal with them; `fole-backup check` says why',
    );
  if (r.recordsRemoved > 0)
    lines.push(`  ${counted(r.recordsRemoved, 'earlier damage record')} ${would('replaced', 'to replace')}`);
  if (r.dryRun && !r.nothingToDo) lines.push('run it without --dry-run to repair (it takes the exclusive lock)');
  if (!r.dryRun && r.affected.length > 0)
    lines.push(
      'back up now to heal what can be healed; `fole-backup check` lists the backups still incomplete after that',
    );
  return lines.join('\n');
}

export function registerRepair(program: Command, run: Runner): void {
  program
    .command('repair')
    .description(
      'rebuild the index from the packs, copy the sound blobs of damaged packs into new ones, move damaged packs ' +
        'aside, and report which backups lost what',
    )
    .option('-n, --dry-run', 'read and report everything a repair would do, and change nothing')
    .option('--max-files <n>', 'list at most this many affected files per backup (all are counted; default 20)')
    .addHelpText(
      'after',
      `
Repair reads every pack in full (like check --read-data) and trusts what the
packs hold, never what an index says. It rewrites nothing that is sound: a sound
pack and an index file that describes only sound packs exactly are kept as they
are. Damaged packs and unreadable index files are moved to quarantine/ in the
repository, never deleted: remove them by hand once you no longer need them.

Backups are not rewritten. A file whose data was lost stays in its backup, which
\`check\` then reports as known damage; the next backup stores that data again
when the file has not changed, and the old backups are whole again.

It takes the exclusive lock (--dry-run a shared one) and is safe to kill at any
instant: run it again and it completes. Correcting a damaged repository is a
human decision: an agent may only run it with --dry-run.`,
    )
    .action(function (this: Command) {
      const flags = this.opts<{ dryRun?: boolean; maxFiles?: string }>();
      return run(async (ctx) => {
        const maxFiles =
          flags.maxFiles === undefined
            ? undefined
            : parseWholeNumber('--max-files', flags.maxFiles, { min: 1, max: 1_000_000 });
        const { repair } = await import('../../repair/repair.js');
        const repo = await ctx.openRepo(flags.dryRun === true ? 'repair-preview' : 'repair');
        let r: RepairReport;
        try {
          r = await repair(repo, {
            dryRun: flags.dryRun === true,
            reporter: ctx.reporter,
            signal: ctx.interruptible(),
            ...(maxFiles === undefined ? {} : { maxFiles }),
          });
        } finally {
          ctx.reporter.stop();
          await repo.close();
        }
        ctx.out[r.dryRun ? 'result' : 'report'](r, () => describeRepair(r));
      });
    });
}
