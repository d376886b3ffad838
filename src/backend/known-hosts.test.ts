import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkHostKey, hostEntryName, hostFieldMatches, keyTypeOf } from './known-hosts.js';

/** An ed25519 public key in SSH wire format, as a server presents it. */
function hostKey(): Buffer {
  const spki = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' });
  const raw = spki.subarray(spki.length - 32);
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

const key = hostKey();
const other = hostKey();
const line = (hosts: string, k: Buffer = key, type = 'ssh-ed25519'): string =>
  `${hosts} ${type} ${k.toString('base64')}`;

describe('known_hosts', () => {
  it('names a host as OpenSSH does, with the port unless it is 22', () => {
    expect(hostEntryName('example.org', 22)).toBe('example.org');
    expect(hostEntryName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(keyTypeOf(key)).toBe('ssh-ed25519');
    expect(keyTypeOf(Buffer.from([0, 0, 1, 0]))).toBeUndefined();
  });

  it('knows a host whose line has exactly this key, on the right port', () => {
    expect(checkHostKey(`# comment\n\n${line('[127.0.0.1]:2222')}\n`, '127.0.0.1', 2222, key)).toEqual({
      status: 'known',
    });
    // the same host on another port is another entry
    expect(checkHostKey(line('[127.0.0.1]:2222'), '127.0.0.1', 2223, key)).toEqual({ status: 'unknown' });
    expect(checkHostKey(line('backup.example.org,10.0.0.5'), '10.0.0.5', 22, key)).toEqual({ status: 'known' });
  });

  it('calls a different key of the same type for a known host a change, and another type unknown', () => {
    expect(checkHostKey(line('h'), 'h', 22, other)).toEqual({ status: 'changed' });
    expect(checkHostKey(line('h', other, 'ssh-rsa'), 'h', 22, key)).toEqual({ status: 'unknown' });
    // a second line with the right key wins over an old one
    expect(checkHostKey(`${line('h', other)}\n${line('h')}`, 'h', 22, key)).toEqual({ status: 'known' });
  });

  it('matches hashed names, wildcards and negations', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[db.example.org]:2200').digest('base64');
    const hashed = `|1|${salt.toString('base64')}|${hash}`;
    expect(hostFieldMatches(hashed, '[db.example.org]:2200')).toBe(true);
    expect(hostFieldMatches(hashed, 'db.example.org')).toBe(false);
    expect(checkHostKey(line(hashed), 'db.example.org', 2200, key)).toEqual({ status: 'known' });
    expect(hostFieldMatches('*.example.org', 'db.example.org')).toBe(true);
    expect(hostFieldMatches('*.example.org,!db.example.org', 'db.example.org')).toBe(false);
    expect(hostFieldMatches('db?.example.org', 'db1.example.org')).toBe(true);
    expect(hostFieldMatches('db.example.org', 'dbxexample.org')).toBe(false);
  });

  it('refuses a revoked key and ignores certificate authorities', () => {
    expect(checkHostKey(`${line('h')}\n@revoked * ssh-ed25519 ${key.toString('base64')}`, 'h', 22, key)).toEqual({
      status: 'revoked',
    });
    expect(checkHostKey(`@cert-authority * ssh-ed25519 ${key.toString('base64')}`, 'h', 22, key)).toEqual({
      status: 'unknown',
    });
  });
});
