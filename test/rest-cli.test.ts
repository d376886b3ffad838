/**
 * An append-only offsite copy as it is run: `fole-backup serve-repo --append-only` in its own process over TLS
 * (a CA made by openssl), the FOLE host backing up to it through the real CLI, then an attacker holding the FOLE
 * host's token trying everything that would destroy the copies: raw deletes and overwrites, lock names that
 * escape locks/, another client's lock, `forget --prune`. Every attempt is refused and logged, the repository
 * checks clean afterwards, and forget+prune with the admin token on the admin listener works.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, waitExit, type CliExit } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { initBackupRestore } from './life-cycle.js';
import { makeFoleTree } from './restore-helpers.js';
import { makeTestCertificates, type TestCertificates } from './tls-helpers.js';

const CLIENT_TOKEN = randomBytes(24).toString('base64url');
const OTHER_CLIENT_TOKEN = randomBytes(24).toString('base64url');
const ADMIN_TOKEN = randomBytes(24).toString('base64url');

let work: string;
let root: string;
let repoDir: string;
let certs: TestCertificates;
let server: ChildProcess;
let serverExit: Promise<CliExit>;
let serverLog = '';
let url: string;
let adminUrl: string;

const env = (token: string): Record<string, string> => ({
  FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
  FOLE_BACKUP_REST_TOKEN: token,
});
const cli = (args: string[], token = CLIENT_TOKEN, at = url) =>
  runCli([...args, '--repo', `rest:${at}`, '--ca-cert', certs.caFile], env(token));

/** One raw HTTPS request to the server, as an attacker would send it. */
function raw(
  method: string,
  path: string,
  o: { token?: string | null; body?: Buffer; headers?: Record<string, string>; at?: string } = {},
): Promise<{ status: number; body: string }> {
  const token = o.token === undefined ? CLIENT_TOKEN : o.token;
  return new Promise((resolve, reject) => {
    // host, port and path given apart: a URL string would be normalized (`%2e%2e` is `..`) before it is sent
    const base = new URL(o.at ?? url);
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        path,
        method,
        ca: readFileSync(certs.caFile),
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          'content-length': String(o.body?.length ?? 0),
          ...o.headers,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Every file of the repository directory with its size and content hash, to show nothing changed. */
function snapshotOfRepo(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(repoDir, { recursive: true, encoding: 'utf8' })) {
    const p = join(repoDir, f);
    if (f.startsWith('locks') || f.startsWith('audit') || !statSync(p).isFile()) continue;
    out.set(f, readFileSync(p).toString('base64'));
  }
  return out;
}

const firstName = (type: string): string => {
  const dir = join(repoDir, type);
  const names = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => statSync(join(dir, n)).isFile());
  return (names[0] as string).split('/').pop() as string;
};

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-rest-cli-'));
  certs = makeTestCertificates();
  root = join(work, 'storage');
  makeFoleTree(root, { bigBytes: 300_000 }).core.db.close();
  repoDir = join(work, 'offsite');
  const file = (name: string, token: string): string => {
    writeFileSync(join(work, name), `${token}\n`, { mode: 0o600 });
    return join(work, name);
  };
  server = spawnCli([
    'serve-repo',
    '--repo',
    repoDir,
    '--append-only',
    '--listen',
    '127.0.0.1:0',
    '--token-file',
    file('client.token', CLIENT_TOKEN),
    '--token-file',
    file('other.token', OTHER_CLIENT_TOKEN),
    '--admin-listen',
    '127.0.0.1:0',
    '--admin-token-file',
    file('admin.token', ADMIN_TOKEN),
    '--tls-cert',
    certs.certFile,
    '--tls-key',
    certs.keyFile,
  ]);
  serverExit = waitExit(server);
  await new Promise<void>((resolve, reject) => {
    server.stderr?.on('data', (d: Buffer) => {
      serverLog += d.toString();
      const m = /at (https:\S+) \(append-only\)[\s\S]*admin listener at (https:\S+)/.exec(serverLog);
      if (m !== null && url === undefined) {
        url = m[1] as string;
        adminUrl = m[2] as string;
        resolve();
      }
    });
    void serverExit.then(() => reject(new Error(`serve-repo ended:\n${serverLog}`)));
  });
});

afterAll(async () => {
  server?.kill('SIGTERM');
  await serverExit;
  rmSync(work, { recursive: true, force: true });
  rmSync(certs.dir, { recursive: true, force: true });
});

describe('an append-only offsite repository behind serve-repo', () => {
  let backupId: string;

  it('takes init, backup, list, verify and a byte-exact restore through rest:', async () => {
    backupId = await initBackupRestore(cli, root, join(work, 'restored'));
    // no token reaches the server's log or the repository's audit log
    expect(serverLog).not.toContain(CLIENT_TOKEN);
    const audit = await cli(['audit', 'log', '--json']);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).not.toContain(CLIENT_TOKEN);
  });

  it('refuses all an attacker with the client token tries, logs it, and the repository stays intact', async () => {
    const before = snapshotOfRepo();
    const pack = firstName('data');
    const index = firstName('index');
    const key = firstName('keys');
    for (const path of [`/data/${pack}`, `/index/${index}`, `/snapshots/${backupId}`, `/keys/${key}`, '/config']) {
      expect((await raw('DELETE', path)).status, `DELETE ${path}`).toBe(403);
      expect((await raw('POST', path, { body: randomBytes(64) })).status, `POST ${path}`).toBe(403);
    }
    // a new pack whose bytes are not what its name says
    expect((await raw('POST', `/data/${randomBytes(32).toString('hex')}`, { body: randomBytes(64) })).status).toBe(400);
    for (const path of [
      '/locks/..%2fconfig',
      `/locks/..%2Fkeys%2F${key}`,
      '/locks/%2e%2e',
      '/locks/.hidden',
      '/locks/..',
      '/locks/a%2fb',
      '/locks/not-a-lock-id',
    ]) {
      expect((await raw('POST', path, { body: Buffer.from('x') })).status, `POST ${path}`).toBe(400);
      expect((await raw('DELETE', path)).status, `DELETE ${path}`).toBe(400);
    }
    // another client's lock (its own token) is not the attacker's to remove
    const lock = randomBytes(16).toString('hex');
    expect((await raw('POST', `/locks/${lock}`, { token: OTHER_CLIENT_TOKEN, body: Buffer.from('x') })).status).toBe(
      201,
    );
    expect((await raw('DELETE', `/locks/${lock}`)).status).toBe(403);
    expect((await raw('DELETE', `/locks/${lock}`, { token: OTHER_CLIENT_TOKEN })).status).toBe(204);
    // wrong, missing, and the admin token on this listener
    expect((await raw('GET', '/keys/', { token: 'x'.repeat(32) })).status).toBe(401);
    expect((await raw('GET', '/keys/', { token: null })).status).toBe(401);
    expect((await raw('DELETE', `/data/${pack}`, { token: ADMIN_TOKEN })).status).toBe(401);
    // and the client's token on the admin listener
    expect((await raw('DELETE', `/data/${pack}`, { at: adminUrl })).status).toBe(401);

    const forget = await cli(['forget', backupId, '--allow-remove-all', '--prune', '--min-pack-age', '0']);
    expect(forget.code).not.toBe(0);
    expect(forget.stderr).toMatch(/ACCESS_DENIED|403/);

    expect(snapshotOfRepo()).toEqual(before);
    const check = await cli(['check', '--read-data']);
    expect(check.code, check.stderr).toBe(0);
    expect(serverLog).toMatch(new RegExp(`DELETE /data/${pack} 403 .*refused: append-only: only locks`));
    expect(serverLog).toMatch(/POST \/locks\/\.\.%2fconfig 400 .*refused: bad path/);
    expect(serverLog).toMatch(/DELETE \/locks\/[0-9a-f]{32} 403 .*refused: .*only by the token that created it/);
    expect(serverLog).toMatch(/401 .*refused: a token of another listener/);
    expect(serverLog).toMatch(/401 .*refused: wrong token/);
    for (const t of [CLIENT_TOKEN, OTHER_CLIENT_TOKEN, ADMIN_TOKEN]) expect(serverLog).not.toContain(t);
  });

  it('runs forget and prune with the admin token on the admin listener', async () => {
    const second = await cli(['backup', '--storage-root', root, '--fole-version', '2.3.1', '--json']);
    expect(second.code, second.stderr).toBe(0);
    const f = await cli(['forget', '--keep-last', '1', '--prune', '--min-pack-age', '0'], ADMIN_TOKEN, adminUrl);
    expect(f.code, f.stderr).toBe(0);
    const list = await cli(['list', '--json']);
    expect(list.stdout).not.toContain(backupId);
    const check = await cli(['check', '--read-data']);
    expect(check.code, check.stderr).toBe(0);
  });

  it('refuses, through the CLI, a server that lists ../x: a clear error and nothing written', async () => {
    const config = readFileSync(join(repoDir, 'config'));
    const seen: string[] = [];
    const fake = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/config') res.writeHead(200, { 'content-length': String(config.length) }).end(config);
      else if (req.url?.endsWith('/')) res.writeHead(200).end(JSON.stringify([{ name: '../x', size: 1, mtime: 0 }]));
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const port = (fake.address() as AddressInfo).port;
      const target = join(work, 'not-restored');
      const r = await runCli(
        [
          'restore',
          'latest',
          '--repo',
          `rest:http://127.0.0.1:${port}/`,
          '--target',
          target,
          '--fole-version',
          '2.3.1',
        ],
        env(CLIENT_TOKEN),
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the server's listing is refused: it names "\.\.\/x"/);
      expect(seen.filter((s) => !s.startsWith('GET ') && !s.startsWith('HEAD '))).toEqual([]);
      expect(() => statSync(target)).toThrow();
    } finally {
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });
});
