import type { Command } from 'commander';
import type { CopyReport } from '../../copy/copy.js';
import type { Runner } from '../context.js';
import { formatBytes, formatDuration, UsageError } from '../output.js';
import { openOtherRepository, otherPassword, type OtherRepository } from '../other-repo.js';

interface CopyFlags {
  fromRepo: string;
  toRepo?: string;
  fromPasswordFile?: string;
  readData?: boolean;
}

const SOURCE: OtherRepository = {
  role: 'source',
  passwordFlag: '--from-password-file',
  envPrefix: 'FOLE_BACKUP_FROM',
};

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;
const entries = (n: number, what: string): string => `${n} ${what} ${n === 1 ? 'entry' : 'entries'}`;

function describeCopy(r: CopyReport): string {
  const lines = [
    `copied ${plural(r.copied.length, 'backup')} from ${r.from.repository} to ${r.to.repository} in ` +
      `${formatDuration(r.durationMs)}: ${plural(r.blobsCopied, 'blob')}, ${formatBytes(r.bytesCopied)} ` +
      `at ${formatBytes(Math.round(r.bytesCopied / Math.max(0.001, r.durationMs / 1000)))}/s ` +
      `(${formatBytes(r.bytesWritten)} written in ${plural(r.packsWritten, 'pack')}; ` +
      `${r.blobsPresent} of ${r.blobsNeeded} blobs were there already)`,
    ...r.copied.map(
      (c) => `  copied   ${c.backupId}  ${c.createdAt}  ${plural(c.blobs, 'new blob')}, ${formatBytes(c.bytes)}`,
    ),
    ...r.skipped.map((id) => `  skipped  ${id}  (the target has it)`),
    ...r.damaged.map((id) => `  damaged  ${id}  (unreadable in the source, not copied; \`fole-backup list\` says why)`),
  ];
  const v = r.verified;
  lines.push(
    `verified: ${plural(v.backups, 'backup')} open with the target's key; ${v.blobs} blob references found in ` +
      `its index files` +
      (v.packsRead > 0 || r.packsWritten === 0
        ? v.packsRead > 0
          ? `; ${plural(v.packsRead, 'pack')} read back, ${v.blobsRead} blobs decrypted and hashed`
          : ''
        : ' (--read-data reads back every pack written)'),
  );
  const t = r.trail;
  lines.push(
    `audit trail of ${t.origin}: ${entries(t.auditEntries.carried, 'audit')} and ` +
      `${entries(t.registryEntries.carried, 'registry')} carried ` +
      `(the target holds ${t.auditEntries.total} and ${t.registryEntries.total}; ` +
      `\`fole-backup audit verify --origin ${t.origin}\` checks them)`,
  );
  return lines.join('\n');
}

export function registerCopy(program: Command, run: Runner): void {
  program
    .command('copy')
    .description(
      'copy backups to a second repository (an offsite copy): the snapshots and exactly the data they need ' +
        'that it lacks, re-encrypted with its key',
    )
    .argument('[backups...]', 'backups to copy: ids, unique prefixes (8+ characters) or `latest` (default: all)')
    .requiredOption('--from-repo <location>', 'the repository to copy from (read only)')
    .option('--to-repo <location>', 'the repository to copy to (default: --repo / FOLE_BACKUP_REPO)')
    .option(
      '--from-password-file <file>',
      "read the source repository's password from a file (default: $FOLE_BACKUP_FROM_PASSWORD_FILE, else " +
        '$FOLE_BACKUP_FROM_PASSWORD)',
    )
    .option('--read-data', 'after copying, read back every pack written and decrypt and hash every blob in it')
    .addHelpText(
      'after',
      `
What is copied: each backup named (all of the source's by default) that the
target does not hold yet, with every tree and content blob it needs that the
target's index lacks. Blobs are decrypted with the source's key, checked against
their ids and sealed with the target's key; the two repositories have their own
passwords. The target's password comes from the usual options (--password-file,
FOLE_BACKUP_PASSWORD_FILE, FOLE_BACKUP_PASSWORD); the source's from
--from-password-file, FOLE_BACKUP_FROM_PASSWORD_FILE or FOLE_BACKUP_FROM_PASSWORD.

The source's actor registry and audit log are carried too, only the entries the
target lacks, under the source's repository id: read and verify them on the
target with \`audit log --origin ID\` and \`audit verify --origin ID\`. They give
nobody any right in the target. A source whose log was cut back or rewritten
since the last copy is the STOP TRUST_BROKEN, before anything is written.

Resumable: data goes first, then the index, and each backup's snapshot last, so
a copy cut off at any instant leaves the target valid (at worst unreferenced
packs, which prune removes); run the same command again and it carries on
without copying again what already arrived. Ends by checking what it wrote.

Examples:
  fole-backup init --repo sftp://backup@offsite.example/srv/fole --from-repo /srv/backups/fole
  fole-backup copy --from-repo /srv/backups/fole --to-repo sftp://backup@offsite.example/srv/fole
  fole-backup copy 3f2a9c1e latest --from-repo /srv/backups/fole --to-repo s3:https://s3.example/bucket/fole \\
      --read-data`,
    )
    .action(function (this: Command, backups: string[]) {
      const flags = this.opts<CopyFlags>();
      return run(async (ctx) => {
        if (flags.toRepo !== undefined) {
          if (ctx.flags.repo !== undefined && ctx.flags.repo !== flags.toRepo) {
            throw new UsageError('--to-repo and --repo name different repositories', 'give one of them');
          }
          ctx.flags.repo = flags.toRepo;
        }
        ctx.repoLocation();
        // the source opens first: a wrong source password stops the command before the target is touched
        const password = await otherPassword(flags.fromPasswordFile, SOURCE);
        const from = await openOtherRepository(await ctx.openBackend({}, flags.fromRepo), password, SOURCE);
        let report: CopyReport;
        try {
          const { copyBackups } = await import('../../copy/copy.js');
          const { openGate } = await import('../../trust/gate.js');
          const { defaultStateDir } = await import('../../trust/trust-state.js');
          const to = await ctx.openRepo('copy-to');
          // the source's gate is asked once the target is open, so a refusal there is in the target's audit log
          const copying = openGate(
            from,
            await ctx.credentials(),
            'copy-from',
            {},
            { stateDir: defaultStateDir() },
          ).then(() =>
            copyBackups(from, to, {
              backupIds: backups,
              readData: flags.readData === true,
              reporter: ctx.reporter,
              signal: ctx.interruptible(),
            }),
          );
          report = await copying.finally(async () => {
            ctx.reporter.stop();
            await to.close();
          });
        } finally {
          await from.close();
        }
        ctx.out.report(report, () => describeCopy(report));
      });
    });
}
