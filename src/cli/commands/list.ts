import type { Command } from 'commander';
import { printable } from '../../snapshot/validate.js';
import { formatBytes } from '../output.js';
import type { Runner } from '../context.js';

export function registerList(program: Command, run: Runner): void {
  program
    .command('list')
    .description('list the backups in the repository, oldest first')
    .action(() =>
      run(async (ctx) => {
        const { describeDamaged, scanSnapshots } = await import('../../snapshot/store.js');
        const repo = await ctx.openRepo('list');
        const { snapshots: snaps, damaged } = await scanSnapshots(repo);
        await repo.close();
        const rows: Record<string, unknown>[] = snaps.map((s) => ({
          backupId: s.backupId,
          createdAt: s.createdAt,
          type: s.type,
          foleVersion: s.manifest.foleVersion,
          createdBy: s.manifest.createdBy,
          host: s.host,
          storageRoot: s.storageRoot,
          tags: s.tags,
          files: s.stats.files,
          databases: s.stats.databases,
          bytes: s.stats.bytes,
          addedBytes: s.stats.addedBytes,
          ...(s.parent ? { parent: s.parent } : {}),
        }));
        // a damaged backup is listed, marked, at the end: its time is unknown
        for (const d of damaged) rows.push({ backupId: d.backupId, damaged: d.reason });
        if (damaged.length > 0)
          ctx.reporter.warn(describeDamaged(damaged, 'they are listed as DAMAGED and cannot be restored'));
        ctx.out.result(rows, () => {
          if (rows.length === 0) return 'no backups yet';
          const lines = snaps.map((s) =>
            [
              s.backupId,
              s.createdAt,
              s.type.padEnd(11),
              `fole ${printable(s.manifest.foleVersion, 20).slice(1, -1)}`.padEnd(14),
              `${s.stats.files} files`.padStart(12),
              formatBytes(s.stats.bytes).padStart(10),
              s.tags.map((t) => printable(t, 60).slice(1, -1)).join(','),
            ].join('  '),
          );
          for (const d of damaged) lines.push(`${d.backupId}  DAMAGED  ${d.reason.replace(/\n/g, '\\n')}`);
          return [
            `${rows.length} backup${rows.length === 1 ? '' : 's'}` +
              `${damaged.length > 0 ? ` (${damaged.length} damaged)` : ''}:`,
            ...lines,
          ].join('\n');
        });
      }),
    );
}
