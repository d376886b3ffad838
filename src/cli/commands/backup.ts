import { Option, type Command } from 'commander';
import { backup, type BackupResult } from '../../backup/backup.js';
import { formatBytes, formatDuration, UsageError } from '../output.js';
import type { Context, Runner } from '../context.js';
import { printablePath } from '../../snapshot/validate.js';

export interface BackupFlags {
  storageRoot?: string;
  foleVersion?: string;
  actor?: string;
  actorKind?: 'human' | 'agent';
  tag?: string[];
  stagingDir?: string;
  busyTimeout?: string;
  incremental?: boolean;
  full?: boolean;
  parent?: string;
}

/** Human summary of a finished backup (also used by the demo). */
export function describeBackup(r: BackupResult): string {
  const lines = [
    `backup ${r.backupId} (${r.type}${r.parent ? ` of ${r.parent}` : ''}) done in ${formatDuration(r.durationMs)}`,
    `  ${r.files} files (${r.databases} SQLite databases captured at one instant, writers held ${r.writersBlockedMs.toFixed(1)} ms), ${r.dirs} directories`,
  ];
  if (r.type === 'incremental') {
    lines.push(
      `  files: ${r.filesNew} new, ${r.filesChanged} changed, ${r.filesUnchanged} unchanged; databases: ${r.dbsCaptured} captured, ${r.dbsUnchanged} unchanged`,
    );
  }
  lines.push(`  ${formatBytes(r.bytes)} in the backup, ${formatBytes(r.bytesRead)} read, ${formatBytes(r.addedBytes)} added to the repository`);
  if (r.skippedCount > 0) {
    lines.push(`  ${r.skippedCount} paths skipped:`);
    for (const s of r.skipped.slice(0, 10)) lines.push(`    ${printablePath(s.path)}: ${s.reason}`);
    if (r.skippedCount > 10) lines.push(`    … (${r.skippedCount - 10} more in --json output / \`fole-backup list --json\`)`);
  }
  if (r.warnings.length > 0) {
    lines.push(`  ${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'}:`);
    for (const w of r.warnings.slice(0, 10)) lines.push(`    ${w}`);
    if (r.warnings.length > 10) lines.push(`    … (${r.warnings.length - 10} more in --json output)`);
  }
  return lines.join('\n');
}

export async function runBackup(ctx: Context, flags: BackupFlags): Promise<BackupResult> {
  const storageRoot = flags.storageRoot ?? process.env.STORAGE_ROOT;
  if (!storageRoot) throw new UsageError('no STORAGE_ROOT given', 'pass --storage-root <dir> or set STORAGE_ROOT');
  const foleVersion = flags.foleVersion ?? process.env.FOLE_VERSION;
  if (!foleVersion) {
    throw new UsageError(
      'no FOLE version given',
      'pass --fole-version X.Y.Z (or set FOLE_VERSION): the version of the FOLE server that owns this STORAGE_ROOT; restore compares it',
    );
  }
  let busyTimeoutMs: number | undefined;
  if (flags.busyTimeout !== undefined) {
    const s = Number(flags.busyTimeout);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`--busy-timeout must be a positive number of seconds, not ${flags.busyTimeout}`);
    busyTimeoutMs = s * 1000;
  }
  if (flags.full && (flags.incremental || flags.parent)) {
    throw new UsageError('--full cannot be combined with --incremental or --parent');
  }
  const repo = await ctx.openRepo();
  try {
    return await backup(repo, {
      incremental: flags.incremental === true,
      parent: flags.parent,
      storageRoot,
      foleVersion,
      actor: flags.actor ?? process.env.FOLE_BACKUP_ACTOR,
      actorKind: flags.actorKind,
      tags: flags.tag,
      stagingParent: flags.stagingDir ?? process.env.FOLE_BACKUP_STAGING,
      busyTimeoutMs,
      reporter: ctx.reporter,
      signal: ctx.interruptible(),
    });
  } finally {
    ctx.reporter.stop();
    await repo.close();
  }
}

export function registerBackup(program: Command, run: Runner): void {
  program
    .command('backup')
    .description('take a full, point-in-time-consistent backup of a FOLE STORAGE_ROOT')
    .option('-s, --storage-root <dir>', 'the STORAGE_ROOT to back up (default: $STORAGE_ROOT)')
    .option('--fole-version <version>', 'version of the FOLE server owning it (default: $FOLE_VERSION); required')
    .option('--actor <who>', 'who asks for this backup, recorded as createdBy (default: user@host)')
    .addOption(new Option('--actor-kind <kind>', 'whether a person or an AI agent asks').choices(['human', 'agent']).default('human'))
    .option('--tag <tag...>', 'tag the backup (repeatable), e.g. pre-migration:42')
    .option('--staging-dir <dir>', 'where database snapshots are staged (default: $FOLE_BACKUP_STAGING or the OS temp dir); needs room for all databases')
    .option('--busy-timeout <seconds>', 'how long to wait for SQLite writers to let go before failing (default 30)')
    .option('-i, --incremental', 'compare with the latest backup of this STORAGE_ROOT and re-read only what changed (the result is still a complete backup)')
    .option('--parent <backup>', 'compare with this backup instead of the latest (implies --incremental)')
    .option('--full', 're-read and re-hash everything (the default without --incremental)')
    .addHelpText('after', `
Every SQLite database (found by its header, whatever its name) is captured with the
Online Backup API at one instant, integrity-checked, and stored page-aligned; every
other file is hashed and stored once. tmp/, cache/ and -wal/-shm/-journal files are
left out; symlinks are reported, never followed.

An incremental skips files whose size, mtime, ctime and inode match the parent and
databases whose files did not change at the capture instant; a changed database is
captured again as a full snapshot, and page-aligned chunks make that cost about what
changed. Restoring an incremental needs nothing but the repository.

Examples:
  fole-backup backup --repo /srv/backups/fole --storage-root /srv/fole --fole-version 2.3.1
  fole-backup backup --incremental --storage-root /srv/fole --fole-version 2.3.1   # every 15 min
  STORAGE_ROOT=/srv/fole FOLE_VERSION=2.3.1 fole-backup backup --json`)
    .action(function (this: Command) {
      const flags = this.opts<BackupFlags>();
      return run(async (ctx) => {
        const r = await runBackup(ctx, flags);
        ctx.out.result(r, () => describeBackup(r));
      });
    });
}
