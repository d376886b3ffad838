/**
 * Turn a repository location string into a Backend. This is the one place where
 * backends are chosen and wrappers stacked: a network backend is wrapped in retries.
 */

import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FoleBackupError } from '../errors.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';
import { RestBackend } from './rest.js';
import { RetryBackend } from './retry.js';
import { LazyBackend, OPTIONAL_METHODS, type OptionalMethod } from './lazy.js';
import { parseS3Location } from './s3-location.js';
import { parseSftpLocation, sftpLocationName } from './sftp-location.js';

const SUPPORTED =
  'local:<path>, a plain path, s3:https://HOST[:PORT]/BUCKET[/PREFIX], sftp://USER@HOST[:PORT]/PATH, or ' +
  'rest:https://HOST:PORT/';

/** What the global options say about reaching a network repository. */
export interface BackendOptions {
  /** A PEM file of the CA(s) to trust for https:// (--ca-cert; for S3 else $AWS_CA_BUNDLE). */
  caCert?: string;
  /** Allow plain http:// to a host that is not a loopback address (--insecure-http). */
  insecureHttp?: boolean;
  /** Where warnings go (plain HTTP, retries); none are shown without it. */
  warn?: (message: string) => void;
  /** For create() of an S3 repository: put every object with this many days of retention (init --object-lock-days). */
  objectLockDays?: number;
  /** The bearer token of a rest: repository, read at its first request (FOLE_BACKUP_REST_TOKEN, --rest-token-file). */
  restToken?: () => Promise<string>;
  /** The private key an sftp:// repository logs in with (--ssh-key); else the ssh-agent. */
  sshKey?: string;
  /** The known_hosts file an sftp:// server's host key must be in (--ssh-known-hosts); else ~/.ssh/known_hosts. */
  sshKnownHosts?: string;
}

/** The optional methods of S3Backend and SftpBackend (src/backend/lazy.test.ts checks them against the classes). */
export const S3_OPTIONAL: readonly OptionalMethod[] = OPTIONAL_METHODS.filter((m) => m !== 'openReader');
/** See S3_OPTIONAL. */
export const SFTP_OPTIONAL: readonly OptionalMethod[] = ['openReader', 'listTemporary', 'removeTemporary'];

/**
 * Open the backend named by `location`:
 *   `local:/abs/path` or `local:rel/path`  a local directory
 *   `/abs/path`, `rel/path`, `./a:b`        a local directory (relative to the cwd)
 *   `s3:https://HOST[:PORT]/BUCKET[/PREFIX]` an S3 bucket (path-style)
 *   `sftp://USER@HOST[:PORT]/ABSOLUTE/PATH` a folder on an SSH server
 *   `rest:https://HOST:PORT/[PREFIX/]`      a repository served by `fole-backup serve-repo`
 * Network backends are wrapped in retries. Any other `scheme:` (memory:, …) throws FoleBackupError('USAGE').
 * Nothing is touched yet; call create() or isRepository() next.
 */
export function openBackend(location: string, opts: BackendOptions = {}): Backend {
  // Two or more letters before the colon, so a Windows drive ("C:\…") is a path.
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]+):/.exec(location)?.[1];
  if (opts.objectLockDays !== undefined && scheme?.toLowerCase() !== 's3') {
    throw new FoleBackupError('USAGE', `repository ${location}: Object Lock needs an s3: repository`, {
      hint: 'leave out --object-lock-days, or init an s3:https://HOST/BUCKET repository on a server that enforces it',
    });
  }
  if (scheme === undefined) return new LocalBackend(resolve(nonEmpty(location, location)));
  if (scheme.toLowerCase() === 'local') {
    return new LocalBackend(resolve(nonEmpty(location.slice(scheme.length + 1), location)));
  }
  if (scheme.toLowerCase() === 's3') {
    const where = parseS3Location(location, opts);
    const s3 = new LazyBackend(
      where.location,
      S3_OPTIONAL,
      async () => new (await import('./s3.js')).S3Backend(where, opts),
    );
    return withRetries(s3, opts);
  }
  if (scheme.toLowerCase() === 'sftp') {
    const where = parseSftpLocation(location);
    const sftpOpts = {
      ...(opts.sshKey === undefined ? {} : { sshKey: opts.sshKey }),
      ...(opts.sshKnownHosts === undefined ? {} : { knownHosts: opts.sshKnownHosts }),
      ...(opts.warn === undefined ? {} : { warn: opts.warn }),
    };
    const sftp = new LazyBackend(sftpLocationName(where), SFTP_OPTIONAL, async () => {
      return new (await import('./sftp.js')).SftpBackend(where, sftpOpts);
    });
    return withRetries(sftp, opts);
  }
  if (scheme.toLowerCase() === 'rest') {
    const rest = new RestBackend(location, {
      ...(opts.caCert === undefined ? {} : { caCert: opts.caCert }),
      ...(opts.warn === undefined ? {} : { warn: opts.warn }),
      ...(opts.restToken === undefined ? {} : { token: opts.restToken }),
    });
    return withRetries(rest, opts);
  }
  throw new FoleBackupError(
    'USAGE',
    `repository ${location}: unsupported backend "${scheme}:"; this version supports ${SUPPORTED}`,
    {
      hint:
        'use a local directory (it may be a mounted network or USB disk) or an S3 bucket; write ./name for a ' +
        'relative path that contains a colon',
    },
  );
}

/** A network backend in retries, each retry told to the user as a warning. */
function withRetries(backend: Backend, opts: BackendOptions): Backend {
  const { warn } = opts;
  return new RetryBackend(backend, {
    ...(warn === undefined
      ? {}
      : {
          onRetry: (what, attempt, err) =>
            warn(`${what}: ${(err as Error).message}; retrying (attempt ${attempt + 1})`),
        }),
  });
}

function nonEmpty(path: string, location: string): string {
  if (path === '') {
    throw new FoleBackupError('USAGE', `repository ${JSON.stringify(location)}: no path given`, {
      hint: `give a repository location: ${SUPPORTED}`,
    });
  }
  return path;
}

/**
 * The real path of a backend's directory when it is a local one (symlinks
 * resolved; as written when it cannot be resolved), else undefined. What a
 * backup or restore compares with the tree it works on: a repository inside
 * that tree would be backed up into itself, or overwritten.
 */
export async function localRealPath(backend: Pick<Backend, 'location'>): Promise<string | undefined> {
  const loc = backend.location;
  if (!loc.startsWith('local:')) return undefined;
  const p = resolve(loc.slice('local:'.length));
  return realpath(p).catch(() => p);
}
