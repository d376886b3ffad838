/**
 * A repository directory served to rest: clients: the client listener (append-only or not) and, where asked for,
 * the admin listener on its own address, sharing one record of lock owners. Each listener accepts its own tokens
 * only: the admin token on the client listener is refused like a wrong one.
 */
import { join } from 'node:path';
import type { LocalBackend } from '../backend/local.js';
import { startListener, type Listener } from './http-listener.js';
import { LockOwners } from './lock-owners.js';
import { restHandler } from './rest-handler.js';
import { TokenSet } from './tokens.js';

export interface ServeOptions {
  backend: LocalBackend;
  appendOnly: boolean;
  /** The client listener and the tokens it accepts. */
  listen: { host: string; port: number; tokens: readonly string[] };
  /** The admin listener: deletes and overwrites work there. */
  admin?: { host: string; port: number; tokens: readonly string[] };
  tls?: { cert: Buffer; key: Buffer };
  log: (line: string) => void;
}

export interface RunningServer {
  url: string;
  adminUrl?: string;
  close(): Promise<void>;
}

/** The file beside the repository's objects that keeps which token made each lock (no object is named so). */
const LOCK_OWNERS_FILE = 'serve-repo-lock-owners.json';

export async function serveRepository(opts: ServeOptions): Promise<RunningServer> {
  const dir = opts.backend.location.slice('local:'.length);
  const lockOwners = await LockOwners.load(join(dir, LOCK_OWNERS_FILE));
  const clientTokens = new TokenSet(opts.listen.tokens);
  const adminTokens = opts.admin === undefined ? undefined : new TokenSet(opts.admin.tokens);
  const tls = opts.tls === undefined ? {} : { tls: opts.tls };
  const listeners: Listener[] = [];
  try {
    listeners.push(
      await startListener({
        host: opts.listen.host,
        port: opts.listen.port,
        ...tls,
        name: opts.appendOnly ? 'append-only' : 'client',
        log: opts.log,
        handler: restHandler({
          backend: opts.backend,
          tokens: clientTokens,
          ...(adminTokens === undefined ? {} : { elsewhere: adminTokens }),
          appendOnly: opts.appendOnly,
          lockOwners,
        }),
      }),
    );
    if (opts.admin !== undefined && adminTokens !== undefined) {
      listeners.push(
        await startListener({
          host: opts.admin.host,
          port: opts.admin.port,
          ...tls,
          name: 'admin',
          log: opts.log,
          handler: restHandler({
            backend: opts.backend,
            tokens: adminTokens,
            elsewhere: clientTokens,
            appendOnly: false,
            lockOwners,
          }),
        }),
      );
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    throw err;
  }
  return {
    url: (listeners[0] as Listener).url,
    ...(listeners[1] === undefined ? {} : { adminUrl: listeners[1].url }),
    close: async () => {
      await Promise.all(listeners.map((l) => l.close()));
    },
  };
}
