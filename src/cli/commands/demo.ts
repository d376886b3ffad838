/**
 * `fole-backup demo` (what `npm start` runs): on first use, create a demo
 * STORAGE_ROOT and a local repository with a generated key file under
 * ./.fole-demo/, then take a full backup and print its summary.
 */
import { access, readFile, rename, rm } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { fsError } from '../../errors.js';
import { describeBackup, runBackup } from './backup.js';
import { generateKeyFile } from './init.js';
import { makeContext, type Runner } from '../context.js';

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

export function registerDemo(program: Command, run: Runner): void {
  program
    .command('demo')
    .description('create a demo STORAGE_ROOT and repository under ./.fole-demo/ (if absent) and back it up')
    .option('--dir <dir>', 'where the demo lives', '.fole-demo')
    .action(function (this: Command) {
      const { dir } = this.opts<{ dir: string }>();
      return run(async (ctx) => {
        const base = resolve(dir);
        const storage = join(base, 'storage');
        const repoDir = join(base, 'repo');
        const keyFile = join(base, 'key');
        await mkdir(base, { recursive: true }).catch((err: unknown) => {
          throw fsError('write', base, err);
        });
        if (!(await exists(storage))) {
          ctx.out.info(`creating a demo STORAGE_ROOT at ${storage}`);
          // generate beside it and rename, so an interrupted run never leaves half a tree under the real name
          const partial = join(base, `.storage-partial-${process.pid}`);
          const { generateStorageRoot, PRESETS } = await import('../../demo/generate-storage-root.js');
          await rm(partial, { recursive: true, force: true });
          await generateStorageRoot(partial, PRESETS.demo, { withSymlink: true });
          await rename(partial, storage);
        }
        if (!(await exists(repoDir))) {
          ctx.out.info(`creating a repository at ${repoDir} with a generated key file ${keyFile}`);
          await rm(keyFile, { force: true });
          const secret = await generateKeyFile(keyFile);
          const { initRepository } = await import('../../repository/open-repository.js');
          const repo = await initRepository(repoDir, secret);
          await repo.close();
        }
        const password = (await readFile(keyFile, 'utf8')).trim();
        const demoCtx = makeContext({ ...ctx.flags, repo: repoDir, actor: ctx.flags.actor ?? 'demo@fole-backup' });
        demoCtx.password = async () => password;
        let r: Awaited<ReturnType<typeof runBackup>>;
        try {
          r = await runBackup(demoCtx, { storageRoot: storage, foleVersion: '1.0.0' });
        } catch (error) {
          await demoCtx.finish({ error });
          throw error;
        }
        await demoCtx.finish({ result: r });
        // how this very CLI was started: installed as `fole-backup`, or from a checkout (npm start)
        const script = process.argv[1] ?? '';
        const cli =
          basename(script) === 'fole-backup' ? 'fole-backup' : `node ${relative(process.cwd(), script) || script}`;
        const flags = `--repo ${relative(process.cwd(), repoDir)} --password-file ${relative(process.cwd(), keyFile)}`;
        ctx.out.result(r, () =>
          [
            describeBackup(r),
            '',
            'Try next:',
            `  ${cli} list ${flags}`,
            `  ${cli} manifest latest ${flags}`,
            `  ${cli} verify latest --read-data ${flags}`,
            `  ${cli} restore latest --target /tmp/fole-restored --fole-version 1.0.0 --dry-run ${flags}`,
          ].join('\n'),
        );
      });
    });
}
