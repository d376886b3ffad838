import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { StorageFacts } from '../../backend/backend.js';
import { errnoCode, FoleBackupError, fsError } from '../../errors.js';
import type { Context, Runner } from '../context.js';
import type { InitOptions } from '../../repository/repository.js';
import { parseWholeNumber } from '../numbers.js';
import { UsageError } from '../output.js';
import { checkActorName, describeBootstrap } from './actor.js';

/** Write a new random key file (0600); refuses to overwrite one. Returns its secret. */
export async function generateKeyFile(path: string): Promise<string> {
  const secret = randomBytes(32).toString('base64url');
  try {
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') {
      // never overwrite: it may be the only copy of another repository's key
      throw new UsageError(
        `key file ${path} already exists; it is never overwritten`,
        'choose a new file name (the existing file may be the key of another repository)',
      );
    }
    throw fsError('write', path, err);
  }
  return secret;
}

/** What the storage told about versioning and Object Lock, in words an operator acts on. */
function describeStorage(f: StorageFacts): string {
  const versioning =
    f.versioning === 'enabled'
      ? 'bucket versioning: enabled (deleted and overwritten objects stay as old versions until a lifecycle rule ' +
        'removes them)'
      : f.versioning === 'suspended'
        ? 'bucket versioning: suspended (old versions made before remain)'
        : f.versioning === 'disabled'
          ? 'bucket versioning: off (a deleted object is gone)'
          : 'bucket versioning: the server did not say';
  const lock = f.objectLock === true ? 'object lock: enabled on the bucket' : 'object lock: not enabled';
  return `${versioning}\n${lock}`;
}

/** The pack and chunk sizes of the repository a twin is made of, from its plaintext config. */
async function twinSizes(
  ctx: Context,
  location: string,
): Promise<Required<Pick<InitOptions, 'packSize' | 'fileChunkSize' | 'dbChunkSize'>>> {
  const { readConfig } = await import('../../repository/repository.js');
  const backend = await ctx.openBackend({}, location);
  try {
    const c = await readConfig(backend);
    return { packSize: c.packSize, fileChunkSize: c.fileChunkSize, dbChunkSize: c.dbChunkSize };
  } catch (err) {
    // the twin's source, not --repo, is what is missing or damaged
    if (!(err instanceof FoleBackupError)) throw err;
    throw new FoleBackupError(err.code, `--from-repo: ${err.message}`, {
      cause: err,
      hint: 'check --from-repo: it names the repository to make a twin of; nothing was created',
    });
  } finally {
    await backend.close();
  }
}

export function registerInit(program: Command, run: Runner): void {
  program
    .command('init')
    .description(
      'create a new encrypted repository at --repo (the location must be empty or absent; its directory is made ' +
        'mode 0700)',
    )
    .option(
      '--generate-key-file <file>',
      'write a new random key to <file> (mode 0600) and use it as the password; keep a copy offsite',
    )
    .option(
      '--db-chunk-size <bytes>',
      'chunk size for database snapshots: a power of two from 512 to 1048576 (default 16384)',
    )
    .option(
      '--object-lock-days <n>',
      'S3 only: put every object with COMPLIANCE retention for n days (1-36500), so nobody can delete or overwrite ' +
        'a backup before then; refused unless the bucket proves Object Lock is enabled (docs/BACKENDS.md)',
    )
    .option(
      '--from-repo <location>',
      'make an offsite twin of this repository: its pack and chunk sizes (read from its config, no password needed), ' +
        'so `copy` from it deduplicates as it does; the twin has its own id and key',
    )
    .option('--admin <name>', 'make an actor registry with this human as its first sysadmin (docs/TRUST.md)')
    .option('--admin-public-key <file>', "with --admin: the sysadmin's public key (FILE.pub from `actor keygen`)")
    .addHelpText(
      'after',
      `
Examples:
  FOLE_BACKUP_PASSWORD=... fole-backup init --repo /srv/backups/fole
  fole-backup init --repo /srv/backups/fole --generate-key-file /root/fole-backup.key
  fole-backup init --repo /srv/backups/fole --generate-key-file /root/fole-backup.key \\
      --admin alice --admin-public-key alice.key.pub
  fole-backup init --repo sftp://backup@offsite.example/srv/fole --from-repo /srv/backups/fole

Without the password or key file the backups cannot be read by anyone, you included.`,
    )
    .action(function (this: Command) {
      const opts = this.opts<{
        generateKeyFile?: string;
        dbChunkSize?: string;
        admin?: string;
        adminPublicKey?: string;
        objectLockDays?: string;
        fromRepo?: string;
      }>();
      return run(async (ctx) => {
        ctx.repoLocation(); // no --repo is a usage error before any password is asked
        if ((opts.admin === undefined) !== (opts.adminPublicKey === undefined)) {
          throw new UsageError('--admin and --admin-public-key go together');
        }
        let admin: { name: string; publicKey: string } | undefined;
        if (opts.admin !== undefined) {
          const { readPublicKeyFile } = await import('../../trust/actor-key-file.js');
          admin = {
            name: await checkActorName('--admin', opts.admin),
            publicKey: await readPublicKeyFile(opts.adminPublicKey as string),
          };
        }
        let dbChunkSize: number | undefined;
        if (opts.dbChunkSize !== undefined) {
          dbChunkSize = parseWholeNumber('--db-chunk-size', opts.dbChunkSize, { min: 512, max: 1 << 20 });
          if ((dbChunkSize & (dbChunkSize - 1)) !== 0) {
            throw new UsageError(`--db-chunk-size must be a power of two from 512 to 1048576, not ${opts.dbChunkSize}`);
          }
        }
        if (opts.fromRepo !== undefined && dbChunkSize !== undefined) {
          throw new UsageError(
            '--from-repo and --db-chunk-size go apart',
            'a twin takes the chunk sizes of --from-repo',
          );
        }
        const twin = opts.fromRepo === undefined ? undefined : await twinSizes(ctx, opts.fromRepo);
        const objectLockDays =
          opts.objectLockDays === undefined
            ? undefined
            : parseWholeNumber('--object-lock-days', opts.objectLockDays, { min: 1, max: 36_500 });
        // a location that cannot take these options is refused before a key file is written
        await (await ctx.openBackend(objectLockDays === undefined ? {} : { objectLockDays })).close();
        const password = opts.generateKeyFile
          ? await generateKeyFile(opts.generateKeyFile)
          : await ctx.password({ confirm: true });
        const repo = await ctx.initRepo(
          password,
          twin ?? (dbChunkSize === undefined ? {} : { dbChunkSize }),
          objectLockDays === undefined ? {} : { objectLockDays },
        );
        let trustId: string | undefined;
        let storage: StorageFacts | undefined;
        try {
          if (admin !== undefined) {
            const { bootstrapRegistry } = await import('../../trust/actors.js');
            const { defaultStateDir } = await import('../../trust/trust-state.js');
            trustId = (await bootstrapRegistry(repo, admin, defaultStateDir())).trustId;
          }
          storage = await repo.backend.storageFacts?.();
        } finally {
          await repo.close();
        }
        ctx.out.result(
          {
            repository: repo.backend.location,
            id: repo.config.id,
            formatVersion: repo.config.formatVersion,
            keyFile: opts.generateKeyFile ?? null,
            ...(twin === undefined ? {} : { twinOf: opts.fromRepo, ...twin }),
            ...(trustId === undefined ? {} : { trustId, sysadmin: admin?.name }),
            ...(storage === undefined ? {} : { storage }),
            ...(objectLockDays === undefined ? {} : { objectLockDays }),
          },
          () =>
            `created repository ${repo.config.id} at ${repo.backend.location}` +
            (twin === undefined
              ? ''
              : `\ntwin of ${opts.fromRepo}: same pack and chunk sizes, its own id and key ` +
                `(\`fole-backup copy --from-repo ${opts.fromRepo}\` fills it)`) +
            (opts.generateKeyFile
              ? `\nkey file: ${opts.generateKeyFile} (pass it with --password-file; keep a copy somewhere safe)`
              : '') +
            (trustId === undefined || admin === undefined ? '' : `\n${describeBootstrap(admin.name, trustId)}`) +
            (storage === undefined ? '' : `\n${describeStorage(storage)}`) +
            (objectLockDays === undefined
              ? ''
              : `\nevery object is put under COMPLIANCE retention for ${objectLockDays} days`),
        );
      });
    });
}
