import type { Command } from 'commander';
import { listSnapshots } from '../../snapshot/store.js';
import { formatBytes } from '../output.js';
import type { Runner } from '../context.js';

export function registerList(program: Command, run: Runner): void {
  program
    .command('list')
    .description('list the backups in the repository, oldest first')
    .action(() =>
      run(async (ctx) => {
        const repo = await ctx.openRepo();
        const snaps = await listSnapshots(repo);
        await repo.close();
        const rows = snaps.map((s) => ({
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
        ctx.out.result(rows, () => {
          if (rows.length === 0) return 'no backups yet';
          const lines = rows.map((r) =>
            [r.backupId, r.createdAt, r.type.padEnd(11), `fole ${r.foleVersion}`.padEnd(14), `${r.files} files`.padStart(12), formatBytes(r.bytes).padStart(10), r.tags.join(',')].join('  '),
          );
          return [`${rows.length} backup${rows.length === 1 ? '' : 's'}:`, ...lines].join('\n');
        });
      }),
    );
}
