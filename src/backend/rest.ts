/**
 * A repository served over HTTPS by `fole-backup serve-repo` (or another server speaking
 * src/backend/rest-protocol.ts): `rest:https://HOST:PORT/[PREFIX/]`.
 *
 * node:https directly: it never follows a redirect (a 3xx is an error here, so a server cannot send the token or
 * the bytes anywhere else), it takes a private CA per agent, and a pack's parts are streamed as they are. Every
 * name a listing returns is checked before anything uses it (rest-protocol.ts parseListing). The token is sent
 * only in the Authorization header, to the one origin the location names, and appears in no message.
 */
import type { ClientRequest, IncomingHttpHeaders } from 'node:http';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { FoleBackupError, fsError, type ErrorCode } from '../errors.js';
import {
  checkRange,
  type Backend,
  type ByteRange,
  type Bytes,
  type ObjectHandle,
  type ObjectInfo,
  type ObjectType,
} from './backend.js';
import { CREATE_ONLY_HEADER, CREATE_ONLY_VALUE, listPath, objectPath, parseListing } from './rest-protocol.js';

export interface RestBackendOptions {
  /** The bearer token, asked for once, at the first request (FOLE_BACKUP_REST_TOKEN or --rest-token-file). */
  token?: () => Promise<string>;
  /** A PEM file of the CA certificate(s) to trust (a private CA); else the system's. */
  caCert?: string;
  /** Where warnings go (plain HTTP to this machine). */
  warn?: (message: string) => void;
}

/** A listing may be large (a pack is ~100 bytes of JSON); above this a server is not sending a listing. */
const MAX_LISTING_BYTES = 1 << 30;
/** The longest reply read whole when it does not say its length: serve-repo's largest object. */
const MAX_REPLY_BYTES = 2 * 2 ** 30;
/** A request whose connection is idle this long fails. */
const REQUEST_IDLE_MS = 120_000;
/** What is read of an error response's text for the message. */
const MAX_ERROR_TEXT = 300;

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** The base URL of `rest:https://HOST:PORT/PREFIX/` (ending in /); USAGE for anything else. */
export function parseRestLocation(location: string): URL {
  const bad = (why: string): FoleBackupError =>
    new FoleBackupError('USAGE', `repository ${location}: ${why}`, {
      hint:
        'write rest:https://HOST:PORT/ (or with a path: rest:https://HOST:PORT/PREFIX/); the token goes in ' +
        'FOLE_BACKUP_REST_TOKEN or --rest-token-file, never in the location',
    });
  let url: URL;
  try {
    url = new URL(location.replace(/^rest:/i, ''));
  } catch {
    throw bad('not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad('the URL must be https://');
  if (url.username !== '' || url.password !== '') throw bad('a user name or password in the location is refused');
  if (url.search !== '' || url.hash !== '') throw bad('a query or fragment in the location is refused');
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) {
    throw bad(
      'plain http:// is refused for a host other than this machine: the token and the data would travel in clear',
    );
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export class RestBackend implements Backend {
  readonly location: string;
  private readonly base: URL;
  private agent: Promise<HttpAgent | HttpsAgent> | undefined;
  private token: Promise<string> | undefined;

  constructor(
    location: string,
    private readonly opts: RestBackendOptions = {},
  ) {
    this.base = parseRestLocation(location);
    this.location = `rest:${this.base.href}`;
    if (this.base.protocol === 'http:') {
      opts.warn?.(`${this.location}: plain HTTP to this machine; use https:// for any other host`);
    }
  }

  async create(): Promise<void> {
    const r = await this.call('POST', '?create=true', { what: 'create repository', write: true });
    if (r.status === 409) {
      throw new FoleBackupError('REPO_NOT_EMPTY', `create repository ${this.location}: the location is not empty`, {
        hint: 'choose an empty location (another path on the server)',
      });
    }
    this.expect(r, [200, 201], 'create repository', true);
  }

  async isRepository(): Promise<boolean> {
    const r = await this.call('HEAD', 'config', { what: 'stat config', write: false });
    if (r.status === 404) return false;
    this.expect(r, [200], 'stat config', false);
    return true;
  }

  save(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.upload(h, data, false);
  }

  saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.upload(h, data, true);
  }

  private async upload(h: ObjectHandle, data: Bytes, createOnly: boolean): Promise<void> {
    const path = objectPath(h);
    const what = `save ${path}`;
    const r = await this.call('POST', path, {
      what,
      write: true,
      body: data instanceof Uint8Array ? [data] : data,
      headers: {
        'content-type': 'application/octet-stream',
        ...(createOnly ? { [CREATE_ONLY_HEADER]: CREATE_ONLY_VALUE } : {}),
      },
    });
    this.expect(r, [200, 201], what, true);
  }

  async load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    const path = objectPath(h);
    const what = `read ${path}`;
    if (range !== undefined) checkRange(path, range);
    if (range !== undefined && range.length === 0) {
      // HTTP has no empty range: the object's size says whether the offset is inside it
      const { size } = await this.stat(h);
      if (range.offset > size) throw beyondEnd(what, range, size);
      return Buffer.alloc(0);
    }
    const headers: Record<string, string> =
      range === undefined ? {} : { range: `bytes=${range.offset}-${range.offset + range.length - 1}` };
    const r = await this.call('GET', path, { what, write: false, headers });
    if (r.status === 416) throw beyondEnd(what, range ?? { offset: 0, length: 0 }, sizeOf(r.headers));
    if (range === undefined) {
      this.expect(r, [200], what, false);
      return r.body;
    }
    this.expect(r, [206], what, false);
    // a server gives less than asked when the range runs past the end: that is the same damage as a 416
    const from = /^bytes (\d+)-/.exec(r.headers['content-range'] ?? '')?.[1];
    if (from === undefined || Number(from) !== range.offset || r.body.length !== range.length) {
      throw beyondEnd(what, range, sizeOf(r.headers));
    }
    return r.body;
  }

  async stat(h: ObjectHandle): Promise<ObjectInfo> {
    const path = objectPath(h);
    const r = await this.call('HEAD', path, { what: `stat ${path}`, write: false });
    this.expect(r, [200], `stat ${path}`, false);
    const size = Number(r.headers['content-length']);
    if (!Number.isSafeInteger(size) || size < 0) throw this.protocolError(`stat ${path}`, 'no object size', false);
    const mtime = Date.parse(r.headers['last-modified'] ?? '');
    return { name: h.type === 'config' ? 'config' : h.name, size, ...(Number.isNaN(mtime) ? {} : { mtimeMs: mtime }) };
  }

  async *list(type: ObjectType): AsyncIterable<ObjectInfo> {
    if (type === 'config') {
      // the config is not listed by the server: it exists or it does not
      const found = await this.stat({ type, name: 'config' }).catch((err: unknown) => {
        if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return undefined;
        throw err;
      });
      if (found !== undefined) yield found;
      return;
    }
    const path = listPath(type);
    const r = await this.call('GET', path, { what: `list ${path}`, write: false, maxBody: MAX_LISTING_BYTES });
    this.expect(r, [200], `list ${path}`, false);
    yield* parseListing(type, r.body, `${this.location}${path}`);
  }

  async remove(h: ObjectHandle): Promise<void> {
    const path = objectPath(h);
    const r = await this.call('DELETE', path, { what: `remove ${path}`, write: true });
    if (r.status === 404) return; // removing a missing object is not an error
    this.expect(r, [200, 204], `remove ${path}`, true);
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    if (agent !== undefined) (await agent.catch(() => undefined))?.destroy();
  }

  /** Throw the error a status other than `ok` means. */
  private expect(r: Reply, ok: number[], what: string, write: boolean): void {
    if (ok.includes(r.status)) return;
    const said = serverText(r.body);
    const tail = said === '' ? '' : `: ${said}`;
    const at = `${what} at ${this.location}`;
    const fail = (code: ErrorCode, message: string, hint?: string): FoleBackupError =>
      new FoleBackupError(code, `${at}: ${message}`, hint === undefined ? {} : { hint });
    switch (r.status) {
      case 401:
        throw fail(
          'ACCESS_DENIED',
          'the server refused the token (401)',
          'set FOLE_BACKUP_REST_TOKEN or --rest-token-file to a token the server accepts (the admin token is ' +
            'accepted on the admin listener only)',
        );
      case 403:
        throw fail(
          'ACCESS_DENIED',
          `the server refused it (403)${tail}`,
          'an append-only server never deletes or replaces what it holds: forget, prune and removing another ' +
            "client's lock need the admin token, on the server's admin listener",
        );
      case 404:
        throw fail('NOT_FOUND', 'no such object');
      case 412:
        throw new FoleBackupError('ALREADY_EXISTS', `${at}: it already exists`);
      case 413:
        throw fail('WRITE_ERROR', `the server refused the object as too large (413)${tail}`);
      case 507:
        throw fail('NO_SPACE', 'the server has no space left (507)', 'free space on the server, or prune there');
    }
    if (r.status >= 300 && r.status < 400) {
      throw this.protocolError(
        what,
        `the server answered with a redirect (${r.status}); redirects are never followed`,
        write,
      );
    }
    // the status goes with the error in the shape retry.ts reads, so a 5xx or a 429 is tried again
    const status = { $metadata: { httpStatusCode: r.status } };
    throw this.protocolError(what, `the server answered ${r.status}${tail}`, write, status);
  }

  private protocolError(what: string, why: string, write: boolean, cause?: unknown): FoleBackupError {
    return new FoleBackupError(write ? 'WRITE_ERROR' : 'READ_ERROR', `${what} at ${this.location}: ${why}`, {
      ...(cause === undefined ? {} : { cause }),
      hint: 'check that fole-backup serve-repo runs at that address and what its log says',
    });
  }

  private getAgent(): Promise<HttpAgent | HttpsAgent> {
    this.agent ??= (async () => {
      // idle connections are dropped before serve-repo's (120 s) would drop them under a request
      const keep = { keepAlive: true, timeout: 60_000 };
      if (this.base.protocol === 'http:') return new HttpAgent(keep);
      const file = this.opts.caCert;
      let ca: Buffer | undefined;
      if (file !== undefined) {
        try {
          ca = await readFile(file);
        } catch (err) {
          throw fsError('read', file, err);
        }
      }
      return new HttpsAgent({ ...keep, ...(ca === undefined ? {} : { ca }) });
    })();
    return this.agent;
  }

  private getToken(): Promise<string> {
    const provider = this.opts.token;
    this.token ??=
      provider === undefined
        ? Promise.reject(
            new FoleBackupError('USAGE', `repository ${this.location}: no token`, {
              hint: 'set FOLE_BACKUP_REST_TOKEN or pass --rest-token-file FILE',
            }),
          )
        : provider();
    return this.token;
  }

  /** One request; the reply's body read whole (at most `maxBody` bytes, else as many as it announces). */
  private async call(
    method: string,
    path: string,
    o: {
      what: string;
      write: boolean;
      headers?: Record<string, string>;
      body?: readonly Uint8Array[];
      maxBody?: number;
    },
  ): Promise<Reply> {
    const [agent, token] = await Promise.all([this.getAgent(), this.getToken()]);
    const url = new URL(path, this.base);
    const length = o.body?.reduce((n, p) => n + p.length, 0) ?? 0;
    const send = this.base.protocol === 'http:' ? httpRequest : httpsRequest;
    try {
      return await new Promise<Reply>((resolve, reject) => {
        const req = send(url, {
          method,
          agent,
          headers: {
            ...o.headers,
            authorization: `Bearer ${token}`,
            ...(o.body === undefined && method !== 'POST' ? {} : { 'content-length': String(length) }),
          },
        });
        req.on('error', reject);
        // a server that sends nothing for this long is not coming back
        req.setTimeout(REQUEST_IDLE_MS, () =>
          req.destroy(new Error(`nothing received for ${REQUEST_IDLE_MS / 1000} s`)),
        );
        req.on('response', (res) => {
          const announced = res.headers['content-length'];
          const max = o.maxBody ?? (announced === undefined ? MAX_REPLY_BYTES : Number(announced));
          const chunks: Buffer[] = [];
          let got = 0;
          res.on('data', (c: Buffer) => {
            got += c.length;
            if (got > max + MAX_ERROR_TEXT) {
              res.destroy(new Error(`the reply is longer than the ${max} bytes it announced`));
              return;
            }
            chunks.push(c);
          });
          res.on('error', reject);
          // a reply cut short is a dropped connection (the retry wrapper tries again), not a server's answer
          res.on('aborted', () => reject(dropped('the connection was closed mid-reply')));
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            if (method !== 'HEAD' && announced !== undefined && body.length !== Number(announced)) {
              reject(dropped(`the reply ended after ${body.length} of ${announced} bytes`));
              return;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
        });
        void writeBody(req, o.body ?? []).catch((err: unknown) => req.destroy(err as Error));
      });
    } catch (err) {
      if (err instanceof FoleBackupError) throw err;
      throw new FoleBackupError(
        o.write ? 'WRITE_ERROR' : 'READ_ERROR',
        `${o.what} at ${this.location}: ${(err as Error).message}`,
        {
          cause: err,
          hint: 'check that the server is running and reachable, and that its certificate is trusted (--ca-cert)',
        },
      );
    }
  }
}

/** The error of a connection that broke mid-reply, with the errno the retry wrapper takes as transient. */
function dropped(message: string): Error {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

/** Write `parts` into a request and end it, waiting whenever the socket's buffer is full. */
async function writeBody(req: ClientRequest, parts: readonly Uint8Array[]): Promise<void> {
  for (const p of parts) {
    if (p.length > 0 && !req.write(p)) await once(req, 'drain');
  }
  req.end();
}

/** The object's size from a Content-Range header (`bytes A-B/N`, or `*` for the range), or -1. */
function sizeOf(headers: IncomingHttpHeaders): number {
  const m = /\/(\d+)$/.exec(headers['content-range'] ?? '');
  return m === null ? -1 : Number(m[1]);
}

/** A server's short explanation, safe to print: printable ASCII only, cut short. */
function serverText(body: Buffer): string {
  return body
    .subarray(0, MAX_ERROR_TEXT)
    .toString('latin1')
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim();
}

function beyondEnd(what: string, range: ByteRange, size: number): FoleBackupError {
  const of = size < 0 ? '' : ` (${size} bytes)`;
  return new FoleBackupError(
    'REPO_CORRUPT',
    `${what}: range ${range.offset}+${range.length} lies beyond the end of the object${of}`,
    { hint: 'the object is shorter than the index says; check the repository' },
  );
}
