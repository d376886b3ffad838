/**
 * Where an S3 repository lives, parsed from its location string. Apart from the S3 backend so that opening a
 * repository can check an s3: location at once without loading the AWS SDK (src/backend/lazy.ts).
 */
import { FoleBackupError } from '../errors.js';

/** Where an S3 repository lives, parsed from its location string. */
export interface S3Location {
  /** `https://host[:port]` (or http:// where allowed). */
  endpoint: string;
  bucket: string;
  /** '' or a key prefix ending in '/'. */
  prefix: string;
  /** The location as the user should see it. */
  location: string;
}

/** What openBackend passes from the global options. */
export interface S3Options {
  /** A PEM file of the CA(s) to trust instead of the system's (--ca-cert; else $AWS_CA_BUNDLE). */
  caCert?: string;
  /** Allow plain http:// to a host that is not a loopback address (--insecure-http). */
  insecureHttp?: boolean;
  /** Where the warning about plain HTTP goes. */
  warn?: (message: string) => void;
  /**
   * create() only: make a repository whose every object is put with COMPLIANCE retention for this many days
   * (init --object-lock-days). Refused unless the bucket proves Object Lock is enabled.
   */
  objectLockDays?: number;
  /** Keys per listing page (default: the server's, 1000 on AWS); tests page through small ones. */
  listPageSize?: number;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Parse `s3:https://HOST[:PORT]/BUCKET[/PREFIX]`; USAGE errors say what is wrong and never echo a secret. */
export function parseS3Location(location: string, opts: S3Options = {}): S3Location {
  const usage = (why: string, hint = 'write s3:https://HOST[:PORT]/BUCKET[/PREFIX]'): FoleBackupError =>
    new FoleBackupError('USAGE', `repository s3 location: ${why}`, { hint });
  const rest = location.slice('s3:'.length);
  let url: URL;
  try {
    url = new URL(rest);
  } catch {
    // not echoed: a mistyped location may hold a secret
    throw usage('what follows "s3:" is not a URL');
  }
  if (url.username !== '' || url.password !== '') {
    // a secret in --repo would end up in shell history, process listings and the audit log
    throw usage(
      'credentials in the URL are refused',
      'give them as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or in the shared AWS config (AWS_PROFILE)',
    );
  }
  if (url.search !== '' || url.hash !== '') throw usage('a query or fragment is not allowed');
  if (url.protocol === 'http:') {
    if (!LOOPBACK.has(url.hostname) && opts.insecureHttp !== true) {
      throw usage(
        `plain http:// to ${url.hostname} would send the repository's data and request signatures unencrypted`,
        'use https:// (with --ca-cert FILE for a private CA), or pass --insecure-http if the network is trusted',
      );
    }
    if (!LOOPBACK.has(url.hostname)) {
      opts.warn?.(`${url.host}: plain HTTP (--insecure-http); traffic to the repository is not encrypted`);
    }
  } else if (url.protocol !== 'https:') {
    throw usage(`unsupported scheme ${url.protocol}`);
  }
  const parts = url.pathname.split('/').filter((p) => p !== '');
  const bucket = parts[0];
  if (bucket === undefined) throw usage('no bucket given');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw usage(`bucket name ${JSON.stringify(bucket)} is not valid (3-63 of a-z, 0-9, '.', '-')`);
  }
  let prefixParts: string[];
  try {
    prefixParts = parts.slice(1).map((p) => decodeURIComponent(p));
  } catch {
    throw usage('the prefix holds a malformed %-escape');
  }
  if (prefixParts.some((p) => p === '.' || p === '..')) throw usage('the prefix may not contain . or .. segments');
  const prefix = prefixParts.length === 0 ? '' : `${prefixParts.join('/')}/`;
  const endpoint = `${url.protocol}//${url.host}`;
  return { endpoint, bucket, prefix, location: `s3:${endpoint}/${bucket}${prefix === '' ? '' : `/${prefix}`}` };
}
