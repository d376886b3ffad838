import type { Command } from 'commander';
import type { RestorePlan } from '../../restore/plan.js';
import type { RestoreResult } from '../../restore/restore.js';
import { formatBytes, formatDuration, UsageError } from '../output.js';
import { approvalStep } from '../approval-step.js';
import type { Runner } from '../context.js';
import { printablePath as shown } from '../../snapshot/validate.js';
import { parseSeconds } from '../numbers.js';
import { collect } from '../repeatable.js';

interface RestoreFlags {
  target?: string;
  confirm?: string;
  foleVersion?: string;
  modules?: string;
  dryRun?: boolean;
  request?: string;
  storageLockWait?: string;
  include: string[];
  exclude: string[];
}

/** A path quoted for a POSIX shell, so a printed command can be pasted. */
function sh(p: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

function list(items: readonly string[], max = 8): string {
  if (items.length === 0) return 'none';
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, … (${items.length} in all)`;
}

/** Human rendering of a dry run. */
export function describePlan(
  p: RestorePlan,
  given: {
    foleVersion?: string | undefined;
    modules?: string | undefined;
    include?: string[];
    exclude?: string[];
  } = {},
): string {
  const b = p.backup;
  const lines = [
    'dry run: nothing was changed',
    `restore backup ${p.backupId}${p.requested !== p.backupId ? ` ("${p.requested}")` : ''}`,
    // what a backup says about itself is shown escaped: a host name or path with a line break must not forge a line
    `  taken ${b.createdAt} by ${shown(b.createdBy)} of ${shown(b.storageRoot)} on ${shown(b.host)} (${b.type}` +
      `, FOLE ${shown(b.foleVersion)})`,
    `into ${shown(p.target.path)}, which holds ${p.target.holds}`,
  ];
  if (p.mode === 'replace') {
    lines.push(
      `  it would be moved aside, whole, to ${p.previousTree} (named with the time of the restore) and kept ` +
        `until you remove it`,
    );
  } else if (p.target.kind === 'empty-dir') {
    lines.push('  the empty directory would be replaced by the restored tree');
  }
  if (p.selection !== null) {
    lines.push(
      `only what --include ${p.selection.include.join(' ')} matches` +
        `${p.selection.exclude.length > 0 ? ` and --exclude ${p.selection.exclude.join(' ')} does not` : ''}` +
        ', with the directories above it',
    );
  }
  const lock = p.storageLock
    ? `the Global Storage Lock in ${p.target.path}/core/core.db is held during the swap`
    : 'none to take (the target has no core/core.db)';
  lines.push(
    `write: ${p.write.files} files (${formatBytes(p.write.bytes)}) and ${p.write.dirs} directories into ${p.staging},`,
    '  each file checked against its SHA-256 as it is written; then renamed into place',
    `check: ${p.databases.length} SQLite database${p.databases.length === 1 ? '' : 's'}` +
      ` with PRAGMA integrity_check: ${list(p.databases.map((d) => d.path))}`,
    `FOLE version: backup ${p.checks.foleVersion.backup}, target ${p.checks.foleVersion.target}` +
      `: ${p.checks.foleVersion.result}`,
    `modules: backup ${list(p.checks.modules.backup)}` +
      `; target ${p.checks.modules.target === null ? '(no set)' : list(p.checks.modules.target)}` +
      `: ${p.checks.modules.result}`,
    `storage lock: ${lock}`,
  );
  for (const w of p.warnings) lines.push(`warning: ${w.replace(/\n/g, '\\n')}`);
  const version = given.foleVersion ? ` --fole-version ${sh(given.foleVersion)}` : '';
  const modules =
    (given.modules !== undefined ? ` --modules ${sh(given.modules)}` : '') +
    (given.include ?? []).map((g) => ` --include ${sh(g)}`).join('') +
    (given.exclude ?? []).map((g) => ` --exclude ${sh(g)}`).join('');
  lines.push('', p.confirmed ? 'to restore, run the same command without --dry-run' : 'to restore, run:');
  if (!p.confirmed)
    lines.push(
      `  fole-backup restore ${p.backupId} --target ${sh(p.target.path)} --confirm ${p.backupId}${version}${modules}`,
    );
  return lines.join('\n');
}

/** Human summary of a finished restore. */
export function describeRestore(r: RestoreResult): string {
  const lines: string[] = [];
  if (r.recovered !== null) lines.push(`first: ${r.recovered.detail}`, '');
  lines.push(
    `restored backup ${r.backupId} into ${r.target} in ${formatDuration(r.durationMs)}`,
    `  ${r.files} files (${formatBytes(r.bytes)}), each verified against its SHA-256; ${r.dirs}` +
      ` directories; modes, mtimes and (run as root) owners restored`,
    `  ${r.databases} SQLite database${r.databases === 1 ? '' : 's'} passed PRAGMA integrity_check; no ` +
      `-wal/-shm/-journal beside any of them`,
  );
  if (r.cachesCleared.length > 0)
    lines.push(
      `  cleared ${r.cachesCleared.length} tmp/cache directories (FOLE rebuilds them): ${list(r.cachesCleared, 5)}`,
    );
  if (r.previousTree !== null) {
    lines.push(
      `the previous tree is kept at ${r.previousTree}`,
      '  once FOLE runs well on the restored tree, discard it with:',
      `    rm -rf ${sh(r.previousTree)}`,
      `  to go back instead: stop FOLE, then mv ${sh(r.target)} <elsewhere> && mv ${sh(r.previousTree)}` +
        ` ${sh(r.target)}`,
    );
  }
  lines.push(
    r.partial
      ? `this is part of the backup, in a new place: copy what you need from ${sh(r.target)}`
      : '(re)start FOLE now: a process that kept files open still sees the previous tree',
  );
  if (r.warnings.length > 0)
    lines.push(
      `${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'}:`,
      ...r.warnings.map((w) => `  ${w}`),
    );
  return lines.join('\n');
}

export function parseModules(s: string | undefined): string[] | undefined {
  if (s === undefined) return undefined;
  const names = s
    .split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '');
  for (const m of names) {
    if (m.includes('/') || m === '.' || m === '..')
      throw new UsageError(`--modules: ${JSON.stringify(m)} is not a module name`);
  }
  return names;
}

export function registerRestore(program: Command, run: Runner): void {
  program
    .command('restore')
    .argument('<backup>', 'backup id, a unique prefix of at least 8 characters, or "latest"')
    .description(
      'restore a whole STORAGE_ROOT from a backup, verified, with the current tree kept aside; or, with ' +
        '--include, part of it into a new directory',
    )
    .requiredOption(
      '-t, --target <dir>',
      'where to restore: an absent or empty directory, or the STORAGE_ROOT to replace',
    )
    .option(
      '--confirm <backupId>',
      'approve the restore: the FULL id of the backup being restored (required, also for "latest")',
    )
    .option(
      '--fole-version <version>',
      'FOLE version (MAJOR.MINOR.PATCH[-PRERELEASE]) that will run on the restored tree (default: ' +
        '$FOLE_VERSION); required',
    )
    .option(
      '--modules <a,b,…>',
      "the target FOLE's modules (default: the target's modules/ directories); an empty list is allowed",
    )
    .option(
      '--include <glob>',
      'restore only what this glob matches, with the directories above it, into an empty or absent --target ' +
        '(repeatable; a glob as `find` takes it: without a "/" it matches the last name of a path)',
      collect,
      [],
    )
    .option('--exclude <glob>', 'leave out what this glob matches (repeatable; with --include)', collect, [])
    .option('-n, --dry-run', 'print what would be restored, checked and moved, and change nothing')
    .option(
      '--request <id>',
      "run the approved request <id>: an agent's restore runs only once a human approved its exact plan " +
        '(docs/TRUST.md)',
    )
    .option(
      '--storage-lock-wait <seconds>',
      'how long to wait for the Global Storage Lock if FOLE holds it (default 0)',
    )
    .addHelpText(
      'after',
      `
Order of the checks, refusing rather than guessing — a STOP (exit 3) changes nothing:
  1. the manifest must exist and decrypt                     MISSING_MANIFEST
  2. --confirm must be the full id of the backup             AMBIGUOUS_INTENT
     the target must be absent, empty or a STORAGE_ROOT,     UNCLEAR_RESTORE_TARGET
     with core/core.db (not behind a symlink); not /, not a
     file, not the repository or around it
  3. backup FOLE version <= --fole-version, same major       VERSION_MISMATCH
  4. every module of the backup is in the target's set       MODULE_SET_MISMATCH
  5. every file is written beside the target and checked     CHECKSUM_MISMATCH
     against its SHA-256; every database integrity-checked   DB_INTEGRITY_ERROR
  6. under the Global Storage Lock, the current tree is renamed to
     <target>.pre-restore-<UTC time> and the new one renamed in, with a journal:
     a crash at any instant leaves the old tree or the new one
     (\`fole-backup recover --target DIR\`, or the next restore, settles it)

The previous tree is kept until you remove it. Stop FOLE before restoring and start
it afterwards. Owners (uid, gid) are restored when run as root; run as another
user, the modes are restored and a warning says the owners were not.

Examples:
  fole-backup restore latest --target /srv/fole --fole-version 2.3.1 --dry-run
  fole-backup restore 3f2a9c1e-… --target /srv/fole --confirm 3f2a9c1e-… --fole-version 2.3.1
  fole-backup restore 3f2a9c1e --target /srv/drill/fole --confirm 3f2a9c1e-… \\
      --fole-version 2.3.1 --modules maps,sketch --json      # a restore drill
  fole-backup restore 3f2a9c1e --target /tmp/p1 --include projects/p1 --exclude '*.png' \\
      --confirm 3f2a9c1e-… --fole-version 2.3.1               # one project, without its tiles`,
    )
    .action(function (this: Command, ref: string) {
      const flags = this.opts<RestoreFlags>();
      return run(async (ctx) => {
        const target = flags.target as string;
        if (target === '') throw new UsageError('--target is empty');
        const { givenFoleVersion } = await import('../../snapshot/fields.js');
        const foleVersion = givenFoleVersion(flags.foleVersion, process.env.FOLE_VERSION);
        const modules = parseModules(flags.modules);
        let storageLockWaitMs: number | undefined;
        if (flags.storageLockWait !== undefined)
          storageLockWaitMs = parseSeconds('--storage-lock-wait', flags.storageLockWait, { max: 86_400 });
        const { restore } = await import('../../restore/restore.js');
        const { assertTargetAsApproved, restoreApprovalPlan } = await import('../../restore/approval-plan.js');
        const repo = await ctx.openRepo(flags.dryRun === true ? 'restore-preview' : 'restore');
        try {
          const chosen = { include: flags.include, exclude: flags.exclude };
          const common = {
            ...chosen,
            target,
            confirm: flags.confirm,
            foleVersion,
            modules,
            reporter: ctx.reporter,
            storageLockWaitMs,
            signal: ctx.interruptible(),
            onSwap: () => ctx.finishing('the swap of the restored tree into place'),
          };
          if (flags.dryRun !== true && ctx.trust().approvalsRequired > 0) {
            // an agent's restore: plan, ask for (or use) a human's approval of exactly this plan, then run it
            const { plan, summary } = await restoreApprovalPlan(repo, ref, { target, foleVersion, modules, ...chosen });
            await approvalStep(ctx, repo, 'restore', { plan, summary }, flags.request);
            const r = await restore(repo, plan.backupId, {
              ...common,
              target: plan.target,
              confirm: plan.backupId,
              dryRun: false,
              beforeLock: () => assertTargetAsApproved(plan, false),
              underLock: () => assertTargetAsApproved(plan, true),
            });
            ctx.reporter.stop();
            ctx.out.report(r, () => describeRestore(r));
          } else if (flags.dryRun === true) {
            const plan = await restore(repo, ref, { ...common, dryRun: true });
            ctx.reporter.stop();
            ctx.out.result({ dryRun: true, ...plan }, () =>
              describePlan(plan, { foleVersion, modules: flags.modules, ...chosen }),
            );
          } else {
            const r = await restore(repo, ref, { ...common, dryRun: false });
            ctx.reporter.stop();
            ctx.out.report(r, () => describeRestore(r));
          }
        } finally {
          ctx.reporter.stop();
          await repo.close();
        }
      });
    });
}
