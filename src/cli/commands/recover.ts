import type { Command } from 'commander';
import type { RecoverResult } from '../../restore/recover.js';
import { UsageError } from '../output.js';
import type { Runner } from '../context.js';

function describeRecover(r: RecoverResult): string {
  const lines = [`${r.action === 'none' ? 'nothing to do' : r.action}: ${r.detail}`];
  if (r.action === 'completed' && r.previousTree) {
    lines.push(
      `  once FOLE runs well on the restored tree, discard the previous one: rm -rf '` +
        `${r.previousTree.replace(/'/g, `'\\''`)}'`,
    );
  }
  if (r.action === 'rolled-back' && r.backupId !== undefined) lines.push('  run the restore again when ready');
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

export function registerRecover(program: Command, run: Runner): void {
  program
    .command('recover')
    .description('finish or roll back a restore that was interrupted (killed, crashed, power lost)')
    .requiredOption('-t, --target <dir>', 'the target of the interrupted restore')
    .addHelpText(
      'after',
      `
A restore keeps a journal beside its target. Until the live tree has been renamed
aside, recovery rolls back: the staging directory is removed and the target is as
it was. From that rename on (the new tree was complete and verified by then),
recovery completes the swap; the previous tree stays kept beside the target.
If what is on disk does not match the journal, it changes nothing and STOPs
(exit 3). The next \`fole-backup restore\` onto the same target does this first.
No repository or password is needed.

Example:
  fole-backup recover --target /srv/fole --json`,
    )
    .action(function (this: Command) {
      const { target } = this.opts<{ target: string }>();
      return run(async (ctx) => {
        if (target === '') throw new UsageError('--target is empty');
        const { recover } = await import('../../restore/recover.js');
        const r = await recover(target, { reporter: ctx.reporter });
        ctx.reporter.stop();
        ctx.out.report(r, () => describeRecover(r));
      });
    });
}
