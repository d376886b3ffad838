import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { fsError } from '../../errors.js';
import type { Runner } from '../context.js';
import { UsageError } from '../output.js';
import { collect } from '../repeatable.js';
import { readPasswordFile } from '../password-file.js';

interface ServeOptions {
  listen: string;
  tokenFile: string[];
  adminTokenFile?: string;
  adminListen?: string;
  appendOnly?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1)$/i;

/** `HOST:PORT` or `[V6]:PORT` as host and port. */
function parseAddress(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) {
    throw new UsageError(`${flag} must be HOST:PORT (e.g. 0.0.0.0:8443 or [::1]:8443), not ${JSON.stringify(value)}`);
  }
  return { host: (m[1] ?? m[2]) as string, port };
}

async function readToken(flag: string, file: string): Promise<string> {
  const { MIN_TOKEN_LENGTH } = await import('../../server/tokens.js');
  const token = (await readPasswordFile(file)).trim();
  if (token.length < MIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
    throw new UsageError(
      `${flag} ${file}: a token must be at least ${MIN_TOKEN_LENGTH} printable characters without spaces`,
      'make one with: openssl rand -base64 32 > FILE',
    );
  }
  return token;
}

async function readPem(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw fsError('read', file, err);
  }
}

export function registerServeRepo(program: Command, run: Runner): void {
  program
    .command('serve-repo')
    .description(
      'serve the local repository at --repo over HTTPS to clients that use --repo rest:https://HOST:PORT/ ' +
        '(the server stores opaque encrypted objects: it needs no repository password)',
    )
    .requiredOption('--listen <addr>', 'where clients connect: HOST:PORT')
    .requiredOption(
      '--token-file <file>',
      'a file holding one bearer token clients must send (repeat it to give each client its own token)',
      collect,
    )
    .option('--append-only', 'refuse every delete and every overwrite from clients (locks excepted: see below)')
    .option('--admin-listen <addr>', 'a second address, for the admin token only: deletes and overwrites work there')
    .option('--admin-token-file <file>', 'with --admin-listen: a file holding the admin bearer token')
    .option('--tls-cert <file>', 'PEM certificate (chain) for HTTPS')
    .option('--tls-key <file>', 'PEM private key for HTTPS')
    .addHelpText(
      'after',
      `
Append-only mode protects the copies from the machine that makes them: whoever takes over
a FOLE host (and with it the client's token) can add backups but cannot delete, overwrite
or corrupt the ones already stored. With the client's token the server refuses (403) every
DELETE and every write to a name that exists, refuses packs and index files whose bytes do
not hash to their names (400), and lets a client remove only the locks its own token made.
forget and prune need the admin token, which is accepted only on --admin-listen (keep that
address reachable from an admin machine only, never from the FOLE host).

Plain HTTP is allowed only on a loopback address (127.0.0.1, ::1). Every request is logged
on stderr, refused ones with the reason; tokens are never logged, and the server keeps
only their SHA-256.

Example (on the backup server):
  openssl rand -base64 32 > /etc/fole-backup/client.token
  openssl rand -base64 32 > /etc/fole-backup/admin.token
  fole-backup serve-repo --repo /srv/fole-offsite --append-only \\
      --listen 0.0.0.0:8443 --token-file /etc/fole-backup/client.token \\
      --admin-listen 10.0.0.5:8444 --admin-token-file /etc/fole-backup/admin.token \\
      --tls-cert /etc/fole-backup/cert.pem --tls-key /etc/fole-backup/key.pem
On the FOLE host:
  fole-backup backup --repo rest:https://backup.example:8443/ \\
      --rest-token-file /root/client.token --password-file /root/fole.key ...
From the admin machine:
  fole-backup forget --repo rest:https://10.0.0.5:8444/ --rest-token-file admin.token ... --prune`,
    )
    .action(function (this: Command) {
      const opts = this.opts<ServeOptions>();
      return run(async (ctx) => {
        const { LocalBackend } = await import('../../backend/local.js');
        const { openBackend } = await import('../../backend/open.js');
        const { serveRepository } = await import('../../server/serve.js');
        const backend = openBackend(ctx.repoLocation());
        if (!(backend instanceof LocalBackend)) {
          throw new UsageError('serve-repo serves a local directory', 'give --repo a directory path');
        }
        if ((opts.adminListen === undefined) !== (opts.adminTokenFile === undefined)) {
          throw new UsageError('--admin-listen and --admin-token-file go together');
        }
        if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
          throw new UsageError('--tls-cert and --tls-key go together');
        }
        const listen = parseAddress('--listen', opts.listen);
        const admin = opts.adminListen === undefined ? undefined : parseAddress('--admin-listen', opts.adminListen);
        const tls =
          opts.tlsCert === undefined
            ? undefined
            : { cert: await readPem(opts.tlsCert), key: await readPem(opts.tlsKey as string) };
        for (const a of [listen, ...(admin === undefined ? [] : [admin])]) {
          if (tls === undefined && !LOOPBACK.test(a.host)) {
            throw new UsageError(
              `plain HTTP on ${a.host} is refused: tokens and data would cross the network in clear`,
              'give --tls-cert and --tls-key, or listen on 127.0.0.1 behind a TLS terminator',
            );
          }
        }
        if (tls === undefined) ctx.out.info('warning: plain HTTP (loopback only); use --tls-cert/--tls-key otherwise');
        const tokens: string[] = [];
        for (const f of opts.tokenFile) tokens.push(await readToken('--token-file', f));
        const adminToken =
          opts.adminTokenFile === undefined ? undefined : await readToken('--admin-token-file', opts.adminTokenFile);
        if (adminToken !== undefined && tokens.includes(adminToken)) {
          throw new UsageError('the admin token must differ from every client token');
        }
        const server = await serveRepository({
          backend,
          appendOnly: opts.appendOnly === true,
          listen: { ...listen, tokens },
          ...(admin === undefined || adminToken === undefined ? {} : { admin: { ...admin, tokens: [adminToken] } }),
          ...(tls === undefined ? {} : { tls }),
          log: (line) => process.stderr.write(`${line}\n`),
        });
        const mode = opts.appendOnly === true ? 'append-only' : 'read-write';
        ctx.out.info(`serve-repo: serving ${backend.location} at ${server.url} (${mode})`);
        if (server.adminUrl !== undefined) ctx.out.info(`serve-repo: admin listener at ${server.adminUrl}`);
        // until Ctrl-C or SIGTERM: requests under way are cut, which leaves only temporary files behind
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        ctx.out.info(`serve-repo: ${signal}: stopping`);
        await server.close();
      });
    });
}
