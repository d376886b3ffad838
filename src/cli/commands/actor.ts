import type { Command } from 'commander';
import { Option } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { errnoCode, fsError } from '../../errors.js';
import type { Envelope } from '../../trust/envelope.js';
import type { LeaveOutcome } from '../../trust/actors.js';
import {
  isPermission,
  PERMISSION_NAMES,
  PROJECT_ID_RE,
  ROLE_NAMES,
  type Permission,
  type Role,
} from '../../trust/permissions.js';
import type { RegistryAction } from '../../trust/registry.js';
import type { Context, Runner } from '../context.js';
import { UsageError } from '../output.js';
import { askNew } from '../prompt.js';

/** Checked before anything is opened: a typo costs no password prompt. */
export async function checkActorName(flag: string, name: string): Promise<string> {
  const { ACTOR_NAME_RE } = await import('../../trust/registry.js');
  if (!ACTOR_NAME_RE.test(name)) {
    throw new UsageError(
      `${flag} ${JSON.stringify(name.slice(0, 80))} is not an actor name`,
      'use letters, digits and . _ @ + - (at most 64, starting with a letter or digit)',
    );
  }
  return name;
}

function checkPermission(p: string): Permission {
  if (!isPermission(p)) {
    throw new UsageError(
      `unknown permission ${JSON.stringify(p.slice(0, 80))}`,
      `one of: ${PERMISSION_NAMES.join(', ')}`,
    );
  }
  return p;
}

function checkProject(p: string | undefined): string | undefined {
  if (p !== undefined && !PROJECT_ID_RE.test(p)) {
    throw new UsageError(`--project ${JSON.stringify(p.slice(0, 80))} is not a project id`);
  }
  return p;
}

async function change(
  ctx: Context,
  op: 'actor-add' | 'actor-remove' | 'actor-grant' | 'actor-revoke',
  action: RegistryAction,
) {
  const { changeRegistry } = await import('../../trust/actors.js');
  const { defaultStateDir } = await import('../../trust/trust-state.js');
  const repo = await ctx.openRepo(op);
  try {
    const next = await changeRegistry(repo, ctx.trust(), await ctx.credentials(), action, defaultStateDir());
    return { repo, next };
  } finally {
    await repo.close();
  }
}

export function registerActor(program: Command, run: Runner): void {
  const actor = program
    .command('actor')
    .description('who may do what: actor keys, and the registry of actors and their permissions')
    .addHelpText(
      'after',
      `
A repository without an actor registry is in single-operator mode: whoever holds
the repository password is sysadmin. With a registry, every command says who runs
it (--actor NAME --actor-key FILE) and needs the permission for what it does.

Roles: ${ROLE_NAMES.join(', ')}. Permissions: ${PERMISSION_NAMES.join(', ')}.
See docs/TRUST.md.

Getting started:
  fole-backup actor keygen --out ~/.config/fole-backup/alice.key
  fole-backup actor bootstrap --admin alice --admin-public-key ~/.config/fole-backup/alice.key.pub
  fole-backup actor add ops-bot --kind agent --role operator --public-key bot.key.pub \\
      --actor alice --actor-key ~/.config/fole-backup/alice.key`,
    );

  actor
    .command('keygen')
    .description('make an Ed25519 key pair: the private key to --out (mode 0600), the public key to --out.pub')
    .requiredOption('--out <file>', 'where to write the private key (never overwritten)')
    .option(
      '--passphrase',
      'encrypt the private key with a passphrase ($FOLE_BACKUP_ACTOR_KEY_PASSPHRASE, or asked twice on a terminal)',
    )
    .action(function (this: Command) {
      const opts = this.opts<{ out: string; passphrase?: boolean }>();
      return run(async (ctx) => {
        const passphrase =
          opts.passphrase === true
            ? await askNew('FOLE_BACKUP_ACTOR_KEY_PASSPHRASE', 'passphrase for the new actor key')
            : undefined;
        const { generateActorKey } = await import('../../trust/actor-key.js');
        const { writeActorKeyFiles } = await import('../../trust/actor-key-file.js');
        const key = generateActorKey(passphrase);
        await writeActorKeyFiles(opts.out, key);
        ctx.out.result(
          { privateKey: opts.out, publicKey: `${opts.out}.pub`, fingerprint: key.fingerprint },
          () =>
            `wrote the private key ${opts.out} (mode 0600, ${passphrase === undefined ? 'unencrypted' : 'encrypted'})` +
            ` and the public key ${opts.out}.pub\nfingerprint ${key.fingerprint}\n` +
            'give the .pub file to a sysadmin to register; the private key never leaves you',
        );
      });
    });

  actor
    .command('bootstrap')
    .description('give a repository without one its actor registry, with a first (human) sysadmin; once')
    .requiredOption('--admin <name>', 'the first sysadmin')
    .requiredOption('--admin-public-key <file>', "the sysadmin's public key (FILE.pub from `actor keygen`)")
    .action(function (this: Command) {
      const opts = this.opts<{ admin: string; adminPublicKey: string }>();
      return run(async (ctx) => {
        const name = await checkActorName('--admin', opts.admin);
        const { readPublicKeyFile } = await import('../../trust/actor-key-file.js');
        const { bootstrapRegistry } = await import('../../trust/actors.js');
        const { defaultStateDir } = await import('../../trust/trust-state.js');
        const publicKey = await readPublicKeyFile(opts.adminPublicKey);
        const repo = await ctx.openRepo('actor-bootstrap');
        try {
          const state = await bootstrapRegistry(repo, { name, publicKey }, defaultStateDir());
          ctx.out.result({ trustId: state.trustId, sysadmin: name }, () => describeBootstrap(name, state.trustId));
        } finally {
          await repo.close();
        }
      });
    });

  actor
    .command('add')
    .argument('<name>', 'the new actor (letters, digits, . _ @ + -)')
    .description('register an actor (as a sysadmin)')
    .addOption(new Option('--kind <kind>', 'a person or an AI agent').choices(['human', 'agent']).makeOptionMandatory())
    .addOption(new Option('--role <role>', 'what it may do everywhere').choices(ROLE_NAMES).makeOptionMandatory())
    .requiredOption('--public-key <file>', "the actor's public key (FILE.pub from `actor keygen`)")
    .action(function (this: Command, name: string) {
      const opts = this.opts<{ kind: 'human' | 'agent'; role: Role; publicKey: string }>();
      return run(async (ctx) => {
        await checkActorName('actor', name);
        const { readPublicKeyFile } = await import('../../trust/actor-key-file.js');
        const publicKey = await readPublicKeyFile(opts.publicKey);
        await change(ctx, 'actor-add', { op: 'add', actor: { name, kind: opts.kind, role: opts.role, publicKey } });
        ctx.out.report(
          { added: name, kind: opts.kind, role: opts.role },
          () => `added ${opts.kind} ${name}, role ${opts.role}`,
        );
      });
    });

  actor
    .command('remove')
    .argument('<name>', 'the actor to remove (its name is never reused)')
    .description('remove an actor (as a sysadmin); the last sysadmin cannot be removed')
    .action((name: string) =>
      run(async (ctx) => {
        await checkActorName('actor', name);
        await change(ctx, 'actor-remove', { op: 'remove', name });
        ctx.out.report({ removed: name }, () => `removed ${name}`);
      }),
    );

  for (const verb of ['grant', 'revoke'] as const) {
    actor
      .command(verb)
      .argument('<name>', 'the actor')
      .argument('<permission>', `one of: ${PERMISSION_NAMES.join(', ')}`)
      .description(
        verb === 'grant'
          ? 'give an actor a permission beyond its role, everywhere or on one project (as a sysadmin)'
          : 'take back a permission given with `actor grant` (as a sysadmin)',
      )
      .option('--project <id>', 'only on this FOLE project')
      .action(function (this: Command, name: string, permission: string) {
        const opts = this.opts<{ project?: string }>();
        return run(async (ctx) => {
          await checkActorName('actor', name);
          const { describeGrant } = await import('../../trust/registry.js');
          const p = checkPermission(permission);
          const project = checkProject(opts.project);
          const grant = project === undefined ? { permission: p } : { permission: p, project };
          await change(ctx, verb === 'grant' ? 'actor-grant' : 'actor-revoke', { op: verb, name, ...grant });
          ctx.out.report({ [verb === 'grant' ? 'granted' : 'revoked']: grant, actor: name }, () =>
            verb === 'grant'
              ? `granted ${describeGrant(grant)} to ${name}`
              : `revoked ${describeGrant(grant)} from ${name}`,
          );
        });
      });
  }

  actor
    .command('leave')
    .description('leave registry mode (back to single-operator mode): an entry every sysadmin signs')
    .option('--out <file>', 'start: sign a proposal and write it to <file> for the other sysadmins to sign')
    .option('--cosign <file>', 'add your signature to the proposal in <file>; the last signature applies it')
    .addHelpText(
      'after',
      `
Every sysadmin active now signs one registry entry; once the last one has, it is
appended: every actor is removed and whoever holds the repository password is
sysadmin again. The registry's history stays (the audit log still verifies, and a
machine that pinned it still refuses an older one); \`actor bootstrap\` later starts
registry mode again with a new first sysadmin (names and keys are never reused).
A proposal is only valid for the registry as it is now: any change voids it.

  fole-backup actor leave --out leave.json --actor alice --actor-key alice.key
  fole-backup actor leave --cosign leave.json --actor bob --actor-key bob.key`,
    )
    .action(function (this: Command) {
      const opts = this.opts<{ out?: string; cosign?: string }>();
      return run(async (ctx) => {
        if (opts.out !== undefined && opts.cosign !== undefined)
          throw new UsageError('give --out or --cosign, not both');
        const proposal = opts.cosign === undefined ? undefined : await readProposal(opts.cosign);
        const { leaveRegistry } = await import('../../trust/actors.js');
        const { defaultStateDir } = await import('../../trust/trust-state.js');
        const { writeFileAtomic } = await import('../../fs/durable.js');
        const repo = await ctx.openRepo('actor-leave');
        let outcome: LeaveOutcome;
        try {
          outcome = await leaveRegistry(repo, ctx.trust(), await ctx.credentials(), proposal, defaultStateDir());
        } finally {
          await repo.close();
        }
        if (outcome.left) {
          ctx.out.result(
            { left: true, seq: outcome.state.head.seq },
            () =>
              `left registry mode (registry entry ${outcome.state.head.seq}): single-operator mode, whoever holds ` +
              'the repository password is sysadmin',
          );
          return;
        }
        const file = opts.cosign ?? opts.out;
        if (file === undefined) {
          throw new UsageError(
            `leaving registry mode needs the signature of every sysadmin; still to sign: ${outcome.missing.join(', ')}`,
            'start a proposal with --out FILE and hand FILE to each of them (`actor leave --cosign FILE`)',
          );
        }
        const text = `${JSON.stringify(outcome.proposal, null, 2)}\n`;
        if (opts.cosign !== undefined) await writeFileAtomic(file, Buffer.from(text));
        else await writeNew(file, text);
        ctx.out.result(
          { left: false, proposal: file, missing: outcome.missing },
          () =>
            `signed; ${file} still needs the signature of ${outcome.missing.join(', ')} (actor leave --cosign ${file})`,
        );
      });
    });

  actor
    .command('list')
    .description('list registered actors, their roles and grants (removed ones marked)')
    .action(() =>
      run(async (ctx) => {
        const { listActors } = await import('../../trust/actors.js');
        const { describeGrant } = await import('../../trust/registry.js');
        const repo = await ctx.openRepo('actor-list');
        try {
          const trust = ctx.trust();
          if (trust.registry === undefined) {
            ctx.out.result({ mode: 'single-operator', actors: [] }, () =>
              [
                'no actor registry: single-operator mode (whoever holds the repository password is sysadmin)',
                'make one with `fole-backup actor bootstrap --admin NAME --admin-public-key FILE`',
              ].join('\n'),
            );
            return;
          }
          const l = listActors(trust.registry);
          const left = trust.registry.leftAt;
          ctx.out.result({ mode: trust.mode, trustId: trust.registry.trustId, leftAt: left ?? null, ...l }, () =>
            [
              ...(left === undefined
                ? []
                : [
                    `left registry mode at registry entry ${left}: single-operator mode (whoever holds the ` +
                      'repository password is sysadmin); the actors of before:',
                  ]),
              ...l.actors.map(
                (a) =>
                  `${a.removed ? '-' : ' '} ${a.name.padEnd(20)} ${a.kind.padEnd(6)} ${a.role.padEnd(9)} ` +
                  `${a.fingerprint.slice(0, 16)}  added ${a.addedAt} by ${a.addedBy}` +
                  (a.grants.length > 0 ? `\n      grants: ${a.grants.map(describeGrant).join(', ')}` : '') +
                  (a.removed ? '  (removed)' : ''),
              ),
              ...(left === undefined ? [`sysadmins: ${l.sysadmins.join(', ')}`] : []),
            ].join('\n'),
          );
        } finally {
          await repo.close();
        }
      }),
    );
}

/** A proposal file from `actor leave --out` (a signed envelope; the registry checks what it says). */
async function readProposal(file: string): Promise<Envelope> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw fsError('read', file, err);
  }
  let v: unknown;
  try {
    v = text.length <= 1_000_000 ? JSON.parse(text) : undefined;
  } catch {
    v = undefined;
  }
  const { isEnvelope } = await import('../../trust/envelope.js');
  if (!isEnvelope(v)) throw new UsageError(`${file} is not a proposal from \`actor leave --out\``);
  return v;
}

async function writeNew(file: string, text: string): Promise<void> {
  try {
    await writeFile(file, text, { flag: 'wx' });
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') throw new UsageError(`${file} already exists; it is never overwritten`);
    throw fsError('write', file, err);
  }
}

/** What `init --admin` and `actor bootstrap` print. */
export function describeBootstrap(name: string, trustId: string): string {
  return (
    `actor registry ${trustId} made; ${name} is its first sysadmin\n` +
    'from now on every command needs --actor NAME --actor-key FILE, and this machine refuses an older registry'
  );
}
