/**
 * What every command needs from the global flags: the repository location, the
 * password (FOLE_BACKUP_PASSWORD, --password-file / FOLE_BACKUP_PASSWORD_FILE,
 * or a prompt on a TTY), who is asking (--actor / --actor-key), output mode and
 * a progress reporter. Opening the repository passes the trust gate for the
 * command's operation (src/trust/gate.ts): no command opens one any other way.
 */
import { abortError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { InitOptions } from '../repository/repository.js';
import type { Backend } from '../backend/backend.js';
import type { BackendOptions } from '../backend/open.js';
import type { SharedBackend } from '../backend/shared.js';
import type { Outcome } from '../trust/audit-record.js';
import { makeOutput, UsageError, type Output } from './output.js';
import { readPasswordFile } from './password-file.js';
import { prompt } from './prompt.js';
import { makeProgressReporter } from './progress-bar.js';
import type { ProgressReporter } from '../progress/reporter.js';
import type { Credentials, TrustContext } from '../trust/gate.js';
import type { OperationName } from '../trust/operations.js';
import type { Scope } from '../trust/permissions.js';

export interface GlobalFlags {
  repo?: string;
  passwordFile?: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  keyHint?: string;
  actor?: string;
  actorKey?: string;
  caCert?: string;
  restTokenFile?: string;
  sshKey?: string;
  sshKnownHosts?: string;
  insecureHttp?: boolean;
}

export interface Context {
  flags: GlobalFlags;
  out: Output;
  reporter: ProgressReporter & { stop(): void };
  repoLocation(): string;
  password(opts?: { confirm?: boolean }): Promise<string>;
  /** Who is asking: --actor / FOLE_BACKUP_ACTOR and the key from --actor-key / FOLE_BACKUP_ACTOR_KEY. */
  credentials(): Promise<Credentials>;
  /**
   * Open the repository for `op`: the trust gate checks who asks and whether they may (PERMISSION_DENIED,
   * TRUST_ROLLBACK, TRUST_BROKEN are STOPs) before the command does any work.
   */
  openRepo(op: OperationName, scope?: Scope): Promise<Repository>;
  /** Create a repository at --repo (the caller holds its new secret: single-operator mode) and audit its making. */
  initRepo(password: string, opts: InitOptions, storage?: Pick<BackendOptions, 'objectLockDays'>): Promise<Repository>;
  /**
   * The backend --repo names (or `location`, a second repository), with the options the global flags give it
   * (nothing is touched yet).
   */
  openBackend(extra?: Pick<BackendOptions, 'objectLockDays'>, location?: string): Promise<Backend>;
  /** The gate's verdict for the repository openRepo opened. */
  trust(): TrustContext;
  /**
   * The command is over: append its audit entry to the repository openRepo opened (if it opened one, even if
   * the gate refused), then close that repository. Never throws: an entry that cannot be written (a read-only
   * repository) is a warning.
   */
  finish(outcome: Outcome): Promise<void>;
  /**
   * For a command that can stop cleanly: a signal that Ctrl-C (SIGINT) or
   * SIGTERM sets, so the command undoes its work in progress and ends with
   * ABORTED; the same signal again quits at once. A command that never asks
   * keeps Node's default: a signal ends it at once.
   */
  interruptible(): AbortSignal;
  /**
   * From now on the command completes rather than stops (`what` is under way):
   * a signal says so instead of promising to undo anything; a second still quits at once.
   */
  finishing(what: string): void;
  /** The signal that stopped the command, if one did. */
  readonly interruptedBy: NodeJS.Signals | undefined;
  /** Stop listening for signals (the runner calls it when the command ends). */
  release(): void;
}

const SIGNAL_NUMBER: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15 };

/** The exit status of a command stopped by `sig`: the shell's convention, 128 + its number (130 for SIGINT). */
export const signalExitCode = (sig: NodeJS.Signals): number => 128 + (SIGNAL_NUMBER[sig] ?? 0);

export function makeContext(flags: GlobalFlags): Context {
  const out = makeOutput(flags.json === true, flags.quiet === true);
  const reporter = makeProgressReporter({ enabled: flags.progress !== false, quiet: flags.quiet === true });
  let cached: string | undefined;
  let creds: Credentials | undefined;
  let trusted: TrustContext | undefined;
  /** The repository openRepo opened, for the audit entry: the gate's verdict is `trusted`. */
  let opened: { repo: Repository; backend: SharedBackend; op: OperationName; startedAt: number } | undefined;
  let lastResult: unknown;
  let stop: AbortController | undefined;
  let caught: NodeJS.Signals | undefined;
  let finishing: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    // the second one: the user wants out now (a restore left half-done is settled by `recover` or the next restore)
    if (caught !== undefined) process.exit(signalExitCode(sig));
    caught = sig;
    reporter.stop();
    process.stderr.write(
      finishing === undefined
        ? `\nfole-backup: ${sig}: stopping cleanly, undoing the work in progress (send it again to quit at once)\n`
        : `\nfole-backup: ${sig}: ${finishing} is under way and completes first (send it again to quit at once)\n`,
    );
    stop?.abort(abortError());
  };
  const ctx: Context = {
    flags,
    out: {
      ...out,
      result(value, human) {
        lastResult = value;
        out.result(value, human);
      },
      report(value, human, warnings) {
        lastResult = value;
        out.report(value, human, warnings);
      },
    },
    reporter,
    repoLocation() {
      const loc = flags.repo ?? process.env.FOLE_BACKUP_REPO;
      if (loc === undefined || loc === '') {
        throw new UsageError('no repository given', 'pass --repo <dir> or set FOLE_BACKUP_REPO');
      }
      return loc;
    },
    async password(opts = {}) {
      if (cached !== undefined) return cached;
      const file = flags.passwordFile ?? process.env.FOLE_BACKUP_PASSWORD_FILE;
      if (file !== undefined && file !== '') {
        cached = await readPasswordFile(file);
        return cached;
      }
      const env = process.env.FOLE_BACKUP_PASSWORD;
      if (env !== undefined && env !== '') {
        cached = env;
        return cached;
      }
      if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
        throw new UsageError(
          'no password given',
          'set FOLE_BACKUP_PASSWORD, pass --password-file <file> (or FOLE_BACKUP_PASSWORD_FILE), or run on a ' +
            'terminal to be asked',
        );
      }
      const first = await prompt('repository password: ');
      if (opts.confirm) {
        const again = await prompt('enter it again: ');
        if (again !== first) throw new UsageError('the two passwords differ');
      }
      if (first === '') throw new UsageError('empty password');
      cached = first;
      return cached;
    },
    async credentials() {
      if (creds !== undefined) return creds;
      const actor = nonEmpty(flags.actor) ?? nonEmpty(process.env.FOLE_BACKUP_ACTOR);
      const keyFile = nonEmpty(flags.actorKey) ?? nonEmpty(process.env.FOLE_BACKUP_ACTOR_KEY);
      if (keyFile !== undefined && actor === undefined) {
        throw new UsageError('an actor key without an actor name', 'pass --actor NAME (or set FOLE_BACKUP_ACTOR)');
      }
      let signer: Credentials['signer'];
      if (keyFile !== undefined) {
        const { readActorKeyFile } = await import('../trust/actor-key-file.js');
        signer = await readActorKeyFile(keyFile, async () => {
          const env = nonEmpty(process.env.FOLE_BACKUP_ACTOR_KEY_PASSPHRASE);
          if (env !== undefined) return env;
          if (process.stdin.isTTY !== true || process.stderr.isTTY !== true) {
            throw new UsageError(
              `actor key ${keyFile} is passphrase-protected`,
              'set FOLE_BACKUP_ACTOR_KEY_PASSPHRASE or run on a terminal to be asked',
            );
          }
          return prompt(`passphrase for actor key ${keyFile}: `);
        });
      }
      creds = { ...(actor === undefined ? {} : { actor }), ...(signer === undefined ? {} : { signer }) };
      return creds;
    },
    async openRepo(op, scope = {}) {
      ctx.repoLocation(); // no --repo is a usage error before any password is asked
      const keyHint = flags.keyHint ?? process.env.FOLE_BACKUP_KEY_HINT;
      const credentials = await ctx.credentials();
      const { SharedBackend } = await import('../backend/shared.js');
      const { openRepository } = await import('../repository/open-repository.js');
      const { openGate } = await import('../trust/gate.js');
      const { defaultStateDir } = await import('../trust/trust-state.js');
      const startedAt = Date.now();
      // the command closes its Repository when it is done; the audit entry is written after that, through the
      // same backend, which this context closes in finish()
      const backend = new SharedBackend(await ctx.openBackend());
      let repo: Repository;
      try {
        repo = await openRepository(backend, await ctx.password(), {
          reporter,
          ...(keyHint !== undefined && keyHint !== '' ? { keyHint } : {}),
        });
      } catch (err) {
        await backend.release();
        throw err;
      }
      opened = { repo, backend, op, startedAt };
      trusted = await openGate(repo, credentials, op, scope, { stateDir: defaultStateDir() });
      if (trusted.mode === 'single-operator' && credentials.signer !== undefined) {
        out.info('this repository has no actor registry (single-operator mode): the actor key was not needed');
      }
      return repo;
    },
    async initRepo(password, opts, storage = {}) {
      const { SharedBackend } = await import('../backend/shared.js');
      const { initRepository } = await import('../repository/open-repository.js');
      const { singleOperator } = await import('../trust/gate.js');
      const startedAt = Date.now();
      const backend = new SharedBackend(await ctx.openBackend(storage));
      let repo: Repository;
      try {
        repo = await initRepository(backend, password, opts);
      } catch (err) {
        await backend.release();
        throw err;
      }
      opened = { repo, backend, op: 'init', startedAt };
      trusted = singleOperator(await ctx.credentials());
      return repo;
    },
    async openBackend(extra = {}, location = undefined) {
      const { openBackend } = await import('../backend/open.js');
      const caCert = nonEmpty(flags.caCert);
      const sshKey = nonEmpty(flags.sshKey ?? process.env.FOLE_BACKUP_SSH_KEY);
      const sshKnownHosts = nonEmpty(flags.sshKnownHosts ?? process.env.FOLE_BACKUP_SSH_KNOWN_HOSTS);
      return openBackend(location ?? ctx.repoLocation(), {
        ...extra,
        ...(caCert === undefined ? {} : { caCert }),
        ...(sshKey === undefined ? {} : { sshKey }),
        ...(sshKnownHosts === undefined ? {} : { sshKnownHosts }),
        insecureHttp: flags.insecureHttp === true,
        warn: (message) => reporter.warn(message),
        restToken: () => restToken(flags),
      });
    },
    trust() {
      if (trusted === undefined) throw new Error('trust() before openRepo()');
      return trusted;
    },
    async finish(outcome) {
      const o = opened;
      if (o === undefined) return;
      opened = undefined;
      try {
        const { recordOperation } = await import('../trust/audit-record.js');
        const { readRegistry } = await import('../trust/registry-store.js');
        const { defaultStateDir } = await import('../trust/trust-state.js');
        const registry = trusted?.registry ?? (await readRegistry(o.repo).catch(() => undefined));
        await recordOperation(o.repo, {
          op: o.op,
          argv: process.argv.slice(2),
          startedAt: o.startedAt,
          outcome: { ...outcome, ...(lastResult === undefined ? {} : { result: lastResult }) },
          credentials: creds ?? {},
          trust: trusted,
          registry,
          stateDir: defaultStateDir(),
        });
      } catch (err) {
        reporter.stop();
        process.stderr.write(
          `fole-backup: warning: the audit entry for this command could not be written: ${(err as Error).message}\n`,
        );
      } finally {
        await o.backend.release().catch(() => undefined);
      }
    },
    interruptible() {
      if (stop === undefined) {
        stop = new AbortController();
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      }
      return stop.signal;
    },
    finishing(what) {
      finishing = what;
    },
    get interruptedBy() {
      return caught;
    },
    release() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
  return ctx;
}

/**
 * A rest: repository's token: from --rest-token-file (a file or pipe, read like a password file), else
 * FOLE_BACKUP_REST_TOKEN. Never an argument value: argv is in the audit log and in every process listing.
 */
async function restToken(flags: GlobalFlags): Promise<string> {
  const file = nonEmpty(flags.restTokenFile);
  if (file !== undefined) return readPasswordFile(file);
  const env = nonEmpty(process.env.FOLE_BACKUP_REST_TOKEN);
  if (env !== undefined) return env;
  throw new UsageError(
    'a rest: repository needs a token',
    'set FOLE_BACKUP_REST_TOKEN or pass --rest-token-file FILE (the file serve-repo was given with --token-file)',
  );
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/** Runs a command body with a fresh context; errors become exit codes (src/cli/main.ts). */
export type Runner = (fn: (ctx: Context) => Promise<void>) => Promise<void>;
