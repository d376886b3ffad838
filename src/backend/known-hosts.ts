/**
 * OpenSSH's known_hosts, read to decide whether an SFTP server's host key is
 * the one the operator trusts — PURE: text and key in, verdict out. We check
 * the key ourselves (ssh2 only hands it over) because a silent accept of an
 * unknown or changed key would send the repository's objects, and our SSH
 * credentials, to whoever sits in the middle.
 *
 * Supported, as OpenSSH writes and reads them: plain host patterns with `*`
 * and `?` and `!` negation, `[host]:port` for a port other than 22, hashed
 * names (`|1|salt|hmac-sha1`), `@revoked` keys (refused). `@cert-authority`
 * lines are skipped: we do not accept host certificates.
 */
import { createHmac } from 'node:crypto';

/** What known_hosts says about a host's key. */
export type HostKeyVerdict =
  /** A line for this host has exactly this key. */
  | { status: 'known' }
  /** No line names this host (or none with a key of this type). */
  | { status: 'unknown' }
  /** Lines name this host with other keys of the same type: the key changed, or someone is in the middle. */
  | { status: 'changed' }
  /** This key is marked @revoked. */
  | { status: 'revoked' };

/** How OpenSSH names a host in known_hosts: `host` on port 22, else `[host]:port`. */
export function hostEntryName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type inside an SSH wire-format public key blob (e.g. ssh-ed25519), or undefined if malformed. */
export function keyTypeOf(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || blob.length < 4 + n) return undefined;
  return blob.subarray(4, 4 + n).toString('latin1');
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

/** Whether a comma-separated host field of one line names `name` (hashed, negated and wildcard forms). */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (salt === undefined || hash === undefined) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (pattern === '' || !globToRegExp(pattern).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** Judge `key` (the server's host key, SSH wire format) for `host`:`port` against the text of known_hosts. */
export function checkHostKey(knownHosts: string, host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = hostEntryName(host, port);
  const type = keyTypeOf(key);
  const base64 = key.toString('base64');
  let sameTypeOther = false;
  let known = false;
  for (const rawLine of knownHosts.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined;
    const [hosts, lineType, lineKey] = fields;
    if (hosts === undefined || lineType === undefined || lineKey === undefined) continue;
    if (marker === '@revoked') {
      if (lineKey === base64) return { status: 'revoked' };
      continue;
    }
    if (marker !== undefined || !hostFieldMatches(hosts, name)) continue;
    if (lineKey === base64) known = true;
    else if (lineType === type) sameTypeOther = true;
  }
  if (known) return { status: 'known' };
  return sameTypeOther ? { status: 'changed' } : { status: 'unknown' };
}
