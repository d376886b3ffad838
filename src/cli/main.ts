#!/usr/bin/env node
/**
 * The `fole-backup` command: a thin layer over the library. Global flags,
 * one file per command, and the one place where errors become exit codes:
 * 0 ok · 1 error · 2 usage · 3 STOP (a human must decide).
 */
import { Command, CommanderError } from 'commander';
import { makeContext, signalExitCode, type GlobalFlags, type Runner } from './context.js';
import { EXIT, reportError, UsageError } from './output.js';
import { handleClosedPipes } from './closed-pipes.js';
// A command file registers its command with commander and imports the library code it runs with import() inside
// its action: a command loads only what it runs, so every command (and --help) starts fast.
import { registerBackup } from './commands/backup.js';
import { registerBrowse } from './commands/browse.js';
import { registerDemo } from './commands/demo.js';
import { registerForget } from './commands/forget.js';
import { registerPrune } from './commands/prune.js';
import { registerMigrationRollback } from './commands/migration-rollback.js';
import { registerKey } from './commands/key.js';
import { registerInit } from './commands/init.js';
import { registerList } from './commands/list.js';
import { registerManifest } from './commands/manifest.js';
import { registerUnlock } from './commands/unlock.js';
import { registerVerify } from './commands/verify.js';
import { registerCheck } from './commands/check.js';
import { registerRepair } from './commands/repair.js';
import { registerCopy } from './commands/copy.js';
import { registerRestore } from './commands/restore.js';
import { registerRecover } from './commands/recover.js';
import { registerActor } from './commands/actor.js';
import { registerAudit } from './commands/audit.js';
import { registerTrust } from './commands/trust.js';
import { registerApprove } from './commands/approve.js';
import { registerServeRepo } from './commands/serve-repo.js';
import { registerImmutabilityProbe } from './commands/immutability-probe.js';

export const VERSION = '0.1.0';

// More threads for Node's async file system calls (default 4): each backup file
// worker keeps 16 reads of small files in flight (src/backup/file-worker.ts), as
// a cold disk serves many readers far faster than one. Read when the pool first starts.
process.env.UV_THREADPOOL_SIZE ??= '16';

export function buildProgram(): Command {
  const program = new Command('fole-backup');
  program
    .description('Encrypted, deduplicated, point-in-time-consistent backups of a FOLE STORAGE_ROOT.')
    .version(VERSION)
    .option(
      '-r, --repo <location>',
      'repository: a directory path, local:<path>, s3:https://HOST[:PORT]/BUCKET[/PREFIX] (credentials from ' +
        'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws), sftp://USER@HOST[:PORT]/PATH, or ' +
        'rest:https://HOST:PORT/ (a `serve-repo` server); see docs/BACKENDS.md (default: $FOLE_BACKUP_REPO)',
    )
    .option(
      '--ca-cert <file>',
      'trust the CA certificate(s) in this PEM file for an https:// repository (default for s3: $AWS_CA_BUNDLE)',
    )
    .option('--insecure-http', 'allow an s3:http:// repository on a host that is not this machine (unencrypted)')
    .option(
      '--ssh-key <file>',
      'the private key an sftp:// repository logs in with (default: $FOLE_BACKUP_SSH_KEY, else ssh-agent)',
    )
    .option(
      '--ssh-known-hosts <file>',
      "known_hosts that must hold an sftp:// server's host key (default: $FOLE_BACKUP_SSH_KNOWN_HOSTS, else " +
        '~/.ssh/known_hosts)',
    )
    .option(
      '--rest-token-file <file>',
      'read the bearer token of a rest: repository from a file or pipe (default: $FOLE_BACKUP_REST_TOKEN)',
    )
    .option(
      '--password-file <file>',
      'read the repository password (or generated key) from a file or pipe, at most 64 KiB (default: ' +
        '$FOLE_BACKUP_PASSWORD_FILE)',
    )
    .option(
      '--key-hint <name>',
      'try the key file whose name starts with this first (default: $FOLE_BACKUP_KEY_HINT); needed when a ' +
        'repository has more than 20 key files',
    )
    .option(
      '--actor <name>',
      'who runs this command: a registered actor (with --actor-key) in a repository with an actor registry; ' +
        'otherwise recorded as who made a backup (default: $FOLE_BACKUP_ACTOR, else user@host)',
    )
    .option(
      '--actor-key <file>',
      "the actor's private key (from `actor keygen`), which proves --actor (default: $FOLE_BACKUP_ACTOR_KEY; " +
        'a passphrase from $FOLE_BACKUP_ACTOR_KEY_PASSPHRASE or a prompt)',
    )
    .option('--json', 'write one JSON document to stdout; human text and progress go to stderr')
    .option('-q, --quiet', 'print nothing on success but warnings and what a command is asked to show (list, --json)')
    .option('--no-progress', 'no progress bar (phases are still printed)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Password: $FOLE_BACKUP_PASSWORD, --password-file, or a prompt on a terminal.
Exit codes: 0 ok, 1 error, 2 usage, 3 STOP (the tool refuses; a human must decide),
130/143 stopped by Ctrl-C/SIGTERM (backup, restore, verify and check stop cleanly;
the same signal again quits at once).

Getting started:
  fole-backup init --repo /srv/backups/fole --generate-key-file /root/fole.key
  fole-backup backup --repo /srv/backups/fole --password-file /root/fole.key \\
      --storage-root /srv/fole --fole-version 2.3.1
  fole-backup list --repo /srv/backups/fole --password-file /root/fole.key`,
    );

  const run: Runner = async (fn) => {
    const flags = program.opts<GlobalFlags>();
    const ctx = makeContext(flags);
    let error: unknown;
    try {
      await fn(ctx);
    } catch (err) {
      error = err;
      ctx.reporter.stop();
      process.exitCode = reportError(err, flags.json === true);
      if (ctx.interruptedBy !== undefined) process.exitCode = signalExitCode(ctx.interruptedBy);
    } finally {
      // every command that opened a repository is audited, refused, failed and stopped ones too
      await ctx.finish(error === undefined ? {} : { error });
      ctx.release();
    }
  };
  registerInit(program, run);
  registerBackup(program, run);
  registerList(program, run);
  registerManifest(program, run);
  registerBrowse(program, run);
  registerUnlock(program, run);
  registerVerify(program, run);
  registerCheck(program, run);
  registerRepair(program, run);
  registerRestore(program, run);
  registerRecover(program, run);
  registerForget(program, run);
  registerPrune(program, run);
  registerCopy(program, run);
  registerMigrationRollback(program, run);
  registerKey(program, run);
  registerActor(program, run);
  registerAudit(program, run);
  registerTrust(program, run);
  registerApprove(program, run);
  registerServeRepo(program, run);
  registerImmutabilityProbe(program, run);
  registerDemo(program, run);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') {
        process.exitCode = EXIT.ok;
        return;
      }
      // commander already printed the message; add the JSON form if asked for
      if (argv.includes('--json')) reportError(new UsageError(err.message.replace(/^error: /, '')), true);
      process.exitCode = EXIT.usage;
      return;
    }
    process.exitCode = reportError(err, argv.includes('--json'));
  }
}

// a reader that stops early (`… | head`) is not an error: src/cli/closed-pipes.ts
handleClosedPipes();

await main(process.argv);
