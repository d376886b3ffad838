/**
 * Reading an index file's bytes straight into the master index, without JSON.parse.
 *
 * An index file of 50,000 blobs parsed as JSON is an array per blob, a 64-character
 * string per id and a number object here and there: ~12 MB of objects that live only
 * until the blobs are in the master index's typed arrays. Loading the index of a
 * million-blob repository made ~250 MB of such garbage at its peak (eight files at
 * once) and was most of what `ls`, an incremental or a restore needed in memory before
 * doing anything. This parser walks the bytes of the form our writer makes,
 *
 *   {"packs":[{"id":"<64 hex>","blobs":[["<64 hex>",T,O,L,R,C],…]},…]}
 *
 * (JSON.stringify of encodeIndexFile: no spaces, numbers as plain digits), checking
 * everything checkIndexFile checks, and hands each blob over as bytes. It allocates a
 * string per pack, none per blob. Anything else — other spacing, escapes, another key
 * order, a value out of range, a truncated file — makes it answer `undefined` having
 * handed nothing over, and the caller takes the JSON path, which accepts what is valid
 * JSON and says precisely what is wrong with the rest.
 */
import { COMPRESSION_NONE, COMPRESSION_ZSTD } from './compress.js';
import { BLOB_TYPE_OF_CODE } from './format.js';

const ID_HEX = 64;

/** One blob as the parser hands it over: its id is `bytes[idAt, idAt + 64)`, lowercase hex. */
interface BlobBytes {
  idAt: number;
  typeCode: number;
  offset: number;
  length: number;
  rawLength: number;
  compression: number;
}

/** What an index file holds, as seen by a reader of its bytes. */
export interface IndexBytesSink {
  /** A pack; its blobs follow, until the next pack. */
  pack(name: string): void;
  /** A blob of the last pack (the object is reused: copy what you keep). */
  blob(b: Readonly<BlobBytes>): void;
}

/** Lowercase hex digits only: what HEX64 accepts. */
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdef') HEX[c.charCodeAt(0)] = 1;

const OPEN_PACKS = Buffer.from('{"packs":[');
const OPEN_PACK = Buffer.from('{"id":"');
const OPEN_BLOBS = Buffer.from('","blobs":[');

/**
 * Count the blobs of an index file in our writer's form, checking all of it; undefined
 * when the bytes are in any other form (valid or not). Nothing is handed over.
 */
export function countIndexBlobs(bytes: Uint8Array): number | undefined {
  let n = 0;
  return walk(bytes, undefined, () => n++) ? n : undefined;
}

/**
 * Hand every pack and blob of an index file in our writer's form to `sink`. Call it only
 * on bytes countIndexBlobs accepted: then it cannot fail half way.
 */
export function readIndexBlobs(bytes: Uint8Array, sink: IndexBytesSink): void {
  // the count checked every hex digit; the read only finds where each id is
  if (!walk(bytes, sink, undefined, true)) throw new Error('index bytes changed between count and read');
}

/*
 * The walk below is functions of (bytes, position) that return the position after what
 * they matched, or -1: a loader runs it once per index file, mostly before V8 has
 * optimised anything, and closures that share one mutable position cost it far more there.
 */

/** After `lit` at `at`, or -1. */
function literal(bytes: Uint8Array, at: number, lit: Uint8Array): number {
  if (at < 0 || at + lit.length > bytes.length) return -1;
  for (let i = 0; i < lit.length; i++) if (bytes[at + i] !== lit[i]) return -1;
  return at + lit.length;
}

/** After byte `c` at `at`, or -1. */
function byte(bytes: Uint8Array, at: number, c: number): number {
  return at >= 0 && bytes[at] === c ? at + 1 : -1;
}

/** After 64 lowercase hex digits at `at`, or -1 (`checked`: they were checked already, only skipped). */
function hex64(bytes: Uint8Array, at: number, checked: boolean): number {
  if (at < 0 || at + ID_HEX > bytes.length) return -1;
  if (!checked) for (let i = at; i < at + ID_HEX; i++) if (HEX[bytes[i] as number] !== 1) return -1;
  return at + ID_HEX;
}

/**
 * After a u32 at `at` written as JSON.stringify writes it (no sign, no leading zero, no
 * fraction or exponent), its value put in `out[k]`; or -1.
 */
function u32(bytes: Uint8Array, at: number, out: Float64Array, k: number): number {
  if (at < 0) return -1;
  const start = at;
  const end = Math.min(bytes.length, start + 11);
  let v = 0;
  while (at < end) {
    const d = (bytes[at] as number) - 0x30;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
    at++;
  }
  const digits = at - start;
  if (digits === 0 || digits > 10 || (digits > 1 && bytes[start] === 0x30) || v > 0xffffffff) return -1;
  out[k] = v;
  return at;
}

/**
 * The items of a JSON list whose '[' ends just before `at`, each read by `item` (the
 * position after it, or -1); the position after the list's ']', or -1.
 */
function list(bytes: Uint8Array, at: number, item: (at: number) => number): number {
  if (at < 0) return -1;
  if (bytes[at] === 0x5d /* ] */) return at + 1;
  for (;;) {
    at = item(at);
    if (at < 0) return -1;
    if (bytes[at] !== 0x2c /* , */) return byte(bytes, at, 0x5d);
    at++;
  }
}

function walk(
  bytes: Uint8Array,
  sink: IndexBytesSink | undefined,
  counted: (() => void) | undefined,
  checked = false,
): boolean {
  const blob: BlobBytes = { idAt: 0, typeCode: 0, offset: 0, length: 0, rawLength: 0, compression: 0 };
  // type, offset, length, raw length, compression of the blob being read
  const v = new Float64Array(5);
  const blobItem = (from: number): number => {
    let at = byte(bytes, byte(bytes, from, 0x5b /* [ */), 0x22 /* " */);
    const idAt = at;
    at = byte(bytes, byte(bytes, hex64(bytes, at, checked), 0x22), 0x2c /* , */);
    at = byte(bytes, u32(bytes, at, v, 0), 0x2c);
    at = byte(bytes, u32(bytes, at, v, 1), 0x2c);
    at = byte(bytes, u32(bytes, at, v, 2), 0x2c);
    at = byte(bytes, u32(bytes, at, v, 3), 0x2c);
    at = byte(bytes, u32(bytes, at, v, 4), 0x5d);
    if (at < 0) return -1;
    const t = v[0] as number;
    const c = v[4] as number;
    if (BLOB_TYPE_OF_CODE[t] === undefined || (c !== COMPRESSION_NONE && c !== COMPRESSION_ZSTD)) return -1;
    blob.idAt = idAt;
    blob.typeCode = t;
    blob.offset = v[1] as number;
    blob.length = v[2] as number;
    blob.rawLength = v[3] as number;
    blob.compression = c;
    sink?.blob(blob);
    counted?.();
    return at;
  };
  const packItem = (from: number): number => {
    const nameAt = literal(bytes, from, OPEN_PACK);
    const at = hex64(bytes, nameAt, checked);
    if (at < 0) return -1;
    sink?.pack(Buffer.from(bytes.buffer, bytes.byteOffset + nameAt, ID_HEX).toString('latin1'));
    return byte(bytes, list(bytes, literal(bytes, at, OPEN_BLOBS), blobItem), 0x7d /* } */);
  };
  return byte(bytes, list(bytes, literal(bytes, 0, OPEN_PACKS), packItem), 0x7d) === bytes.length;
}

/** The value of each lowercase hex digit (others are never looked up: walk checked them). */
const HEX_VALUE = new Uint8Array(256);
for (const [i, c] of [...'0123456789abcdef'].entries()) HEX_VALUE[c.charCodeAt(0)] = i;

/** Decode the 64 hex digits at `bytes[at…]` into the 32 bytes of `out`. */
export function hexInto(bytes: Uint8Array, at: number, out: Uint8Array): void {
  for (let i = 0; i < 32; i++) {
    out[i] =
      ((HEX_VALUE[bytes[at + 2 * i] as number] as number) << 4) |
      (HEX_VALUE[bytes[at + 2 * i + 1] as number] as number);
  }
}
