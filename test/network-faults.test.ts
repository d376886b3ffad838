/**
 * The network backends through a faulty network, one suite for all three: S3 (Swift's s3api over TLS), SFTP
 * (OpenSSH) and rest: (`serve-repo --append-only` over TLS), each reached through a TCP proxy
 * (test/servers/fault-proxy.ts) that cuts connections mid-request and mid-reply, resets new connections and slows
 * the server's replies down, TLS and SSH passing through it untouched. Through the real CLI: a backup and a copy
 * either finish after retries or fail with an error a user can act on (exit 1, the error's code, a hint, no stack
 * trace); `check --read-data` is clean afterwards, and a rerun completes; so does a copy killed with SIGKILL
 * mid-upload. Restore and verify finish from a slow server. Then serve-repo killed with SIGKILL mid-upload, and a
 * serve-repo whose disk fails every third write (500s, a server-side fault: TLS keeps the proxy from writing one).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectHandle } from '../src/backend/backend.js';
import { LocalBackend } from '../src/backend/local.js';
import { sleep } from '../src/concurrency/sleep.js';
import { serveRepository } from '../src/server/serve.js';
import { type CliResult, runCli, spawnCli, waitExit } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree, makeFoleTree } from './restore-helpers.js';
import { startFaultProxy, type FaultProxy } from './servers/fault-proxy.js';
import { startServeRepo, type ServedRepo } from './servers/serve-repo.js';
import { skipWithout } from './servers/shared.js';
import { sshdMissing, startSshd, type SshdServer } from './servers/sshd.js';
import { startSwiftInEnv, swiftMissing, type SwiftServer } from './servers/swift.js';
import { makeTestCertificates, type TestCertificates } from './tls-helpers.js';

/** A repository location on a target's server, reached through a proxy on `port`. */
interface Place {
  /** Where the server listens (the proxy's upstream). */
  upstreamPort: number;
  location(port: number): string;
  /** The CLI flags and environment the location needs. */
  flags(port: number): string[];
  env: Record<string, string>;
}

interface Target {
  name: string;
  missing: string | undefined;
  start(work: string): Promise<void>;
  stop(): Promise<void>;
  /** A fresh, empty location named `name`. */
  fresh(name: string): Promise<Place>;
}

const s3: Target = (() => {
  let swift: SwiftServer | undefined;
  return {
    name: 's3',
    missing: swiftMissing(),
    async start() {
      swift = await startSwiftInEnv();
    },
    stop: async () => swift?.stop(),
    async fresh(name) {
      const server = swift as SwiftServer;
      return {
        upstreamPort: server.port,
        location: (port) => `s3:https://127.0.0.1:${port}/faults/${name}`,
        flags: () => ['--ca-cert', server.caFile],
        env: server.env,
      };
    },
  };
})();

const sftp: Target = (() => {
  let sshd: SshdServer | undefined;
  let knownHosts = '';
  return {
    name: 'sftp',
    missing: sshdMissing(),
    async start(work) {
      sshd = await startSshd();
      knownHosts = join(work, 'known_hosts');
      writeFileSync(knownHosts, `${sshd.hostKeyLine}\n`);
    },
    stop: async () => sshd?.stop(),
    async fresh(name) {
      const server = sshd as SshdServer;
      return {
        upstreamPort: server.port,
        location: (port) => `sftp://${server.user}@127.0.0.1:${port}${join(server.home, name)}`,
        flags: (port) => {
          // the proxy's port is another host entry, with the server's key
          const line = `[127.0.0.1]:${port} ${server.hostKeyLine.split(' ').slice(1).join(' ')}\n`;
          if (!readFileSync(knownHosts, 'utf8').includes(line)) writeFileSync(knownHosts, line, { flag: 'a' });
          return ['--ssh-key', server.clientKey, '--ssh-known-hosts', knownHosts];
        },
        env: {},
      };
    },
  };
})();

const rest: Target = (() => {
  let certs: TestCertificates | undefined;
  let dir = '';
  const servers: ServedRepo[] = [];
  return {
    name: 'rest',
    missing: undefined,
    async start(work) {
      certs = makeTestCertificates();
      dir = join(work, 'rest');
      mkdirSync(dir);
    },
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
      if (certs !== undefined) rmSync(certs.dir, { recursive: true, force: true });
    },
    async fresh(name) {
      const tls = certs as TestCertificates;
      const served = await startServeRepo(join(dir, name), tls);
      servers.push(served);
      return {
        upstreamPort: served.port,
        location: (port) => `rest:https://127.0.0.1:${port}/`,
        flags: () => ['--ca-cert', tls.caFile],
        env: { FOLE_BACKUP_REST_TOKEN: served.token },
      };
    },
  };
})();

const TARGETS = [s3, sftp, rest].filter((t) => !skipWithout(t.missing, `the ${t.name} fault tests`));

let work: string;
/** A local repository with one backup of a FOLE tree (6 MiB, one pack): what the copies copy. */
let source: { repoDir: string; backupId: string; root: string };

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fole-net-faults-'));
  const made = await backedUpFoleTree(join(work, 'a'), { bigBytes: 6 << 20 });
  source = { ...made, root: join(work, 'a', 'src') };
}, 60_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The CLI on `place` through `proxy`, run to its end or started (a copy's source is the local repository). */
function cliThrough(place: Place, proxy: FaultProxy) {
  const argv = (args: string[]): string[] => [
    ...args,
    '--repo',
    place.location(proxy.port),
    ...place.flags(proxy.port),
  ];
  const env = { FOLE_BACKUP_PASSWORD: TEST_PASSWORD, FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD, ...place.env };
  return Object.assign((args: string[]): Promise<CliResult> => runCli(argv(args), env), {
    spawn: (args: string[]): ChildProcess => spawnCli(argv(args), env),
  });
}

const backupArgs = (root: string): string[] => ['backup', '--storage-root', root, '--fole-version', '2.3.1', '--json'];

/** A command that finished after retrying what the faults broke. */
function expectRetried(r: CliResult): void {
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/; retrying \(attempt \d\)/);
}

/** A command that failed as a user can act on: exit 1, a read or write error with a hint, no stack trace. */
function expectClearFailure(r: Pick<CliResult, 'code' | 'stderr'>): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/^fole-backup: error (READ_ERROR|WRITE_ERROR): \S.*$/m);
  expect(r.stderr).toMatch(/^ {2}hint: \S/m);
  expect(r.stderr).not.toMatch(/^\s+at |INTERNAL/m);
}

async function expectCleanCheck(cli: (args: string[]) => Promise<CliResult>): Promise<void> {
  const check = await cli(['check', '--read-data']);
  expect(check.code, check.stdout + check.stderr).toBe(0);
}

/**
 * Each describe below runs beside the others (their commands mostly wait: on retries' pauses, on the servers), so
 * a test's time includes theirs; a target's own tests run one after the other.
 */
const TIMEOUT = 240_000;

describe.concurrent.each(TARGETS)(
  '$name through a faulty network',
  (target) => {
    let proxies: FaultProxy[] = [];
    /** The tree this target's backups back up: its own, as a backup holds the storage lock of its tree. */
    let root: string;

    beforeAll(async () => {
      root = join(work, `tree-${target.name}`);
      makeFoleTree(root, { bigBytes: 6 << 20 }).core.db.close();
      await target.start(work);
    }, 120_000);

    afterAll(async () => {
      await Promise.all(proxies.map((p) => p.close()));
      proxies = [];
      await target.stop();
    });

    /** A fresh repository on the target, the proxy in front of its server, and the CLI through the proxy. */
    async function faulty(name: string) {
      const place = await target.fresh(name);
      const proxy = await startFaultProxy(place.upstreamPort);
      proxies.push(proxy);
      return { place, proxy, cli: cliThrough(place, proxy) };
    }

    /** The backup test's repository and its last backup, once it passed. */
    let backedUp: (Awaited<ReturnType<typeof faulty>> & { backupId: string }) | undefined;

    it.sequential('backs up through cut links; fails clearly when unreachable; reruns, checks clean', async () => {
      const f = await faulty('backup');
      const init = await f.cli(['init']);
      expect(init.code, init.stderr).toBe(0);
      f.proxy.cutAfter('toServer', 1 << 20, 2);
      f.proxy.cutAfter('toClient', 3000, 1);
      expectRetried(await f.cli(backupArgs(root)));
      expect(f.proxy.fired.cuts).toBe(3);
      // then every connection is refused (reset as it arrives) for longer than the retries last
      f.proxy.resetNew(Number.POSITIVE_INFINITY);
      f.proxy.dropAll();
      expectClearFailure(await f.cli(backupArgs(root)));
      f.proxy.clear();
      const again = await f.cli(backupArgs(root));
      expect(again.code, again.stderr).toBe(0);
      await expectCleanCheck(f.cli);
      backedUp = { ...f, backupId: (JSON.parse(again.stdout) as { backupId: string }).backupId };
    });

    it.sequential('restores byte for byte, verifies every byte, from a slow server cutting replies short', async () => {
      const f = backedUp;
      if (f === undefined) throw new Error('the backup test failed: there is nothing to restore');
      f.proxy.slow(2, 32 * 1024);
      f.proxy.cutAfter('toClient', 2 << 20, 2);
      const verify = await f.cli(['verify', 'latest', '--read-data']);
      expectRetried(verify);
      f.proxy.cutAfter('toClient', 2 << 20, 1);
      const restored = join(work, `restored-${target.name}`);
      const id = f.backupId;
      const r = await f.cli(['restore', id, '--target', restored, '--confirm', id, '--fole-version', '2.3.1']);
      expectRetried(r);
      expect(f.proxy.fired.cuts).toBe(3 + 3);
      for (const file of ['projects/p1/files/big.bin', 'config/server.json']) {
        expect(readFileSync(join(restored, file)).equals(readFileSync(join(root, file))), file).toBe(true);
      }
      f.proxy.clear();
    });

    it.sequential('copies through cut and reset connections; the target holds the backup, checks clean', async () => {
      const f = await faulty('copy');
      const init = await f.cli(['init', '--from-repo', source.repoDir]);
      expect(init.code, init.stderr).toBe(0);
      f.proxy.cutAfter('toServer', 1 << 20, 1);
      f.proxy.cutAfter('toClient', 2000, 1);
      const copy = await f.cli(['copy', '--from-repo', source.repoDir, '--json']);
      expectRetried(copy);
      expect(JSON.parse(copy.stdout).copied.map((c: { backupId: string }) => c.backupId)).toEqual([source.backupId]);
      // then every new connection is reset twice, and the ones open are dropped
      f.proxy.resetNew(2);
      f.proxy.dropAll();
      const again = await f.cli(['copy', '--from-repo', source.repoDir, '--json']);
      expectRetried(again);
      expect(JSON.parse(again.stdout)).toMatchObject({ copied: [], skipped: [source.backupId] });
      expect(f.proxy.fired).toMatchObject({ cuts: 2, resets: 2 });
      await expectCleanCheck(f.cli);
    });

    it.sequential('a copy killed with SIGKILL mid-upload leaves the target valid; the rerun completes it', async () => {
      const f = await faulty('killed-copy');
      const init = await f.cli(['init', '--from-repo', source.repoDir]);
      expect(init.code, init.stderr).toBe(0);
      const args = ['copy', '--from-repo', source.repoDir, '--json'];
      const child = f.cli.spawn(args);
      const exited = waitExit(child);
      // half of the source's big file gone up: a pack is being uploaded
      const from = f.proxy.carried.toServer;
      while (f.proxy.carried.toServer - from < 3 << 20) {
        if (child.exitCode !== null) throw new Error('the copy ended before it was killed');
        await sleep(5);
      }
      child.kill('SIGKILL');
      expect((await exited).signal).toBe('SIGKILL');
      const mid = await f.cli(['list', '--json']);
      expect(mid.code, mid.stderr).toBe(0);
      expect(mid.stdout).not.toContain(source.backupId);
      const rerun = await f.cli(args);
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(JSON.parse(rerun.stdout).copied.map((c: { backupId: string }) => c.backupId)).toEqual([source.backupId]);
      await expectCleanCheck(f.cli);
    });
  },
  TIMEOUT,
);

describe.concurrent(
  'serve-repo killed with SIGKILL mid-upload',
  () => {
    let certs: TestCertificates;
    /** A local repository whose one backup fills several packs, and the tree it was made of. */
    let big: { repoDir: string; backupId: string; root: string };
    const servers: ServedRepo[] = [];

    beforeAll(async () => {
      certs = makeTestCertificates();
      const made = await backedUpFoleTree(join(work, 'big'), { bigBytes: 20 << 20 });
      big = { ...made, root: join(work, 'big', 'src') };
    }, 60_000);

    afterAll(async () => {
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(certs.dir, { recursive: true, force: true });
    });

    /** serve-repo on a fresh directory, the CLI on it, and a command to start in the background. */
    async function served(name: string) {
      const dir = join(work, name);
      const server = await startServeRepo(dir, certs);
      servers.push(server);
      const args = (a: string[]): string[] => [
        ...a,
        '--repo',
        `rest:https://127.0.0.1:${server.port}/`,
        '--ca-cert',
        certs.caFile,
      ];
      const env = {
        FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
        FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD,
        FOLE_BACKUP_REST_TOKEN: server.token,
      };
      return {
        dir,
        server,
        cli: (a: string[]) => runCli(args(a), env),
        spawn: (a: string[]) => spawnCli(args(a), env),
      };
    }

    /** Runs `child` until a pack is being uploaded into `dir`, kills the server, and returns how the child ended. */
    async function killServerMidUpload(s: Awaited<ReturnType<typeof served>>, child: ChildProcess) {
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = waitExit(child);
      const uploading = (): boolean => {
        try {
          return readdirSync(join(s.dir, 'data'), { recursive: true, encoding: 'utf8' }).some((f) =>
            f.includes('.tmp-'),
          );
        } catch {
          return false;
        }
      };
      while (!uploading()) {
        if (child.exitCode !== null) throw new Error(`the command ended before it uploaded a pack:\n${stderr}`);
        await sleep(10);
      }
      await s.server.kill();
      return { exited, output: () => ({ stdout, stderr }) };
    }

    /** The restored tree's big file and a small one are those backed up. */
    async function expectRestored(cli: (a: string[]) => Promise<CliResult>, backupId: string, target: string) {
      const r = await cli(['restore', backupId, '--target', target, '--confirm', backupId, '--fole-version', '2.3.1']);
      expect(r.code, r.stderr).toBe(0);
      for (const file of ['projects/p1/files/big.bin', 'config/server.json']) {
        expect(readFileSync(join(target, file)).equals(readFileSync(join(big.root, file))), file).toBe(true);
      }
    }

    it('fails the backup clearly; restarted, the server takes the rerun; checks clean, restores exactly', async () => {
      const s = await served('serve-killed-backup');
      expect((await s.cli(['init'])).code).toBe(0);
      const args = ['backup', '--storage-root', big.root, '--fole-version', '2.3.1', '--json'];
      const killed = await killServerMidUpload(s, s.spawn(args));
      const how = await killed.exited;
      expectClearFailure({ ...how, ...killed.output() });
      await s.server.restart();
      const rerun = await s.cli(args);
      expect(rerun.code, rerun.stderr).toBe(0);
      await expectCleanCheck(s.cli);
      await expectRestored(
        s.cli,
        (JSON.parse(rerun.stdout) as { backupId: string }).backupId,
        join(work, 'restored-killed'),
      );
    });

    it('a copy the server dies under and comes back to finishes or fails clearly; the rerun completes it', async () => {
      const s = await served('serve-killed-copy');
      expect((await s.cli(['init', '--from-repo', big.repoDir])).code).toBe(0);
      const args = ['copy', '--from-repo', big.repoDir, '--json'];
      const killed = await killServerMidUpload(s, s.spawn(args));
      // back at once: the copy's retries may reach it, or run out first
      await s.server.restart();
      const how = await killed.exited;
      if (how.code !== 0) expectClearFailure({ ...how, ...killed.output() });
      const rerun = await s.cli(args);
      expect(rerun.code, rerun.stderr).toBe(0);
      const list = await s.cli(['list', '--json']);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toContain(big.backupId);
      await expectCleanCheck(s.cli);
      await expectRestored(s.cli, big.backupId, join(work, 'restored-killed-copy'));
    });
  },
  TIMEOUT,
);

describe.concurrent(
  'serve-repo whose disk fails every third upload (HTTP 500)',
  () => {
    /** A server-side fault: every third upload is read whole, then fails as a disk would; serve-repo answers 500. */
    class EveryThirdUploadFails extends LocalBackend {
      uploads = 0;
      override async saveFrom(h: ObjectHandle, body: AsyncIterable<Uint8Array>, opts: { createOnly: boolean }) {
        if (++this.uploads % 3 !== 0) return super.saveFrom(h, body, opts);
        for await (const _ of body) {
          // the whole request arrives: the client gets the server's answer, not a dropped connection
        }
        throw Object.assign(new Error('EIO: i/o error, write (injected)'), { code: 'EIO' });
      }
    }

    it('finishes a backup and a copy after retrying the 500s; both repositories check clean', async () => {
      const certs = makeTestCertificates();
      const token = 'client-token-0123456789abcdef';
      const log: string[] = [];
      const running = [];
      try {
        for (const command of ['backup', 'copy'] as const) {
          const server = await serveRepository({
            backend: new EveryThirdUploadFails(join(work, `failing-${command}`)),
            appendOnly: true,
            listen: { host: '127.0.0.1', port: 0, tokens: [token] },
            tls: { cert: certs.cert, key: certs.key },
            log: (line) => log.push(line),
          });
          running.push(server);
          const cli = (args: string[]) =>
            runCli([...args, '--repo', `rest:${server.url}`, '--ca-cert', certs.caFile], {
              FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
              FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD,
              FOLE_BACKUP_REST_TOKEN: token,
            });
          const init = await cli(command === 'copy' ? ['init', '--from-repo', source.repoDir] : ['init']);
          expectRetried(init);
          const r = await cli(
            command === 'copy' ? ['copy', '--from-repo', source.repoDir, '--json'] : backupArgs(source.root),
          );
          expectRetried(r);
          expect(r.stderr).toMatch(/the server answered 500: internal server error; retrying/);
          await expectCleanCheck(cli);
        }
        expect(log.filter((l) => / POST \S+ 500 .*injected/.test(l)).length).toBeGreaterThan(4);
      } finally {
        await Promise.all(running.map((s) => s.close()));
        rmSync(certs.dir, { recursive: true, force: true });
      }
    });
  },
  TIMEOUT,
);
