/**
 * serve-repo's requests, as a function from a request to a response: no socket, no port, so every rule below is
 * tested by calling it (src/server/rest-handler.test.ts); src/server/http-listener.ts is the thin adapter to
 * node:http. The protocol is in src/backend/rest-protocol.ts; the objects live in a LocalBackend, which the
 * server fills with opaque bytes: it never holds the repository's password.
 *
 * In append-only mode (for the token a FOLE host holds, which an attacker on that host holds too):
 *   - no DELETE, and no POST that would replace what a name holds, so nothing stored can be destroyed (the same
 *     bytes sent again, by a client whose answer was lost, are answered 200 and change nothing);
 *   - a pack or index, whose name is the SHA-256 of its bytes, is refused unless its bytes hash to its name,
 *     so no garbage can take the name of an object a later backup would have written;
 *   - locks are the one exception: a lock name must be a lock id (no `..`, no `/`, checked after decoding),
 *     a lock is small, and it is removed only by the token that created it. Its age is the server's: listings
 *     and HEAD give the time the server's filesystem says it was written.
 * The admin listener (its own address, its own token) may delete and overwrite: forget and prune run there.
 */
import { createHash } from 'node:crypto';
import { FoleBackupError } from '../errors.js';
import type { ObjectHandle, ObjectType } from '../backend/backend.js';
import type { LocalBackend } from '../backend/local.js';
import { CREATE_ONLY_HEADER, CREATE_ONLY_VALUE, type ListedObject, parseRestPath } from '../backend/rest-protocol.js';
import { isLockName } from '../repository/lock.js';
import type { LockOwners } from './lock-owners.js';
import type { TokenSet } from './tokens.js';

export interface RestRequest {
  method: string;
  /** The request target as sent: path and query, not decoded. */
  url: string;
  /** Header names in lower case (node:http's IncomingHttpHeaders). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: AsyncIterable<Uint8Array>;
}

export interface RestResponse {
  status: number;
  headers: Record<string, string>;
  body?: Uint8Array | AsyncIterable<Uint8Array>;
  /** Why the request was refused, for the server's log (the client gets a short text). */
  refused?: string;
  /** What went wrong in a 5xx, for the server's log only (it may name server paths). */
  error?: string;
}

export interface RestHandlerOptions {
  backend: LocalBackend;
  /** The tokens this listener accepts. */
  tokens: TokenSet;
  /** Tokens valid on another listener only (the admin token, seen on the append-only one): told apart in the log. */
  elsewhere?: TokenSet;
  appendOnly: boolean;
  lockOwners: LockOwners;
  /** The largest object accepted (default MAX_OBJECT_BYTES). */
  maxObjectBytes?: number;
}

/**
 * The largest upload: twice the largest pack a repository may be configured for (1 GiB, src/repository/
 * repository.ts), as a pack may pass its target size by a blob. Above it, 413 before a byte is written.
 */
const MAX_OBJECT_BYTES = 2 * 2 ** 30;
/** A lock is a sealed record of a few hundred bytes; an append-only client may not store more under locks/. */
export const MAX_LOCK_BYTES = 8 * 1024;
/** Types whose objects are named by the SHA-256 of their bytes: packs, and index files (Repository.saveJson). */
const CONTENT_ADDRESSED: readonly ObjectType[] = ['data', 'index', 'damage'];
/** How much of an object a GET reads at a time. */
const READ_CHUNK = 1 << 20;

/** A request refused with this status; its message goes to the client and the log. */
class Refusal extends FoleBackupError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('USAGE', message);
  }
}

const text = (status: number, body: string, extra: Partial<RestResponse> = {}): RestResponse => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8' },
  body: Buffer.from(`${body}\n`),
  ...extra,
});

export function restHandler(opts: RestHandlerOptions): (req: RestRequest) => Promise<RestResponse> {
  return async (req) => {
    const who = authenticate(opts, req.headers.authorization);
    if (typeof who !== 'string') {
      const r = text(401, 'unauthorized', { refused: who.refused });
      return { ...r, headers: { ...r.headers, 'www-authenticate': 'Bearer' } };
    }
    try {
      return await route(opts, req, who);
    } catch (err) {
      return errorResponse(err);
    }
  };
}

/** The token id of the caller, or why it is refused. */
function authenticate(opts: RestHandlerOptions, header: string | string[] | undefined): string | { refused: string } {
  const m = typeof header === 'string' ? /^Bearer ([\x21-\x7e]+)$/.exec(header) : null;
  if (m === null) return { refused: 'no bearer token' };
  const id = opts.tokens.match(m[1] as string);
  if (id !== undefined) return id;
  if (opts.elsewhere?.match(m[1] as string) !== undefined) return { refused: 'a token of another listener' };
  return { refused: 'wrong token' };
}

async function route(opts: RestHandlerOptions, req: RestRequest, who: string): Promise<RestResponse> {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  const target = parseRestPath(path);
  if (target.kind === 'invalid') throw new Refusal(400, `bad path: ${target.why}`);
  if (target.kind === 'root') {
    if (req.method !== 'POST' || query !== 'create=true') throw new Refusal(405, 'only POST /?create=true here');
    await opts.backend.create();
    return text(201, 'created');
  }
  if (query !== '') throw new Refusal(400, 'unexpected query string');
  if (target.kind === 'list') {
    if (req.method !== 'GET') throw new Refusal(405, 'a listing is read with GET');
    return list(opts.backend, target.type);
  }
  const h = target.handle;
  switch (req.method) {
    case 'HEAD':
      return head(opts.backend, h);
    case 'GET':
      return get(opts.backend, h, req.headers.range);
    case 'POST':
      return post(opts, req, h, who);
    case 'DELETE':
      return remove(opts, h, who);
    default:
      throw new Refusal(405, `method ${req.method} not allowed`);
  }
}

async function list(backend: LocalBackend, type: ObjectType): Promise<RestResponse> {
  const out: ListedObject[] = [];
  for await (const o of backend.list(type)) out.push({ name: o.name, size: o.size, mtime: Math.trunc(o.mtimeMs ?? 0) });
  return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(out)) };
}

async function head(backend: LocalBackend, h: ObjectHandle): Promise<RestResponse> {
  const info = await backend.stat(h);
  return {
    status: 200,
    headers: {
      'content-length': String(info.size),
      'last-modified': new Date(info.mtimeMs ?? 0).toUTCString(),
      'accept-ranges': 'bytes',
    },
  };
}

async function get(
  backend: LocalBackend,
  h: ObjectHandle,
  range: string | string[] | undefined,
): Promise<RestResponse> {
  const reader = await backend.openReader(h);
  let start = 0;
  let end = reader.size; // exclusive
  let status = 200;
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
  if (range !== undefined) {
    const r = typeof range === 'string' ? parseRange(range, reader.size) : undefined;
    if (r === undefined) {
      await reader.close();
      return text(416, 'range not satisfiable', { headers: { 'content-range': `bytes */${reader.size}` } });
    }
    [start, end] = r;
    status = 206;
    headers['content-range'] = `bytes ${start}-${end - 1}/${reader.size}`;
  }
  headers['content-length'] = String(end - start);
  async function* chunks(): AsyncIterable<Uint8Array> {
    try {
      for (let at = start; at < end; at += READ_CHUNK) {
        yield await reader.read({ offset: at, length: Math.min(READ_CHUNK, end - at) });
      }
    } finally {
      await reader.close();
    }
  }
  return { status, headers, body: chunks() };
}

/** `bytes=A-B`, `bytes=A-` or `bytes=-N` of an object of `size` bytes as [start, end); undefined if unsatisfiable. */
function parseRange(header: string, size: number): [number, number] | undefined {
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Number(m[2]);
    return n === 0 ? undefined : [Math.max(0, size - n), size];
  }
  const start = Number(m[1]);
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || last < start) return undefined;
  return [start, last + 1];
}

async function post(opts: RestHandlerOptions, req: RestRequest, h: ObjectHandle, who: string): Promise<RestResponse> {
  const createOnly = req.headers[CREATE_ONLY_HEADER] === CREATE_ONLY_VALUE;
  const isLock = h.type === 'locks';
  if (opts.appendOnly && isLock && !isLockName(h.name)) {
    throw new Refusal(400, 'append-only: a lock name must be a lock id (32 lower-case hex digits)');
  }
  const max = opts.appendOnly && isLock ? MAX_LOCK_BYTES : (opts.maxObjectBytes ?? MAX_OBJECT_BYTES);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new Refusal(413, `object too large: at most ${max} bytes here`);
  if (opts.appendOnly && (await exists(opts.backend, h))) {
    // a client whose answer was lost sends the same object again: the same bytes are "stored", anything else is
    // refused; nothing is ever replaced either way
    if (createOnly || isLock || !(await sameAsStored(opts.backend, h, req.body, max))) throw taken(createOnly);
    return text(200, 'already stored, the same bytes');
  }
  // a lock being created by another request has its owner already: one owner per name, set in one step
  if (opts.appendOnly && isLock && opts.lockOwners.ownerOf(h.name) !== undefined) throw taken(createOnly);
  const wantHash = opts.appendOnly && CONTENT_ADDRESSED.includes(h.type) ? h.name : undefined;
  const body = checked(req.body, max, wantHash);
  if (opts.appendOnly && isLock) await opts.lockOwners.set(h.name, who);
  try {
    // append-only: even a racing POST of the same name can only fail, never replace
    await opts.backend.saveFrom(h, body, { createOnly: createOnly || opts.appendOnly });
  } catch (err) {
    if (opts.appendOnly && isLock) await opts.lockOwners.delete(h.name);
    if (err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS') throw taken(createOnly);
    throw err;
  }
  return text(201, 'stored');
}

function taken(createOnly: boolean): Refusal {
  return createOnly
    ? new Refusal(412, 'the name is taken')
    : new Refusal(403, 'append-only: an object that exists is never replaced');
}

/** `body`, refused (by throwing) once it passes `max` bytes, or at its end if its SHA-256 is not `wantHash`. */
async function* checked(body: AsyncIterable<Uint8Array>, max: number, wantHash: string | undefined) {
  const hash = wantHash === undefined ? undefined : createHash('sha256');
  let n = 0;
  for await (const chunk of body) {
    n += chunk.length;
    if (n > max) throw new Refusal(413, `object too large: at most ${max} bytes here`);
    hash?.update(chunk);
    yield chunk;
  }
  if (hash !== undefined && hash.digest('hex') !== wantHash) {
    throw new Refusal(400, 'append-only: the bytes do not hash to the name of this content-addressed object');
  }
}

async function remove(opts: RestHandlerOptions, h: ObjectHandle, who: string): Promise<RestResponse> {
  if (opts.appendOnly) {
    if (h.type !== 'locks') throw new Refusal(403, 'append-only: only locks are ever removed');
    if (!isLockName(h.name)) throw new Refusal(400, 'append-only: a lock name must be a lock id');
    if (!(await exists(opts.backend, h))) throw new Refusal(404, 'no such lock');
    if (opts.lockOwners.ownerOf(h.name) !== who) {
      throw new Refusal(403, 'append-only: a lock is removed only by the token that created it');
    }
  }
  await opts.backend.remove(h);
  if (h.type === 'locks') await opts.lockOwners.delete(h.name);
  return { status: 204, headers: {} };
}

/** The largest object (not content-addressed) compared byte for byte with what is stored: snapshots, keys, … */
const MAX_COMPARED_BYTES = 16 * 1024 * 1024;

/**
 * Whether `body` is exactly the stored object `h`. A pack or index file is named by the SHA-256 of its bytes, and
 * what is stored under that name was checked to hash to it, so a body that hashes to the name is the same; any
 * other object (small) is compared byte for byte, up to MAX_COMPARED_BYTES.
 */
async function sameAsStored(
  backend: LocalBackend,
  h: ObjectHandle,
  body: AsyncIterable<Uint8Array>,
  max: number,
): Promise<boolean> {
  const stored = CONTENT_ADDRESSED.includes(h.type) ? undefined : await backend.load(h);
  if (stored !== undefined && stored.length > MAX_COMPARED_BYTES) return false;
  const parts: Buffer[] = [];
  try {
    // a body that hashes to the name (content-addressed), or no longer than the stored object (the others)
    const limit = stored === undefined ? max : stored.length;
    for await (const chunk of checked(body, limit, stored === undefined ? h.name : undefined)) {
      if (stored !== undefined) parts.push(Buffer.from(chunk));
    }
  } catch (err) {
    // another hash (400) or a longer body (413): not the same object
    if (err instanceof Refusal && (err.status === 400 || err.status === 413)) return false;
    throw err;
  }
  return stored === undefined || Buffer.concat(parts).equals(stored);
}

async function exists(backend: LocalBackend, h: ObjectHandle): Promise<boolean> {
  try {
    await backend.stat(h);
    return true;
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return false;
    throw err;
  }
}

/** The one place errors become HTTP statuses. */
function errorResponse(err: unknown): RestResponse {
  if (err instanceof Refusal) return text(err.status, err.message, { refused: err.message });
  if (err instanceof FoleBackupError) {
    switch (err.code) {
      case 'NOT_FOUND':
        return text(404, 'not found');
      case 'ALREADY_EXISTS':
        return text(412, 'the name is taken', { refused: 'the name is taken' });
      case 'REPO_NOT_EMPTY':
        return text(409, 'the repository location is not empty', { refused: 'create: the location is not empty' });
      case 'REPO_CORRUPT':
        return text(416, 'range not satisfiable');
      case 'NO_SPACE':
        return text(507, 'no space left on the server', { error: err.message });
    }
  }
  return text(500, 'internal server error', { error: err instanceof Error ? err.message : String(err) });
}
