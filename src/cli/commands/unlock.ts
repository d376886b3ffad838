import type { Command } from 'commander';
import type { Runner } from '../context.js';

export function registerUnlock(program: Command, run: Runner): void {
  program
    .command('unlock')
    .description(
      'remove stale repository locks: holder provably gone (same host, boot and PID namespace, dead pid) after ' +
        'its lease, a lease long expired, or an unreadable lock file 30 minutes old',
    )
    .option('--force', 'also remove live locks — only when you are sure no fole-backup process uses the repository')
    .action(function (this: Command) {
      const opts = this.opts<{ force?: boolean }>();
      return run(async (ctx) => {
        const { describeLock, unlockRepository } = await import('../../repository/lock.js');
        const repo = await ctx.openRepo('unlock');
        const { removed, kept } = await unlockRepository(repo, { force: opts.force === true });
        await repo.close();
        const show = (l: (typeof removed)[number]): object => ({
          name: l.name,
          exclusive: l.exclusive,
          operation: l.operation,
          host: l.host,
          pid: l.pid,
          username: l.username,
          createdAt: l.createdAt,
          refreshedAt: l.refreshedAt,
          stale: l.stale,
        });
        ctx.out.report({ removed: removed.map(show), kept: kept.map(show) }, () => {
          const lines: string[] = [];
          for (const l of removed)
            lines.push(`removed ${describeLock(l)}${l.stale ? ` — ${l.stale}` : ' (live, --force)'}`);
          for (const l of kept)
            lines.push(
              `kept ${describeLock(l)} — its owner may still be running; use --force only if you are sure it is not`,
            );
          if (lines.length === 0) lines.push('no locks');
          return lines.join('\n');
        });
      });
    });
}
