/**
 * The HTTP protocol between the rest: backend (src/backend/rest.ts) and `fole-backup serve-repo`
 * (src/server/), in the shape of restic's rest-server:
 *
 *   POST   /?create=true    create the repository (409 if the location is not empty)
 *   HEAD   /<path>          an object's size (Content-Length) and time (Last-Modified)
 *   GET    /<path>          its bytes; `Range: bytes=A-B` for a part of them (206)
 *   POST   /<path>          store it; with `If-None-Match: *` only if the name is free (412 when taken)
 *   DELETE /<path>          remove it
 *   GET    /<type>/         list a type: JSON [{ "name", "size", "mtime" }] (mtime in ms since the epoch)
 *
 * where <path> is `config` or `<type>/<name>` (packs too: their prefix folders are the server's business),
 * behind `Authorization: Bearer <token>`. Both sides judge a path by the same rules, here: a name is checked
 * after it is decoded, so an encoded `/` or `..` is as invalid as a plain one.
 */
import { FoleBackupError } from '../errors.js';
import {
  checkHandle,
  isObjectName,
  OBJECT_TYPES,
  type ObjectHandle,
  type ObjectInfo,
  type ObjectType,
} from './backend.js';

/** The header and value that make a POST create-only (Backend.saveNew). */
export const CREATE_ONLY_HEADER = 'if-none-match';
export const CREATE_ONLY_VALUE = '*';

/** An object's path below the repository's base URL (no leading slash). */
export function objectPath(h: ObjectHandle): string {
  checkHandle(h);
  return h.type === 'config' ? 'config' : `${h.type}/${encodeURIComponent(h.name)}`;
}

/** A type's listing path below the base URL. */
export function listPath(type: ObjectType): string {
  return `${type}/`;
}

/** What a request path names: the repository itself, one type's listing, or one object. */
export type RestTarget =
  | { kind: 'root' }
  | { kind: 'list'; type: ObjectType }
  | { kind: 'object'; handle: ObjectHandle };

/**
 * What `rawPath` (as sent: not decoded, no query) names, or a reason it names nothing. The path is split at its
 * literal slashes first and each segment decoded once after, so `%2f` stays inside a segment, where the name
 * rules refuse it.
 */
export function parseRestPath(rawPath: string): RestTarget | { kind: 'invalid'; why: string } {
  if (rawPath === '/') return { kind: 'root' };
  if (!rawPath.startsWith('/')) return { kind: 'invalid', why: 'the path does not start with /' };
  const segments: string[] = [];
  for (const raw of rawPath.slice(1).split('/')) {
    try {
      segments.push(decodeURIComponent(raw));
    } catch {
      return { kind: 'invalid', why: 'the path is not valid percent-encoding' };
    }
  }
  const [first, second, ...more] = segments;
  if (first === 'config' && second === undefined) return { kind: 'object', handle: { type: 'config', name: 'config' } };
  const type = OBJECT_TYPES.find((t) => t === first && t !== 'config');
  if (type === undefined || second === undefined || more.length > 0) {
    return { kind: 'invalid', why: 'not an object type of the repository layout followed by one name' };
  }
  if (second === '') return { kind: 'list', type };
  if (!isObjectName(type, second)) return { kind: 'invalid', why: `invalid object name for ${type}/` };
  return { kind: 'object', handle: { type, name: second } };
}

/** One entry of a listing as the server sends it. */
export interface ListedObject {
  name: string;
  size: number;
  /** Last written, ms since the epoch, by the server's clock. */
  mtime: number;
}

/**
 * A listing's body as ObjectInfos, every entry checked: a server that lists a name no object of `type` can have
 * (`../x`, `a/b`, a dot name) or a size that is not a size gets the whole listing refused, so nothing a hostile
 * server names is ever read, written or deleted. `where` names the listing in the error.
 */
export function parseListing(type: ObjectType, body: Buffer, where: string): ObjectInfo[] {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw badListing(where, 'it is not JSON', err);
  }
  if (!Array.isArray(value)) throw badListing(where, 'it is not a JSON array');
  return value.map((entry: unknown) => {
    const e = entry as Partial<Record<keyof ListedObject, unknown>> | null;
    if (typeof e !== 'object' || e === null || typeof e.name !== 'string') {
      throw badListing(where, 'an entry has no name');
    }
    if (!isObjectName(type, e.name) || (type === 'config' && e.name !== 'config')) {
      throw badListing(where, `it names ${JSON.stringify(e.name.slice(0, 200))}, not a valid ${type} object name`);
    }
    if (typeof e.size !== 'number' || !Number.isSafeInteger(e.size) || e.size < 0) {
      throw badListing(where, `the size of ${e.name} is not a whole number of bytes`);
    }
    const mtime = typeof e.mtime === 'number' && Number.isFinite(e.mtime) ? e.mtime : undefined;
    return { name: e.name, size: e.size, ...(mtime === undefined ? {} : { mtimeMs: mtime }) };
  });
}

function badListing(where: string, why: string, cause?: unknown): FoleBackupError {
  return new FoleBackupError('REPO_CORRUPT', `list ${where}: the server's listing is refused: ${why}`, {
    ...(cause === undefined ? {} : { cause }),
    hint:
      'nothing from this listing was used; the server is not a fole-backup serve-repo of this version, or it ' +
      'is compromised: check it before trusting its copies',
  });
}
