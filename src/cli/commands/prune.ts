import type { Command } from 'commander';
import { prune, type PruneResult } from '../../prune/prune.js';
import { formatBytes, formatDuration } from '../output.js';
import type { Runner } from '../context.js';
import { parsePercentage } from '../numbers.js';

export function parseThreshold(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  return parsePercentage('--repack-threshold', v);
}

export function describePrune(r: PruneResult): string {
  const p = r.plan;
  return [
    `${r.dryRun ? 'prune plan' : 'pruned'}: ${p.packs} packs (${p.orphanPacks} orphaned), ${p.usedBlobs} used / ${p.unusedBlobs} unused blobs`,
    `  ${p.removePacks} packs ${r.dryRun ? 'to remove' : 'removed'} (${p.repackPacks} repacked, ${formatBytes(p.repackBytes)} rewritten), ${p.keepPacks} kept`,
    `  ${formatBytes(p.freedBytes)} ${r.dryRun ? 'would be freed' : 'freed'}; ${formatBytes(p.unusedBytesKept)} unused data left in kept packs` +
      (r.dryRun ? '' : ` — ${formatDuration(r.durationMs)}`),
    ...(r.tempFilesRemoved > 0 ? [`  ${r.tempFilesRemoved} leftover temporary files ${r.dryRun ? 'to remove' : 'removed'} (left by interrupted writes, untouched for over an hour)`] : []),
  ].join('\n');
}

export function registerPrune(program: Command, run: Runner): void {
  program
    .command('prune')
    .description('delete data no backup references (after `forget`), repacking partly used packs')
    .option('--repack-threshold <percent>', 'repack a pack when at least this much of it is unused (default 20%)')
    .option('-n, --dry-run', 'show what would be removed; change nothing')
    .addHelpText('after', `
Prune takes the exclusive repository lock (no backup or restore may run meanwhile)
and is safe to kill at any instant: new packs and index files are written before
anything old is deleted, so every remaining backup stays restorable. It also
removes the temporary files (.tmp-*) interrupted writes left, once untouched for
an hour (a younger one may belong to a writer still at work).`)
    .action(function (this: Command) {
      const flags = this.opts<{ repackThreshold?: string; dryRun?: boolean }>();
      return run(async (ctx) => {
        const threshold = parseThreshold(flags.repackThreshold);
        const repo = await ctx.openRepo();
        try {
          const r = await prune(repo, { repackThreshold: threshold, dryRun: flags.dryRun, reporter: ctx.reporter });
          ctx.reporter.stop();
          ctx.out.result(r, () => describePrune(r));
        } finally {
          await repo.close();
        }
      });
    });
}
