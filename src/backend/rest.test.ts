import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeBackendConformance, expectCode, randomName } from '../../test/backend-conformance.js';
import { makeTestCertificates, type TestCertificates } from '../../test/tls-helpers.js';
import { serveRepository } from '../server/serve.js';
import { LocalBackend } from './local.js';
import { openBackend } from './open.js';
import type { Backend } from './backend.js';
import { parseRestLocation, RestBackend } from './rest.js';
import { RetryBackend } from './retry.js';

const TOKEN = 'client-token-0123456789abcdef';
let certs: TestCertificates | undefined;
const tls = (): TestCertificates => (certs ??= makeTestCertificates());

afterAll(async () => {
  if (certs !== undefined) await rm(certs.dir, { recursive: true, force: true });
});

const ADMIN_TOKEN = 'admin-token-0123456789abcdef';

/**
 * serve-repo in this process over TLS, for a repository directory not made yet: read-write, or append-only with
 * an admin listener (`url` is then the admin listener's).
 */
async function served(
  appendOnly = false,
): Promise<{ dir: string; url: string; clientUrl: string; close: () => Promise<void> }> {
  const tmp = await mkdtemp(join(tmpdir(), 'fole-rest-'));
  const dir = join(tmp, 'repo');
  const server = await serveRepository({
    backend: new LocalBackend(dir),
    appendOnly,
    listen: { host: '127.0.0.1', port: 0, tokens: [TOKEN] },
    ...(appendOnly ? { admin: { host: '127.0.0.1', port: 0, tokens: [ADMIN_TOKEN] } } : {}),
    tls: { cert: tls().cert, key: tls().key },
    log: () => undefined,
  });
  return {
    dir,
    url: server.adminUrl ?? server.url,
    clientUrl: server.url,
    close: async () => {
      await server.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

describeBackendConformance('rest', async () => {
  const s = await served();
  const backend = new RestBackend(`rest:${s.url}`, { token: async () => TOKEN, caCert: tls().caFile });
  return { backend, cleanup: s.close };
});

describeBackendConformance('rest (admin listener of an append-only server)', async () => {
  const s = await served(true);
  const backend = new RestBackend(`rest:${s.url}`, { token: async () => ADMIN_TOKEN, caCert: tls().caFile });
  return { backend, cleanup: s.close };
});

describe('RestBackend', () => {
  it('reads locations with and without a path, and refuses credentials, queries and plain http to another host', () => {
    expect(parseRestLocation('rest:https://h.example:8443').href).toBe('https://h.example:8443/');
    expect(parseRestLocation('rest:https://h.example:8443/a/b').href).toBe('https://h.example:8443/a/b/');
    expect(parseRestLocation('rest:http://127.0.0.1:80/').href).toBe('http://127.0.0.1/');
    for (const bad of [
      'rest:https://user:secret@h.example/',
      'rest:https://h.example/?token=x',
      'rest:http://h.example/',
      'rest:ftp://h.example/',
      'rest:nonsense',
    ]) {
      expect(() => parseRestLocation(bad), bad).toThrow(/repository/);
    }
    expect(openBackend('rest:https://h.example:8443/r/').location).toBe('rest:https://h.example:8443/r/');
  });

  it('names a wrong token ACCESS_DENIED and a server it cannot verify a READ_ERROR, the token in neither', async () => {
    const s = await served();
    try {
      const wrong = new RestBackend(`rest:${s.url}`, {
        token: async () => 'wrong-token-0123456789',
        caCert: tls().caFile,
      });
      const err = await expectCode(wrong.isRepository(), 'ACCESS_DENIED');
      expect(err.message).toMatch(/401/);
      await wrong.close();
      const untrusted = new RestBackend(`rest:${s.url}`, { token: async () => TOKEN });
      const e2 = await expectCode(untrusted.isRepository(), 'READ_ERROR');
      expect(e2.message).not.toContain(TOKEN);
      await untrusted.close();
    } finally {
      await s.close();
    }
  });

  describe('against a hostile server', () => {
    let server: Server;
    let base: string;
    let requests: string[];
    let reply: (url: string) => { status: number; headers?: Record<string, string>; body?: string };

    beforeAll(async () => {
      server = createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        const r = reply(req.url ?? '');
        res.writeHead(r.status, r.headers ?? {});
        res.end(r.body ?? '');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `rest:http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    });

    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    afterEach(() => {
      requests = [];
    });

    it('refuses a whole listing that names ../x, and reads, writes and removes nothing', async () => {
      requests = [];
      reply = () => ({
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([
          { name: randomName(), size: 1, mtime: 0 },
          { name: '../x', size: 1, mtime: 0 },
        ]),
      });
      const b = new RestBackend(base, { token: async () => TOKEN });
      const err = await expectCode(
        (async () => {
          for await (const _ of b.list('snapshots')) {
            // nothing is handed out before the whole listing is checked
            throw new Error('an entry was handed out');
          }
        })(),
        'REPO_CORRUPT',
      );
      expect(err.message).toMatch(/"\.\.\/x", not a valid snapshots object name/);
      expect(requests).toEqual(['GET /snapshots/']);
      await b.close();
    });

    it('never follows a redirect', async () => {
      requests = [];
      reply = () => ({ status: 307, headers: { location: 'http://127.0.0.1:1/elsewhere' } });
      const b = new RestBackend(base, { token: async () => TOKEN });
      const err = await expectCode(b.load({ type: 'keys', name: 'k' }), 'READ_ERROR');
      expect(err.message).toMatch(/redirect \(307\); redirects are never followed/);
      await expectCode(b.save({ type: 'keys', name: 'k' }, Buffer.from('x')), 'WRITE_ERROR');
      expect(requests).toEqual(['GET /keys/k', 'POST /keys/k']);
      await b.close();
    });

    it('takes a short ranged reply for a range beyond the end', async () => {
      reply = () => ({ status: 206, headers: { 'content-range': 'bytes 90-99/100' }, body: 'x'.repeat(10) });
      const b = new RestBackend(base, { token: async () => TOKEN });
      await expectCode(b.load({ type: 'data', name: 'p' }, { offset: 90, length: 20 }), 'REPO_CORRUPT');
      await b.close();
    });
  });
});

describe('rest: behind the retry wrapper, against an append-only server', () => {
  it('settles a save and a create-only save whose answers were lost: each object stored once, as sent', async () => {
    const s = await served(true);
    try {
      const rest = new RestBackend(`rest:${s.clientUrl}`, { token: async () => TOKEN, caCert: tls().caFile });
      await rest.create();
      // the first save and saveNew reach the server, then their answers are lost (a reset connection)
      const lost = new Set<string>();
      const losing = new Proxy(rest, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof value !== 'function') return value;
          if (prop !== 'save' && prop !== 'saveNew') return value.bind(target);
          return async (...args: unknown[]) => {
            await (value as (...a: unknown[]) => Promise<void>).apply(target, args);
            if (lost.has(prop)) return;
            lost.add(prop);
            throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
          };
        },
      }) as Backend;
      const retried: string[] = [];
      const backend = new RetryBackend(losing, { sleep: async () => {}, onRetry: (what) => retried.push(what) });
      const snapshot = { type: 'snapshots' as const, name: randomName() };
      const entry = { type: 'audit' as const, name: '0000000001' };
      await backend.save(snapshot, Buffer.from('sealed snapshot bytes'));
      await backend.saveNew(entry, Buffer.from('sealed audit entry'));
      expect(retried).toHaveLength(2);
      expect((await rest.load(snapshot)).toString()).toBe('sealed snapshot bytes');
      expect((await rest.load(entry)).toString()).toBe('sealed audit entry');
      // and a different object under a name that is taken is still refused
      await expectCode(rest.save(snapshot, Buffer.from('other bytes')), 'ACCESS_DENIED');
      await expectCode(rest.saveNew(entry, Buffer.from('other bytes')), 'ALREADY_EXISTS');
    } finally {
      await s.close();
    }
  });
});

describe('rest: behind the retry wrapper, against a server that fails transiently', () => {
  it('tries again after a 5xx and after a reply cut short, and takes the answer that follows', async () => {
    const body = Buffer.from('the whole object');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      const nth = seen.filter((s) => s === `${req.method} ${req.url}`).length;
      if (req.url?.startsWith('/keys/')) return void res.writeHead(400).end('bad request');
      if (req.method === 'POST' && nth === 1) return void res.writeHead(500).end('internal server error');
      if (req.method === 'POST' && nth === 2) return void res.writeHead(503).end('unavailable');
      if (req.method === 'POST') return void res.writeHead(201).end();
      res.writeHead(200, { 'content-length': String(body.length) });
      // the first reply stops half way: the connection drops under it
      if (nth === 1) return void res.write(body.subarray(0, 5), () => res.destroy());
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const retried: string[] = [];
      const backend = new RetryBackend(
        new RestBackend(`rest:http://127.0.0.1:${port}/`, { token: async () => TOKEN }),
        {
          sleep: async () => {},
          onRetry: (what, _attempt, err) => retried.push(`${what}: ${(err as Error).message}`),
        },
      );
      const h = { type: 'snapshots' as const, name: randomName() };
      await backend.save(h, body);
      expect((await backend.load(h)).equals(body)).toBe(true);
      expect(retried).toEqual([
        expect.stringMatching(/^save snapshots\/\w+: .*the server answered 500: internal server error$/),
        expect.stringMatching(/^save snapshots\/\w+: .*the server answered 503: unavailable$/),
        expect.stringMatching(/^load snapshots\/\w+: .*(closed mid-reply|ended after 5 of 16 bytes)/),
      ]);
      // a 4xx is the server's final word
      await expectCode(backend.save({ type: 'keys', name: randomName() }, body), 'WRITE_ERROR');
      expect(retried).toHaveLength(3);
      await backend.close();
    } finally {
      server.close();
    }
  });
});
