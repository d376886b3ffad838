/**
 * `fole-backup serve-repo` as a test server: the real CLI in its own process, over TLS (a CA made by openssl),
 * append-only, on a port of 127.0.0.1 that stays the same when the test kills it (SIGKILL) and starts it again on
 * the same repository directory.
 *
 *   const served = await startServeRepo(dir, certs);
 *   … --repo rest:https://127.0.0.1:${served.port}/ --ca-cert certs.caFile, FOLE_BACKUP_REST_TOKEN=served.token …
 *   await served.kill(); await served.restart();
 *   await served.stop();
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { type CliExit, spawnCli, waitExit } from '../cli-helpers.js';
import type { TestCertificates } from '../tls-helpers.js';
import { freePort } from './shared.js';

export interface ServedRepo {
  port: number;
  /** The client token the server accepts. */
  token: string;
  /** Everything the server logged on stderr, one line a request, over all its runs. */
  readonly log: string;
  /** Kill the server with SIGKILL, as a crash would: uploads under way are cut, their temp files stay. */
  kill(): Promise<void>;
  /** Start it again on the same directory and port; resolves when it listens. */
  restart(): Promise<void>;
  /** Stop it (SIGTERM). Safe to call twice. */
  stop(): Promise<void>;
}

/** serve-repo --append-only for the repository directory `dir` (made by the first init through it). */
export async function startServeRepo(dir: string, certs: TestCertificates): Promise<ServedRepo> {
  const port = await freePort();
  const token = randomBytes(24).toString('base64url');
  const tokenFile = `${dir}.token`;
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  let log = '';
  let child: ChildProcess | undefined;
  let exited: Promise<CliExit> | undefined;
  const start = async (): Promise<void> => {
    const p = spawnCli([
      'serve-repo',
      '--repo',
      dir,
      '--append-only',
      '--listen',
      `127.0.0.1:${port}`,
      '--token-file',
      tokenFile,
      '--tls-cert',
      certs.certFile,
      '--tls-key',
      certs.keyFile,
    ]);
    child = p;
    exited = waitExit(p);
    const before = log.length;
    await new Promise<void>((resolve, reject) => {
      p.stderr?.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.slice(before).includes('serve-repo: serving')) resolve();
      });
      void exited?.then(() => reject(new Error(`serve-repo ended:\n${log.slice(before)}`)));
    });
  };
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const p = child;
    child = undefined;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    p.kill(signal);
    await exited;
  };
  await start();
  return {
    port,
    token,
    get log() {
      return log;
    },
    kill: () => end('SIGKILL'),
    restart: start,
    stop: () => end('SIGTERM'),
  };
}
