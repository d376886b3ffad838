/**
 * Where an SFTP repository lives, parsed from its location string. Apart from the SFTP backend so that opening a
 * repository can check an sftp:// location at once without loading ssh2 (src/backend/lazy.ts).
 */
import { posix } from 'node:path';
import { FoleBackupError } from '../errors.js';

/** Where an SFTP repository lives. */
export interface SftpLocation {
  user: string;
  host: string;
  port: number;
  /** Absolute path on the server, without a trailing slash. */
  path: string;
}

/** Parse `sftp://USER@HOST[:PORT]/ABSOLUTE/PATH`. Throws USAGE saying what is wrong. */
export function parseSftpLocation(location: string): SftpLocation {
  const usage = (why: string): FoleBackupError =>
    new FoleBackupError('USAGE', `repository ${location}: ${why}`, {
      hint: 'write sftp://USER@HOST[:PORT]/ABSOLUTE/PATH, e.g. sftp://backup@vault.example.org/srv/fole-repo',
    });
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw usage('not a valid sftp:// URL');
  }
  if (url.protocol !== 'sftp:') throw usage('not an sftp:// URL');
  if (url.password !== '') throw usage('a password in the URL is never accepted: log in with a key');
  const user = decodeURIComponent(url.username);
  if (user === '') throw usage('no user: write USER@ before the host');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw usage('no host');
  const port = url.port === '' ? 22 : Number(url.port);
  const raw = decodeURIComponent(url.pathname);
  const path = raw.startsWith('/') ? posix.normalize(raw).replace(/\/+$/, '') : '';
  if (path === '' || path === '/') throw usage('no path: give the absolute path of the repository on the server');
  if (url.search !== '' || url.hash !== '') throw usage('no ?query or #fragment is allowed');
  return { user, host, port, path };
}

/** The location as the user sees it: `sftp://USER@HOST[:PORT]/PATH` (IPv6 hosts in brackets, port 22 left out). */
export function sftpLocationName(where: SftpLocation): string {
  const port = where.port === 22 ? '' : `:${where.port}`;
  const host = where.host.includes(':') ? `[${where.host}]` : where.host;
  return `sftp://${where.user}@${host}${port}${where.path}`;
}
