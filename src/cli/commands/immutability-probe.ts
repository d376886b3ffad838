import type { Command } from 'commander';
import type { ImmutabilityReport } from '../../backend/backend.js';
import type { Runner } from '../context.js';

export function registerImmutabilityProbe(program: Command, run: Runner): void {
  program
    .command('immutability-probe')
    .description(
      'test whether the storage at --repo really refuses to delete backups: its Object Lock configuration, then a ' +
        'canary object (with retention only where Object Lock is proved) and an attempt to delete it; exit 1 when ' +
        'it is not immutable. No password is needed',
    )
    .addHelpText(
      'after',
      `
The canary is a small object under <prefix>/.probes/; where Object Lock is enabled it is
kept under COMPLIANCE retention for one day and cannot be removed before then.

Example:
  fole-backup immutability-probe --repo s3:https://s3.example.com/fole-backups --json`,
    )
    .action(() =>
      run(async (ctx) => {
        const backend = await ctx.openBackend();
        let report: ImmutabilityReport;
        try {
          report =
            backend.probeImmutability === undefined
              ? {
                  immutable: false,
                  objectLock: false,
                  versioning: 'unknown',
                  canary: null,
                  findings: ['a directory: anyone who can write to it can delete the backups'],
                }
              : await backend.probeImmutability();
        } finally {
          await backend.close();
        }
        ctx.out.result({ repository: backend.location, ...report }, () =>
          [
            `${backend.location}: ${report.immutable ? 'IMMUTABLE' : 'NOT immutable'}`,
            ...report.findings.map((f) => `  ${f}`),
          ].join('\n'),
        );
        if (!report.immutable) process.exitCode = 1;
      }),
    );
}
