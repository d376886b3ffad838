/**
 * File names are bytes; this program handles paths as strings. A POSIX name
 * may be any bytes but NUL and '/', and a name that is not UTF-8 has no string
 * Node can pass to the file system: readdir turns each bad byte into U+FFFD,
 * so it cannot be opened again — or, worse, it opens another file whose name
 * really spells U+FFFD.
 *
 * The string form of a name (Python's "surrogateescape", PEP 383): its valid
 * UTF-8 sequences decode as usual, and every byte that is not part of one
 * becomes the lone low surrogate U+DC00 + byte (U+DC80..U+DCFF; bytes below
 * 0x80 are always valid). Decoding valid UTF-8 never yields a lone surrogate,
 * so a string that holds none is the name's plain UTF-8 (the common case:
 * nothing changes for it, and it costs one check), and different byte names
 * get different strings. The inverse encodes the escapes back to their bytes.
 * A string is *canonical* when it is what its own bytes decode to: "\udcc3\udca9"
 * is not (its bytes C3 A9 decode to "é"), and only canonical strings are
 * accepted from a backup, so two entries can never name one file.
 *
 * Every file system call on a path that came from a tree or a scan goes
 * through fsPath(), which hands Node the bytes when the string holds escapes.
 */
import { readdirSync } from 'node:fs';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const REPLACEMENT = '\ufffd';
// ignoreBOM: a name may begin with U+FEFF, and it is part of the name
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Whether `s` is well-formed UTF-16, i.e. the plain UTF-8 of its bytes with no escapes. */
export function isPlainName(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** Length of a valid UTF-8 sequence starting at b[i], or 0 when the bytes there are not one. */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i] as number;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean =>
    i + k < b.length && (b[i + k] as number) >= lo && (b[i + k] as number) <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  // the second byte's range rules out overlong forms, surrogates (ED A0..BF) and code points past U+10FFFF
  if (c >= 0xe0 && c <= 0xef) {
    const ok = c === 0xe0 ? cont(1, 0xa0) : c === 0xed ? cont(1, 0x80, 0x9f) : cont(1);
    return ok && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const ok = c === 0xf0 ? cont(1, 0x90) : c === 0xf4 ? cont(1, 0x80, 0x8f) : cont(1);
    return ok && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** The string form of a name (or path) given as bytes. */
export function nameFromBytes(b: Uint8Array): string {
  try {
    return strict.decode(b);
  } catch {
    // not UTF-8: decode what is, escape what is not
  }
  let out = '';
  let i = 0;
  while (i < b.length) {
    const n = sequenceLength(b, i);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + (b[i] as number));
      i++;
    } else {
      out += Buffer.from(b.buffer, b.byteOffset + i, n).toString('utf8');
      i += n;
    }
  }
  return out;
}

/**
 * The bytes of a string form: UTF-8, with each escape U+DC80..U+DCFF as its
 * byte. Undefined when `s` holds a lone surrogate that is no escape (nothing
 * this program makes).
 */
export function bytesOfName(s: string): Buffer | undefined {
  if (isPlainName(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return undefined;
    }
    if (c < 0xdc00 || c > 0xdfff) continue;
    if (c < 0xdc80 || c > 0xdcff) return undefined;
    parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.from([c - 0xdc00]));
    start = i + 1;
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** Whether `s` is the string form of some bytes: plain, or escapes that its bytes decode back to. */
export function isCanonicalName(s: string): boolean {
  if (isPlainName(s)) return true;
  const b = bytesOfName(s);
  return b !== undefined && nameFromBytes(b) === s;
}

/** Bytes of a string form on disk (its UTF-8 length when plain). */
export function nameByteLength(s: string): number {
  return isPlainName(s) ? Buffer.byteLength(s, 'utf8') : (bytesOfName(s)?.length ?? Buffer.byteLength(s, 'utf8'));
}

/** What to hand the file system for path `s`: `s` itself when plain, else its bytes. */
export function fsPath(s: string): string | Buffer {
  if (isPlainName(s)) return s;
  return bytesOfName(s) ?? s;
}

/**
 * The names in directory `dir`, in string form (unsorted); whether every one is plain; and those the directory
 * itself says are directories (its entry types: a hint for reading ahead, empty where the file system gives no
 * types). Listed as strings, the common case; only a directory where a name comes back holding U+FFFD (one that is
 * not UTF-8, or one that spells U+FFFD) is listed again as bytes.
 */
export function readNames(dir: string): { names: string[]; plain: boolean; dirs: ReadonlySet<string> } {
  const p = fsPath(dir);
  // the entry types come with the names (getdents gives both): measured, no dearer than names alone
  const entries = readdirSync(p, { withFileTypes: true });
  const names = entries.map((e) => e.name);
  if (!names.some((n) => n.includes(REPLACEMENT))) return { names, plain: true, dirs: dirNames(entries, names) };
  const raw = readdirSync(p, { encoding: 'buffer', withFileTypes: true });
  const decoded = raw.map((e) => nameFromBytes(e.name));
  return { names: decoded, plain: decoded.every(isPlainName), dirs: dirNames(raw, decoded) };
}

function dirNames(entries: readonly { isDirectory(): boolean }[], names: readonly string[]): Set<string> {
  const dirs = new Set<string>();
  for (let i = 0; i < entries.length; i++)
    if ((entries[i] as { isDirectory(): boolean }).isDirectory()) dirs.add(names[i] as string);
  return dirs;
}
