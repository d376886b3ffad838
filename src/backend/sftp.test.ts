/**
 * The SFTP backend against a real OpenSSH sshd on 127.0.0.1 (test/servers/sshd.ts): the conformance suite,
 * host keys that are unknown, changed or revoked (refused before anything is sent), and a connection cut
 * mid-upload (nothing partial under an object's name; the next save works).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeBackendConformance, expectCode, listAll, randomName } from '../../test/backend-conformance.js';
import { startFaultProxy } from '../../test/servers/fault-proxy.js';
import { sshdMissing, startSshd, type SshdServer } from '../../test/servers/sshd.js';
import { skipWithout } from '../../test/servers/shared.js';
import type { Backend } from './backend.js';
import { openBackend } from './open.js';
import { SftpBackend } from './sftp.js';
import { parseSftpLocation } from './sftp-location.js';

const missing = sshdMissing();
const skip = skipWithout(missing, 'the SFTP backend tests');

let server: Promise<SshdServer> | undefined;
const sshd = (): Promise<SshdServer> => (server ??= startSshd());
afterAll(async () => (await server)?.stop());

function backendAt(s: SshdServer, path: string, opts: { knownHosts?: string; warn?: (m: string) => void } = {}) {
  return new SftpBackend(
    { user: s.user, host: '127.0.0.1', port: s.port, path },
    { sshKey: s.clientKey, knownHosts: opts.knownHosts ?? s.knownHosts, ...(opts.warn ? { warn: opts.warn } : {}) },
  );
}

describe.skipIf(skip)('SFTP backend', () => {
  describeBackendConformance('sftp', async () => {
    const s = await sshd();
    return { backend: backendAt(s, join(s.home, `repo-${randomName().slice(0, 12)}`)), cleanup: async () => {} };
  });

  describe('location', () => {
    it('parses user, host, port and absolute path, and refuses what is not one', () => {
      expect(parseSftpLocation('sftp://backup@vault.example.org/srv/fole-repo/')).toEqual({
        user: 'backup',
        host: 'vault.example.org',
        port: 22,
        path: '/srv/fole-repo',
      });
      expect(parseSftpLocation('sftp://b%40x@[::1]:2222/r')).toEqual({
        user: 'b@x',
        host: '::1',
        port: 2222,
        path: '/r',
      });
      for (const bad of ['sftp://h/srv/r', 'sftp://u@h', 'sftp://u@h/', 'sftp://u:pw@h/r', 'sftp://u@h/r?x=1']) {
        expect(() => parseSftpLocation(bad), bad).toThrow(/repository sftp:/);
      }
    });
  });

  describe('host keys', () => {
    let s: SshdServer;
    beforeAll(async () => {
      s = await sshd();
    });

    const refusal = async (knownHosts: string, message: RegExp): Promise<void> => {
      const file = join(s.home, `known-${randomName().slice(0, 8)}`);
      writeFileSync(file, knownHosts);
      const path = join(s.home, `never-${randomName().slice(0, 8)}`);
      const err = await expectCode(backendAt(s, path, { knownHosts: file }).create(), 'UNTRUSTED_HOST');
      expect(err.message).toMatch(message);
      expect(err.message).toMatch(/SHA256:[A-Za-z0-9+/]{43}/);
      expect(existsSync(path), 'nothing may be written to a server not trusted').toBe(false);
    };

    it('refuses a server whose host key is unknown, and says how to add it', async () => {
      await refusal('', /is not in/);
      const err = await expectCode(
        backendAt(s, '/x', { knownHosts: join(s.home, 'absent') }).isRepository(),
        'UNTRUSTED_HOST',
      );
      expect(err.hint).toContain(`ssh-keyscan -p ${s.port} 127.0.0.1`);
    });

    it('refuses a server whose host key changed, or is revoked', async () => {
      const keyFile = join(s.home, `other-${randomName().slice(0, 8)}`);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
      const otherKey = readFileSync(`${keyFile}.pub`, 'utf8').split(/\s+/).slice(0, 2).join(' ');
      const fake = `[127.0.0.1]:${s.port} ${otherKey}\n`;
      await refusal(fake, /it CHANGED/);
      await refusal(`${s.hostKeyLine}\n@revoked * ${s.hostKeyLine.split(' ').slice(1).join(' ')}\n`, /@revoked/);
    });

    it('accepts the key when known_hosts holds it under a hashed name', async () => {
      const file = join(s.home, 'known-hashed');
      writeFileSync(file, `${s.hostKeyLine}\n`);
      execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
      const b = backendAt(s, join(s.home, `hashed-${randomName().slice(0, 8)}`), { knownHosts: file });
      await b.create();
      expect(await b.isRepository()).toBe(false);
      await b.close();
    });
  });

  describe('a connection lost before the session is up', () => {
    it('is tried again behind the retry wrapper: reset at once, then cut mid-handshake, then connected', async () => {
      const s = await sshd();
      const proxy = await startFaultProxy(s.port);
      try {
        const knownHosts = join(s.home, `known-proxy-${proxy.port}`);
        writeFileSync(knownHosts, `[127.0.0.1]:${proxy.port} ${s.hostKeyLine.split(' ').slice(1).join(' ')}\n`);
        const path = join(s.home, `late-${randomName().slice(0, 8)}`);
        const retries: string[] = [];
        const b = openBackend(`sftp://${s.user}@127.0.0.1:${proxy.port}${path}`, {
          sshKey: s.clientKey,
          sshKnownHosts: knownHosts,
          warn: (m) => retries.push(m),
        });
        proxy.resetNew(1);
        // after the server's banner, inside its key exchange
        proxy.cutAfter('toClient', 100);
        await b.create();
        expect(proxy.fired).toMatchObject({ resets: 1, cuts: 1, connections: 3 });
        expect(retries).toEqual([
          expect.stringMatching(/cannot connect: .*; retrying \(attempt 2\)$/),
          expect.stringMatching(/cannot connect: .*; retrying \(attempt 3\)$/),
        ]);
        expect(existsSync(path)).toBe(true);
        await b.close();
      } finally {
        await proxy.close();
      }
    });
  });

  describe('a connection cut mid-upload', () => {
    it('leaves nothing under the object name, only a temporary file; the next save works', async () => {
      const s = await sshd();
      const path = join(s.home, `cut-${randomName().slice(0, 8)}`);
      const b = backendAt(s, path);
      const { name, big, saving } = await saveAndCut(s, b, path);
      await expect(saving).rejects.toThrow();
      expect(existsSync(join(path, 'data', name.slice(0, 2), name))).toBe(false);
      // the backend connects again on the next call
      await b.save({ type: 'data', name }, big.subarray(0, 1_000_000));
      expect((await b.load({ type: 'data', name })).equals(big.subarray(0, 1_000_000))).toBe(true);
      const temps: string[] = [];
      for await (const t of b.listTemporary()) temps.push(t.path);
      expect(temps.length).toBeGreaterThan(0);
      for await (const t of b.listTemporary()) await b.removeTemporary(t);
      expect(tempFiles(path)).toEqual([]);
      expect((await listAll(b, 'data')).map((o) => o.name)).toEqual([name]);
      await b.close();
    }, 120_000);

    it('is retried on a new connection behind the retry wrapper, and completes', async () => {
      const s = await sshd();
      const path = join(s.home, `retried-${randomName().slice(0, 8)}`);
      const location = `sftp://${s.user}@127.0.0.1:${s.port}${path}`;
      const retries: string[] = [];
      const b = openBackend(location, {
        sshKey: s.clientKey,
        sshKnownHosts: s.knownHosts,
        warn: (m) => retries.push(m),
      });
      const { name, big, saving } = await saveAndCut(s, b, path);
      await saving;
      expect(retries.join('\n')).toMatch(/the connection was lost.*retrying \(attempt 2\)/);
      expect((await b.load({ type: 'data', name })).equals(big)).toBe(true);
      await b.close();
    }, 120_000);
  });
});

/** Create a repository at `path`, start saving a 64 MiB pack, and cut every SSH session once it is under way. */
async function saveAndCut(s: SshdServer, b: Backend, path: string) {
  await b.create();
  const name = randomName();
  const big = randomBytes(64 * 1024 * 1024);
  const saving = b.save({ type: 'data', name }, big);
  saving.catch(() => undefined); // the caller awaits it
  await waitFor(() => tempFiles(path).length > 0);
  // kill sshd's per-connection processes: the listener stays, the session dies
  execFileSync('pkill', ['-KILL', '-P', String(s.process.pid)]);
  return { name, big, saving };
}

/** Temporary files anywhere under a repository folder. */
function tempFiles(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => p.split('/').pop()?.startsWith('.tmp-'));
}

async function waitFor(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
