import type { Command } from 'commander';
import type { Runner } from '../context.js';
import { exitWhenStdoutCloses } from '../closed-pipes.js';

export function registerManifest(program: Command, run: Runner): void {
  program
    .command('manifest')
    .argument('<backup>', 'backup id (or a unique prefix of at least 8 characters) or "latest"')
    .description("print a backup's manifest.json (FOLE's backup manifest) on stdout")
    .action((ref: string) =>
      run(async (ctx) => {
        // only reads: a reader that has seen enough (`| head`) ends it
        exitWhenStdoutCloses();
        const { renderManifest } = await import('../../manifest/manifest.js');
        const { loadSnapshot, resolveBackupId } = await import('../../snapshot/store.js');
        const repo = await ctx.openRepo('manifest');
        const snap = await loadSnapshot(repo, await resolveBackupId(repo, ref));
        await renderManifest(repo, snap, (text) => {
          if (!process.stdout.write(text))
            return new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
        });
        await repo.close();
      }),
    );
}
