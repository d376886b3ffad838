/**
 * A real S3 server for tests: Debian's OpenStack Swift with its s3api middleware, over TLS, on 127.0.0.1.
 * Everything lives in a temporary directory made per server: a CA and a server certificate made with openssl,
 * one-device rings, the account, container and object servers, the proxy and memcached (without which every
 * request is a 500), each on its own free port. What the server does and does not do: docs/BACKENDS.md.
 *
 *   const swift = await startSwiftInEnv();   // or skip when swiftMissing() names a missing binary
 *   … s3:https://127.0.0.1:${swift.port}/bucket with swift.env (credentials, AWS_CA_BUNDLE) …
 *   await swift.stop();
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, run } from './shared.js';

const BINARIES = [
  'swift-proxy-server',
  'swift-account-server',
  'swift-container-server',
  'swift-object-server',
  'memcached',
  'openssl',
  'python3',
];

/** The tempauth user the proxy knows: the S3 access key; its secret is made per server (tests look for it). */
const ACCESS_KEY = 'test:tester';

export interface SwiftServer {
  /** The proxy's port on 127.0.0.1 (HTTPS). */
  port: number;
  /** `https://127.0.0.1:PORT` */
  endpoint: string;
  /** The PEM file of the CA that signed the proxy's certificate. */
  caFile: string;
  /** The secret access key, random per server, so a test can prove it never appears anywhere. */
  secret: string;
  /** The environment a client needs: credentials, region and the CA bundle. */
  env: Record<string, string>;
  /** How long the servers took to answer after they were started, in ms. */
  startupMs: number;
  /** Kill the proxy at once (SIGKILL), as a crash or a dropped server would: requests under way break. */
  killProxy(): Promise<void>;
  /** Start the proxy again after killProxy; resolves when it answers. */
  startProxy(): Promise<void>;
  /** Stop every process and remove the directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** The first missing program the server needs (tests skip, loudly, naming it), or undefined. */
export function swiftMissing(): string | undefined {
  const path = (process.env.PATH ?? '/usr/bin:/bin').split(':');
  return BINARIES.find((b) => !path.some((d) => existsSync(join(d, b))));
}

/** A CA and a certificate for 127.0.0.1 and localhost signed by it, made fresh. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.pem');
  const ext = join(dir, 'server.ext');
  const openssl = (...args: string[]) => run('openssl', args);
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=fole-backup test CA',
    '-keyout',
    caKey,
    '-out',
    ca,
  );
  await openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    key,
    '-out',
    csr,
  );
  await writeFile(
    ext,
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' +
      'subjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    cert,
  );
  return { ca, cert, key };
}

const RING_SCRIPT = `
import sys
from swift.common.ring import RingBuilder
swift_dir = sys.argv[1]
for kind, port in zip(('account', 'container', 'object'), sys.argv[2:5]):
    b = RingBuilder(10, 1, 1)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(port), 'device': 'd1',
               'weight': 100})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (swift_dir, kind))
`;

function storageConf(kind: string, port: number, dir: string, user: string): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${user}
swift_dir = ${dir}
devices = ${join(dir, 'devices')}
mount_check = false
disable_fallocate = true
log_level = WARNING

[pipeline:main]
pipeline = ${kind}-server

[app:${kind}-server]
use = egg:swift#${kind}
`;
}

const PIPELINE = [
  'catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk',
  's3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server',
].join(' ');

function proxyConf(
  port: number,
  memcachePort: number,
  dir: string,
  user: string,
  tls: { cert: string; key: string },
  secret: string,
) {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = ${user}
swift_dir = ${dir}
cert_file = ${tls.cert}
key_file = ${tls.key}
log_level = WARNING

[pipeline:main]
pipeline = ${PIPELINE}

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachePort}

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:s3api]
use = egg:swift#s3api

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${secret} .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
allow_object_versioning = true

[filter:symlink]
use = egg:swift#symlink
`;
}

/** The Python that runs Swift (its scripts' #! line): another python3 on PATH (pyenv) lacks Swift's modules. */
async function swiftPython(): Promise<string> {
  const path = (process.env.PATH ?? '/usr/bin:/bin').split(':');
  const script = path.map((d) => join(d, 'swift-proxy-server')).find((p) => existsSync(p));
  const first = script === undefined ? '' : ((await readFile(script, 'utf8')).split('\n')[0] ?? '');
  const m = /^#!\s*(\S+)/.exec(first);
  return m?.[1] ?? 'python3';
}

/** Resolves once `port` on 127.0.0.1 accepts a connection. */
function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

function healthy(port: number, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthcheck', ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Start memcached and the four Swift servers; resolves when all of them answer (60 s at most). */
export async function startSwift(): Promise<SwiftServer> {
  const missing = swiftMissing();
  if (missing !== undefined) throw new Error(`cannot start Swift: ${missing} is not installed`);
  const dir = await mkdtemp(join(tmpdir(), 'fole-swift-'));
  const children: ChildProcess[] = [];
  const logs: string[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once('exit', () => resolve());
              c.kill('SIGTERM');
              // a server that ignores SIGTERM is ended after a second
              setTimeout(() => c.kill('SIGKILL'), 1000).unref();
            }),
        ),
      );
      await rm(dir, { recursive: true, force: true });
    })());
  try {
    const started = Date.now();
    const secret = `fole-test-${randomBytes(12).toString('hex')}`;
    const user = (await run('id', ['-un'])).stdout.trim();
    const [proxy, account, container, object, memcache] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const ports = { proxy, account, container, object, memcache } as Record<string, number>;
    await mkdir(join(dir, 'devices', 'd1'), { recursive: true });
    const tls = await makeCertificates(dir);
    await writeFile(
      join(dir, 'swift.conf'),
      '[swift-hash]\nswift_hash_path_suffix = fole-test\nswift_hash_path_prefix = fole-test\n\n' +
        '[storage-policy:0]\nname = Policy-0\ndefault = yes\n',
    );
    await run(await swiftPython(), ['-c', RING_SCRIPT, dir, String(account), String(container), String(object)]);
    const spawnLogged = (cmd: string, args: string[]): ChildProcess => {
      const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (b: Buffer): void => {
        logs.push(`${cmd}: ${b.toString()}`);
        if (logs.length > 200) logs.shift();
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      children.push(child);
      return child;
    };
    spawnLogged('memcached', ['-l', '127.0.0.1', '-p', String(memcache), '-U', '0', '-u', user, '-m', '64']);
    for (const kind of ['account', 'container', 'object']) {
      const conf = join(dir, `${kind}-server.conf`);
      await writeFile(conf, storageConf(kind, ports[kind] as number, dir, user));
      spawnLogged(`swift-${kind}-server`, [conf]);
    }
    const conf = join(dir, 'proxy-server.conf');
    await writeFile(conf, proxyConf(proxy, memcache, dir, user, tls, secret));
    let proxyChild = spawnLogged('swift-proxy-server', [conf]);
    const ca = await readFile(tls.ca);
    const waitUp = async (): Promise<void> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const exited = children.find((c) => c.exitCode !== null || c.signalCode !== null);
        if (exited !== undefined) throw new Error(`a Swift server exited while starting:\n${logs.join('')}`);
        const up = await Promise.all([
          healthy(proxy, ca),
          connects(account),
          connects(container),
          connects(object),
          connects(memcache),
        ]);
        if (up.every(Boolean)) return;
        if (Date.now() > deadline) throw new Error(`Swift did not start within 60 s:\n${logs.join('')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await waitUp();
    const killProxy = async (): Promise<void> => {
      const child = proxyChild;
      children.splice(children.indexOf(child), 1);
      if (child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    };
    const startProxy = async (): Promise<void> => {
      proxyChild = spawnLogged('swift-proxy-server', [conf]);
      await waitUp();
    };
    const endpoint = `https://127.0.0.1:${proxy}`;
    return {
      port: proxy,
      endpoint,
      caFile: tls.ca,
      env: {
        AWS_ACCESS_KEY_ID: ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY: secret,
        AWS_REGION: 'us-east-1',
        AWS_CA_BUNDLE: tls.ca,
      },
      secret,
      startupMs: Date.now() - started,
      killProxy,
      startProxy,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * startSwift for a test file: the server's credentials, region and CA go into this process's environment (for the
 * test's own clients; the SDK reads them there) until stop(), and the startup time is printed.
 */
export async function startSwiftInEnv(): Promise<SwiftServer> {
  const server = await startSwift();
  console.info(`Swift started in ${server.startupMs} ms`);
  const saved = { ...process.env };
  Object.assign(process.env, server.env);
  return {
    ...server,
    stop: async () => {
      process.env = saved;
      await server.stop();
    },
  };
}
