import type { Command } from 'commander';
import type { BackupResult } from '../../backup/backup.js';
import { parseSeconds } from '../numbers.js';
import { formatBytes, formatDuration, UsageError } from '../output.js';
import type { Context, Runner } from '../context.js';
import { printablePath } from '../../snapshot/validate.js';

export interface BackupFlags {
  storageRoot?: string;
  foleVersion?: string;
  tag?: string[];
  stagingDir?: string;
  busyTimeout?: string;
  storageLockWait?: string;
  incremental?: boolean;
  full?: boolean;
  parent?: string;
}

/** Human summary of a finished backup (also used by the demo). */
export function describeBackup(r: BackupResult): string {
  const lines = [
    `backup ${r.backupId} (${r.type}${r.parent ? ` of ${r.parent}` : ''}) done in ${formatDuration(r.durationMs)}`,
    `  ${r.files} files (${r.databases} SQLite databases captured at one instant, writers held ` +
      `${r.writersBlockedMs.toFixed(1)} ms), ${r.dirs} directories`,
  ];
  if (r.type === 'incremental') {
    lines.push(
      `  files: ${r.filesNew} new, ${r.filesChanged} changed, ${r.filesUnchanged} unchanged, ` +
        `${r.filesDeleted} deleted; databases: ` +
        `${r.dbsCaptured} captured, ${r.dbsUnchanged} unchanged`,
    );
  }
  lines.push(
    `  ${formatBytes(r.bytes)} in the backup, ${formatBytes(r.bytesRead)} read, ${formatBytes(r.addedBytes)}` +
      ` added to the repository`,
  );
  if (r.skippedCount > 0) {
    lines.push(`  ${r.skippedCount} paths skipped:`);
    for (const s of r.skipped.slice(0, 10)) lines.push(`    ${printablePath(s.path)}: ${s.reason}`);
    if (r.skippedCount > 10)
      lines.push(`    … (${r.skippedCount - 10} more in --json output / \`fole-backup list --json\`)`);
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
  let foleVersion = flags.foleVersion ?? process.env.FOLE_VERSION;
  let versionFrom = flags.foleVersion !== undefined ? '--fole-version' : 'FOLE_VERSION';
  if (foleVersion === undefined || foleVersion === '') {
    const { FOLE_VERSION_FILE, readRecordedFoleVersion } = await import('../../storage/fole-version.js');
    foleVersion = await readRecordedFoleVersion(storageRoot);
    versionFrom = FOLE_VERSION_FILE;
    if (foleVersion === undefined) {
      throw new UsageError(
        'no FOLE version given',
        `pass --fole-version X.Y.Z (or set FOLE_VERSION), or record it as "foleVersion" in the STORAGE_ROOT's ` +
          `${FOLE_VERSION_FILE}: the version of the FOLE server that owns this STORAGE_ROOT; restore compares it`,
      );
    }
    ctx.out.info(`FOLE version ${foleVersion} (from ${FOLE_VERSION_FILE})`);
  }
  const given = ctx.flags.actor ?? process.env.FOLE_BACKUP_ACTOR;
  // checked before the repository is opened: a bad value costs no password prompt
  const { checkBackupLabels } = await import('../../snapshot/fields.js');
  checkBackupLabels(
    { foleVersion, actor: given, tags: flags.tag },
    {
      version: versionFrom,
      actor: ctx.flags.actor !== undefined ? '--actor' : 'FOLE_BACKUP_ACTOR',
      tag: '--tag',
    },
  );
  let busyTimeoutMs: number | undefined;
  if (flags.busyTimeout !== undefined)
    busyTimeoutMs = parseSeconds('--busy-timeout', flags.busyTimeout, { positive: true, max: 86_400 });
  if (flags.full && (flags.incremental || flags.parent)) {
    throw new UsageError('--full cannot be combined with --incremental or --parent');
  }
  const storageLockWaitMs =
    flags.storageLockWait === undefined
      ? undefined
      : parseSeconds('--storage-lock-wait', flags.storageLockWait, { max: 86_400 });
  const { backup } = await import('../../backup/backup.js');
  const { auditHead } = await import('../../trust/audit-store.js');
  const repo = await ctx.openRepo('backup');
  const head = await auditHead(repo);
  try {
    return await backup(repo, {
      incremental: flags.incremental === true,
      parent: flags.parent,
      storageRoot,
      foleVersion,
      // who the gate established: in registry mode a registered, key-proven actor and its kind; in
      // single-operator mode what --actor says, or backup's own default (user@host)
      actor: ctx.trust().mode === 'registry' || given !== undefined ? ctx.trust().principal.name : undefined,
      actorKind: ctx.trust().principal.kind,
      ...(head === undefined ? {} : { auditHead: head }),
      tags: flags.tag,
      stagingParent: flags.stagingDir ?? process.env.FOLE_BACKUP_STAGING,
      busyTimeoutMs,
      storageLockWaitMs,
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
    .option(
      '--fole-version <version>',
      'version of the FOLE server owning it, MAJOR.MINOR.PATCH[-PRERELEASE] (default: $FOLE_VERSION, else ' +
        '"foleVersion" in the root\'s config/server.json)',
    )
    .option(
      '--tag <tag...>',
      'tag the backup (repeatable; up to 256 characters each, no control characters), e.g. pre-migration:42',
    )
    .option(
      '--staging-dir <dir>',
      'where database snapshots are staged (default: $FOLE_BACKUP_STAGING, else those that fit in memory in ' +
        '/dev/shm and the others in the OS temp dir); needs room for all databases. Naming one puts every ' +
        'copy there',
    )
    .option(
      '--storage-lock-wait <seconds>',
      'how long to wait for the Global Storage Lock if another backup, a restore or FOLE holds it (default 0)',
    )
    .option(
      '--busy-timeout <seconds>',
      'how long to wait for SQLite writers to let go (default 30): then a FOLE database fails the backup, any ' +
        'other is stored as bytes with a warning',
    )
    .option(
      '-i, --incremental',
      'compare with the latest backup of this STORAGE_ROOT and re-read only what changed (the result is still a ' +
        'complete backup)',
    )
    .option('--parent <backup>', 'compare with this backup instead of the latest (implies --incremental)')
    .option('--full', 're-read and re-hash everything (the default without --incremental)')
    .addHelpText(
      'after',
      `
Every SQLite database (found by its header, whatever its name) is captured with the
Online Backup API at one instant, integrity-checked, and stored page-aligned; every
other file is hashed and stored once. A damaged FOLE database (core.db, project,
map or module database), or a file at one of their places that is not a sound
SQLite database (empty, text, truncated), is a STOP (exit 3); any other file that
looks like SQLite and is damaged, or is locked by a writer past --busy-timeout, is
stored byte for byte as an ordinary file, with a warning. tmp/, cache/ and
-wal/-shm/-journal files are left out; symlinks are reported, never followed, and a
symlink where FOLE keeps its databases (core/, core/core.db, projects/<id>/…) fails
the backup (UNSAFE_PATH). The repository and --staging-dir must lie outside the
STORAGE_ROOT.

An incremental skips files whose size, mtime, ctime and inode match the parent and
databases whose files did not change at the capture instant; a changed database is
captured again as a full snapshot, and page-aligned chunks make that cost about what
changed. Restoring an incremental needs nothing but the repository.

Examples:
  fole-backup backup --repo /srv/backups/fole --storage-root /srv/fole --fole-version 2.3.1
  fole-backup backup --incremental --storage-root /srv/fole --fole-version 2.3.1   # every 15 min
  STORAGE_ROOT=/srv/fole FOLE_VERSION=2.3.1 fole-backup backup --json`,
    )
    .action(function (this: Command) {
      const flags = this.opts<BackupFlags>();
      return run(async (ctx) => {
        const r = await runBackup(ctx, flags);
        ctx.out.report(r, () => describeBackup(r), r.warnings);
      });
    });
}
