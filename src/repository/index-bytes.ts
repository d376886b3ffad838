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
  if (!walk(bytes, sink, undefined)) throw new Error('index bytes changed between count and read');
}

function walk(bytes: Uint8Array, sink: IndexBytesSink | undefined, counted: (() => void) | undefined): boolean {
  const end = bytes.length;
  let at = 0;
  const literal = (lit: Uint8Array): boolean => {
    if (at + lit.length > end) return false;
    for (let i = 0; i < lit.length; i++) if (bytes[at + i] !== lit[i]) return false;
    at += lit.length;
    return true;
  };
  const byte = (c: number): boolean => {
    if (bytes[at] !== c) return false;
    at++;
    return true;
  };
  const hex64 = (): boolean => {
    if (at + ID_HEX > end) return false;
    for (let i = 0; i < ID_HEX; i++) if (HEX[bytes[at + i] as number] !== 1) return false;
    at += ID_HEX;
    return true;
  };
  /** A u32 written as JSON.stringify writes it: no sign, no leading zero, no fraction or exponent. */
  const u32 = (): number | undefined => {
    const start = at;
    let v = 0;
    while (at < end && (bytes[at] as number) >= 0x30 && (bytes[at] as number) <= 0x39 && at - start < 11) {
      v = v * 10 + ((bytes[at] as number) - 0x30);
      at++;
    }
    const digits = at - start;
    if (digits === 0 || digits > 10 || (digits > 1 && bytes[start] === 0x30) || v > 0xffffffff) return undefined;
    return v;
  };
  const blob: BlobBytes = { idAt: 0, typeCode: 0, offset: 0, length: 0, rawLength: 0, compression: 0 };

  if (!literal(OPEN_PACKS)) return false;
  if (!byte(0x5d /* ] */)) {
    for (;;) {
      if (!literal(OPEN_PACK)) return false;
      const nameAt = at;
      if (!hex64()) return false;
      sink?.pack(Buffer.from(bytes.buffer, bytes.byteOffset + nameAt, ID_HEX).toString('latin1'));
      if (!literal(OPEN_BLOBS)) return false;
      if (!byte(0x5d)) {
        for (;;) {
          if (!byte(0x5b /* [ */) || !byte(0x22 /* " */)) return false;
          blob.idAt = at;
          if (!hex64() || !byte(0x22) || !byte(0x2c /* , */)) return false;
          const t = u32();
          if (t === undefined || BLOB_TYPE_OF_CODE[t] === undefined || !byte(0x2c)) return false;
          const offset = u32();
          if (offset === undefined || !byte(0x2c)) return false;
          const length = u32();
          if (length === undefined || !byte(0x2c)) return false;
          const rawLength = u32();
          if (rawLength === undefined || !byte(0x2c)) return false;
          const c = u32();
          if ((c !== COMPRESSION_NONE && c !== COMPRESSION_ZSTD) || !byte(0x5d)) return false;
          blob.typeCode = t;
          blob.offset = offset;
          blob.length = length;
          blob.rawLength = rawLength;
          blob.compression = c;
          sink?.blob(blob);
          counted?.();
          if (byte(0x2c)) continue;
          if (!byte(0x5d)) return false;
          break;
        }
      }
      if (!byte(0x7d /* } */)) return false;
      if (byte(0x2c)) continue;
      if (!byte(0x5d)) return false;
      break;
    }
  }
  return byte(0x7d) && at === end;
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
