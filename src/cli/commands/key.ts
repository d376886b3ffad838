import type { Command } from 'commander';
import { addKey, listKeys, removeKey } from '../../repository/keys.js';
import { UsageError } from '../output.js';
import type { Runner } from '../context.js';
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

export function registerKey(program: Command, run: Runner): void {
  const key = program.command('key').description('manage the key files (passwords) that open the repository');
  key
    .command('list')
    .description('list key files; the one in use is marked *, a damaged one ! (remove it with `key remove`)')
    .action(() =>
      run(async (ctx) => {
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
                : `${k.current ? '*' : ' '} ${name}  ${k.createdAt}  ${k.username}@${k.host}`;
            })
            .join('\n'),
        );
      }),
    );
  key
    .command('add')
    .description('add a key file for the same repository (another person or machine)')
    .option('--new-password-file <file>', 'read the new password from a file')
    .option('--generate-key-file <file>', 'write a new random key to <file> (mode 0600) and add it')
    .action(function (this: Command) {
      const opts = this.opts<{ newPasswordFile?: string; generateKeyFile?: string }>();
      return run(async (ctx) => {
        if ((opts.newPasswordFile === undefined) === (opts.generateKeyFile === undefined)) {
          throw new UsageError('give exactly one of --new-password-file or --generate-key-file');
        }
        const repo = await ctx.openRepo('key-add');
        let secret: string;
        if (opts.generateKeyFile !== undefined) secret = await generateKeyFile(opts.generateKeyFile);
        else secret = await readPasswordFile(opts.newPasswordFile as string);
        const name = await addKey(repo, secret);
        ctx.out.report({ added: name }, () => `added key ${name.slice(0, 16)}`);
      });
    });
  key
    .command('remove')
    .argument('<key>', 'the key file name or a unique prefix (at least 8 characters)')
    .description('remove a key file (not the one in use, never the last one)')
    .action((ref: string) =>
      run(async (ctx) => {
        const repo = await ctx.openRepo('key-remove');
        const name = await removeKey(repo, ref);
        ctx.out.report({ removed: name }, () => `removed key ${name.slice(0, 16)}`);
      }),
    );
}
