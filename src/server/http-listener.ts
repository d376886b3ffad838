/**
 * The thin adapter from node:http(s) to a RestRequest handler (src/server/rest-handler.ts), and the server's
 * log: one line per request (time, remote address, method, path, status, bytes in and out, and why a request
 * was refused), never a header, so never a token.
 *
 * node:http directly rather than a framework: the handler must see the request path exactly as sent (routers
 * decode and normalize it first, and an encoded `/` or `..` is what the server has to judge), uploads are
 * streamed to disk with backpressure, and the protocol is six routes; a dependency would add surface, not safety.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errnoCode, FoleBackupError } from '../errors.js';
import type { RestRequest, RestResponse } from './rest-handler.js';

export interface ListenerOptions {
  host: string;
  port: number;
  /** PEM certificate chain and key: HTTPS. Without them plain HTTP (the caller allows that on loopback only). */
  tls?: { cert: Buffer; key: Buffer };
  handler: (req: RestRequest) => Promise<RestResponse>;
  /** Where the log lines go. */
  log: (line: string) => void;
  /** Which listener a log line comes from ("append-only", "admin"). */
  name: string;
}

export interface Listener {
  /** e.g. https://127.0.0.1:8443/ (the port the system chose when 0 was asked for). */
  readonly url: string;
  close(): Promise<void>;
}

/** An upload may be slow, but a connection that sends nothing for this long is dropped. */
const IDLE_MS = 120_000;

export async function startListener(opts: ListenerOptions): Promise<Listener> {
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => void serve(opts, req, res);
  const server: Server =
    opts.tls === undefined
      ? createHttpServer(onRequest)
      : createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, onRequest);
  // a multi-GiB pack takes longer than node's default limit of 5 minutes for a whole request; idleness is the limit
  server.requestTimeout = 0;
  server.setTimeout(IDLE_MS);
  // clients drop idle connections sooner (src/backend/rest.ts), so none reuses one the server is closing
  server.keepAliveTimeout = IDLE_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new FoleBackupError('USAGE', `listen on ${opts.host}:${opts.port}: ${errnoCode(err) ?? err.message}`, {
          cause: err,
          hint: 'choose an address of this machine and a port nothing else listens on',
        }),
      ),
    );
    server.listen(opts.port, opts.host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `${opts.tls === undefined ? 'http' : 'https'}://${host}:${addr.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function serve(opts: ListenerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let bytesIn = 0;
  let bytesOut = 0;
  async function* body(): AsyncIterable<Uint8Array> {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytesIn += chunk.length;
      yield chunk;
    }
  }
  const method = req.method ?? '';
  let r: RestResponse;
  try {
    r = await opts.handler({ method, url: req.url ?? '', headers: req.headers, body: body() });
  } catch (err) {
    r = { status: 500, headers: {}, error: err instanceof Error ? err.message : String(err) };
  }
  let failed: string | undefined;
  res.on('close', () => {
    const why = r.refused === undefined ? '' : ` refused: ${r.refused}`;
    const error = (r.error ?? failed) === undefined ? '' : ` error: ${r.error ?? failed}`;
    opts.log(
      `${new Date().toISOString()} ${opts.name} ${req.socket.remoteAddress ?? '?'} ${printable(method)} ` +
        `${printable(req.url ?? '')} ${r.status} in=${bytesIn} out=${bytesOut}${why}${error}`,
    );
  });
  try {
    res.writeHead(r.status, r.headers);
    const b = r.body;
    if (b === undefined || method === 'HEAD') {
      res.end();
    } else if (b instanceof Uint8Array) {
      bytesOut = b.length;
      res.end(b);
    } else {
      async function* counted(): AsyncIterable<Uint8Array> {
        for await (const chunk of b as AsyncIterable<Uint8Array>) {
          bytesOut += chunk.length;
          yield chunk;
        }
      }
      await pipeline(Readable.from(counted()), res);
    }
  } catch (err) {
    // the client went away mid-response, or reading the object failed: the connection is closed
    failed = err instanceof Error ? err.message : String(err);
    res.destroy();
  }
}

/** A request line's text as it may go into the log: anything but printable ASCII is escaped. */
function printable(s: string): string {
  return s.slice(0, 512).replace(/[^\x21-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
