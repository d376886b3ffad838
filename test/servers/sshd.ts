/**
 * A real SSH server for tests: Debian's OpenSSH sshd on 127.0.0.1, with its own host key, config and
 * authorized key in a temporary directory, and the internal SFTP server. See
 * ../../../shared/MACHINE_NOTES.md ("Real servers for tests").
 *
 *   const sshd = await startSshd();   // or skip when sshdMissing() names a missing program
 *   … sftp://${sshd.user}@127.0.0.1:${sshd.port}${dir}
 *     with --ssh-key sshd.clientKey --ssh-known-hosts sshd.knownHosts
 *   await sshd.stop();
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, run } from './shared.js';
const SSHD = '/usr/sbin/sshd';

export interface SshdServer {
  port: number;
  /** The user the client logs in as (the one running the tests). */
  user: string;
  /** A folder the tests may fill (repositories go under it). */
  home: string;
  /** The client's private key (ed25519, unencrypted) the server accepts. */
  clientKey: string;
  /** A known_hosts file that holds the server's host key for [127.0.0.1]:port. */
  knownHosts: string;
  /** The host key line as `ssh-keyscan` would give it, to build other known_hosts files. */
  hostKeyLine: string;
  /** The server's process, for tests that kill it. */
  process: ChildProcess;
  /** Stop the server (it is started again with restart) and remove the directory. Safe to call twice. */
  stop(): Promise<void>;
  /** Start the server again on the same port, after the test killed it. */
  restart(): Promise<void>;
}

/** The first missing program the server needs (tests skip, loudly, naming it), or undefined. */
export function sshdMissing(): string | undefined {
  if (!existsSync(SSHD)) return SSHD;
  if (!existsSync('/usr/bin/ssh-keygen')) return 'ssh-keygen';
  return undefined;
}

/** Resolves once something answers on the port with an SSH banner. */
async function waitForBanner(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString('latin1').startsWith('SSH-'));
      });
      s.once('error', () => resolve(false));
      s.setTimeout(1000, () => {
        s.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startSshd(): Promise<SshdServer> {
  const dir = await mkdtemp(join(tmpdir(), 'fole-sshd-'));
  await chmod(dir, 0o755);
  const home = join(dir, 'home');
  await mkdir(home, { mode: 0o700 });
  const port = await freePort();
  const user = userInfo().username;
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client_key.pub')), { mode: 0o600 });
  const hostPub = (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const hostKeyLine = `[127.0.0.1]:${port} ${hostPub}`;
  await writeFile(join(dir, 'known_hosts'), `${hostKeyLine}\n`);
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  // sshd insists on its privilege separation folder when started as root
  if (process.getuid?.() === 0) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const p = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child = p;
    try {
      await waitForBanner(port, Date.now() + 15_000);
    } catch (err) {
      p.kill('SIGKILL');
      throw new Error(`${(err as Error).message}: ${stderr}`);
    }
  };
  await start();
  const server: SshdServer = {
    port,
    user,
    home,
    clientKey: join(dir, 'client_key'),
    knownHosts: join(dir, 'known_hosts'),
    hostKeyLine,
    get process() {
      return child as ChildProcess;
    },
    restart: start,
    async stop() {
      const p = child;
      child = undefined;
      if (p !== undefined && p.exitCode === null) {
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
