import type { Command } from 'commander';
import { printable } from '../../snapshot/validate.js';
import { UsageError } from '../output.js';
import type { Context, Runner } from '../context.js';
import type { Repository } from '../../repository/repository.js';
import { readPasswordFile } from '../password-file.js';
import { generateKeyFile } from './init.js';

/**
 * A key's name cut as short as it can be while still naming it alone among
 * `all` (16 characters at least): a planted key file can be named to share a
 * long prefix with another, and `key remove` must be able to tell them apart.
 */
function shortestUnique(name: string, all: readonly string[]): string {
  let n = 16;
  while (n < name.length && all.some((o) => o !== name && o.startsWith(name.slice(0, n)))) n++;
  return name.slice(0, n);
}

interface NewSecretFlags {
  newPasswordFile?: string;
  generateKeyFile?: string;
  label?: string;
}

/**
 * `key add` and `key passwd`: where the new secret comes from (exactly one of a password file or a generated key
 * file), the key's label, and the work done with them on the opened repository.
 */
function newSecretCommand(
  cmd: Command,
  run: Runner,
  op: 'key-add' | 'key-passwd',
  work: (ctx: Context, repo: Repository, secret: string, label: string | undefined) => Promise<void>,
): void {
  cmd
    .option('--new-password-file <file>', 'read the new password from a file')
    .option('--generate-key-file <file>', 'write a new random key to <file> (mode 0600) and use it')
    .option('--label <text>', 'what the key is for, shown by `key list` (e.g. "alice laptop"; 100 characters at most)')
    .action(function (this: Command) {
      const opts = this.opts<NewSecretFlags>();
      return run(async (ctx) => {
        if ((opts.newPasswordFile === undefined) === (opts.generateKeyFile === undefined)) {
          throw new UsageError('give exactly one of --new-password-file or --generate-key-file');
        }
        const repo = await ctx.openRepo(op);
        const secret =
          opts.generateKeyFile !== undefined
            ? await generateKeyFile(opts.generateKeyFile)
            : await readPasswordFile(opts.newPasswordFile as string);
        await work(ctx, repo, secret, opts.label);
      });
    });
}

export function registerKey(program: Command, run: Runner): void {
  const key = program.command('key').description('manage the key files (passwords) that open the repository');
  key
    .command('list')
    .description('list key files; the one in use is marked *, a damaged one ! (remove it with `key remove`)')
    .action(() =>
      run(async (ctx) => {
        const { listKeys } = await import('../../repository/keys.js');
        const repo = await ctx.openRepo('key-list');
        const keys = await listKeys(repo);
        ctx.out.result(keys, () =>
          keys
            .map((k) => {
              const name = shortestUnique(
                k.name,
                keys.map((o) => o.name),
              );
              return k.damaged !== undefined
                ? `! ${name}  DAMAGED: ${k.damaged}`
                : `${k.current ? '*' : ' '} ${name}  ${k.createdAt}  ${k.username}@${k.host}` +
                    (k.label === undefined ? '' : `  ${printable(k.label)}`);
            })
            .join('\n'),
        );
      }),
    );
  newSecretCommand(
    key.command('add').description('add a key file for the same repository (another person or machine)'),
    run,
    'key-add',
    async (ctx, repo, secret, label) => {
      const { addKey } = await import('../../repository/keys.js');
      const name = await addKey(repo, secret, label);
      ctx.out.report({ added: name }, () => `added key ${name.slice(0, 16)}`);
    },
  );
  newSecretCommand(
    key
      .command('passwd')
      .description('change the password of the key in use: a key file for the new one replaces it (its label is kept)'),
    run,
    'key-passwd',
    async (ctx, repo, secret, label) => {
      const { changePassword } = await import('../../repository/keys.js');
      const r = await changePassword(repo, secret, label);
      ctx.out.report(
        r,
        () =>
          `key ${r.removed.slice(0, 16)} replaced by ${r.added.slice(0, 16)}: ` +
          'only the new password (or key file) opens the repository now',
      );
    },
  );
  key
    .command('remove')
    .argument('<key>', 'the key file name or a unique prefix (at least 8 characters)')
    .description('remove a key file (not the one in use, never the last one)')
    .action((ref: string) =>
      run(async (ctx) => {
        const { removeKey } = await import('../../repository/keys.js');
        const repo = await ctx.openRepo('key-remove');
        const name = await removeKey(repo, ref);
        ctx.out.report({ removed: name }, () => `removed key ${name.slice(0, 16)}`);
      }),
    );
}
