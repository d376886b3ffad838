import type { Command } from 'commander';
import { DEFAULT_SCAN, findExposedSecrets } from '../../trust/doctor.js';
import type { Runner } from '../context.js';

export function registerTrust(program: Command, run: Runner): void {
  const trust = program.command('trust').description('checks of the trust boundary (docs/TRUST.md)');
  trust
    .command('doctor')
    .description(
      'run as the Unix user an agent runs as: name every secret it can read (exit 1 if any); the gate protects ' +
        'nothing from a user who can read the repository secret',
    )
    .option('--secret <file...>', 'files that hold secrets (password files, key files): each must be unreadable')
    .option('--scan <dir...>', `folders to search for secrets by their content (default: ${DEFAULT_SCAN.join(' ')})`)
    .addHelpText(
      'after',
      `
It looks at the environment (FOLE_BACKUP_PASSWORD, FOLE_BACKUP_PASSWORD_FILE),
at every --secret file, and for repository key files and actors' private keys
in the scanned folders (at most 5 levels deep, 50000 files). The caller's own
actor key (FOLE_BACKUP_ACTOR_KEY) is expected and not reported.

Example, as root, for an agent that runs as the user fole-agent:
  sudo -u fole-agent fole-backup trust doctor --secret /root/fole-backup.key`,
    )
    .action(function (this: Command) {
      const opts = this.opts<{ secret?: string[]; scan?: string[] }>();
      return run(async (ctx) => {
        const ownKey = ctx.flags.actorKey ?? process.env.FOLE_BACKUP_ACTOR_KEY;
        const r = await findExposedSecrets({
          env: process.env,
          secrets: opts.secret ?? [],
          scan: opts.scan ?? DEFAULT_SCAN,
          ...(ownKey === undefined || ownKey === '' ? {} : { ownKey }),
        });
        const ok = r.exposures.length === 0;
        ctx.out.result(
          { ok, secretsReadable: r.exposures, filesExamined: r.filesExamined, truncated: r.truncated },
          () =>
            [
              ok
                ? `no secret readable by this user (${r.filesExamined} files examined)`
                : `${r.exposures.length} secret${r.exposures.length === 1 ? '' : 's'} readable by this user:`,
              ...r.exposures.map((e) => `  ${e.what}${e.path === undefined ? '' : `: ${e.path}`}`),
              ...(r.truncated ? ['  (the scan stopped at 50000 files: name more places with --scan or --secret)'] : []),
              ...(ok
                ? []
                : ['an actor running as this user can bypass every permission and approval: make these unreadable']),
            ].join('\n'),
        );
        if (!ok) process.exitCode = 1;
      });
    });
}
