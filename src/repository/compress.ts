/**
 * Blob compression: zstd where it pays, nothing for content that is already
 * compressed (PNG/JPEG tiles, archives) — detected by magic bytes first, then by
 * the result of a trial compression.
 */
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { createRequire } from 'node:module';
import { FoleBackupError } from '../errors.js';

export const COMPRESSION_NONE = 0;
export const COMPRESSION_ZSTD = 1;
export type Compression = typeof COMPRESSION_NONE | typeof COMPRESSION_ZSTD;

/** Leading bytes of formats that are compressed already. Data, not scattered ifs. */
const INCOMPRESSIBLE_MAGIC: readonly Buffer[] = [
  Buffer.from([0x89, 0x50, 0x4e, 0x47]), // PNG
  Buffer.from([0xff, 0xd8, 0xff]), // JPEG
  Buffer.from('GIF8'), // GIF
  Buffer.from('RIFF'), // WEBP (and other RIFF media)
  Buffer.from([0x50, 0x4b, 0x03, 0x04]), // zip, docx, xlsx, kmz
  Buffer.from([0x1f, 0x8b]), // gzip
  Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), // zstd
  Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a]), // xz
  Buffer.from('BZh'), // bzip2
  Buffer.from('%PDF'), // mostly deflated streams
];

const MIN_COMPRESS = 256;

/** Whether trying zstd on `data` can pay: not tiny, not an already-compressed format. */
const worthTrying = (data: Uint8Array): boolean => data.length >= MIN_COMPRESS && !looksCompressed(data);

function looksCompressed(data: Uint8Array): boolean {
  for (const magic of INCOMPRESSIBLE_MAGIC) {
    if (data.length >= magic.length && magic.every((b, i) => data[i] === b)) return true;
  }
  return false;
}

/**
 * Level 1, zstd's fastest: on the bench shapes' data (SQLite pages, tiles, text) in 16 KiB
 * chunks it compresses 1.2–1.5× faster than level 3 and the output is the same size or up
 * to 2% smaller; only on long runs of text is it 5–9% larger. A full backup of database
 * shapes is bound by CPU on two cores, and zstd was its largest part (docs/BENCHMARKS.md).
 * Any level decompresses the same way, so repositories written at level 3 read as before.
 */
export const ZSTD_LEVEL = 1;

/**
 * Whether `packed` bytes of `raw` are worth keeping: at least 1/16 saved (below that, decompression costs more than it
 * saves).
 */
const worthIt = (packed: number, raw: number): boolean => packed <= raw - (raw >> 4);

/** Compress if worthwhile: returns the bytes to store and how they are encoded. */
export function maybeCompress(data: Uint8Array): { bytes: Uint8Array; compression: Compression } {
  if (!worthTrying(data)) return { bytes: data, compression: COMPRESSION_NONE };
  const packed = zstdCompress(data, { compressionLevel: ZSTD_LEVEL });
  if (!worthIt(packed.length, data.length)) return { bytes: data, compression: COMPRESSION_NONE };
  return { bytes: packed, compression: COMPRESSION_ZSTD };
}

/** zstd-napi's native binding (CommonJS, loaded by a computed path: no named exports for `import`). */
type Binding = typeof import('zstd-napi/binding.js');
const binding = createRequire(import.meta.url)('zstd-napi/binding.js') as Binding;

/** Room compressInto may need for `n` bytes. */
export const compressBound = (n: number): number => binding.compressBound(n);

let cctx: InstanceType<Binding['CCtx']> | undefined;

/**
 * maybeCompress without an allocation: compresses `data` into `dst` (at least
 * compressBound(data.length) bytes, reused by the caller) and returns the
 * compressed length, or -1 when the data is better stored as it is. Same
 * decision and format as maybeCompress.
 */
export function compressInto(data: Uint8Array, dst: Uint8Array): number {
  if (!worthTrying(data)) return -1;
  cctx ??= new binding.CCtx();
  const n = cctx.compress(dst, data, ZSTD_LEVEL);
  return worthIt(n, data.length) ? n : -1;
}

let dctx: InstanceType<Binding['DCtx']> | undefined;

/**
 * A blob's bytes as stored, back to its `rawLength` bytes. One decompression context per
 * thread, reused, and the output sized by what the index records: zstd-napi's
 * `decompress()` resets its context's parameters and reads the frame headers on every
 * call (7–12 µs a 16 KiB chunk of barely compressible pages, against 3.4 µs; on a restore's
 * real chunks, ~28 µs of zstd's own work each, the difference is lost in the noise). And a
 * frame is never allocated at the size its own header claims: one that holds more than
 * `rawLength` bytes fails inside zstd.
 *
 * `into`: a buffer of the caller's for the output (used when it holds `rawLength` bytes; the result then views its
 * start), for a caller done with each blob's bytes before it opens the next: no buffer per blob to wait for the
 * garbage collector.
 */
export function decompress(
  data: Uint8Array,
  compression: number,
  rawLength: number,
  what: string,
  into?: Uint8Array,
): Buffer {
  if (compression === COMPRESSION_NONE) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (compression !== COMPRESSION_ZSTD) {
    throw new FoleBackupError('REPO_CORRUPT', `${what}: unknown compression ${compression}`);
  }
  dctx ??= new binding.DCtx();
  const out =
    into !== undefined && into.byteLength >= rawLength
      ? Buffer.from(into.buffer, into.byteOffset, rawLength)
      : Buffer.allocUnsafe(rawLength);
  let n: number;
  try {
    n = dctx.decompress(out, data);
  } catch (err) {
    throw new FoleBackupError('REPO_CORRUPT', `${what}: cannot decompress to its ${rawLength} bytes`, { cause: err });
  }
  if (n !== rawLength) {
    throw new FoleBackupError('REPO_CORRUPT', `${what}: decompressed to ${n} bytes, expected ${rawLength}`);
  }
  return out;
}

/** zstd for metadata objects (index, snapshot, lock), always applied. */
export function compressAlways(data: Uint8Array): Buffer {
  return zstdCompress(data, { compressionLevel: ZSTD_LEVEL });
}

export function decompressAny(data: Uint8Array, what: string): Buffer {
  try {
    return zstdDecompress(data);
  } catch (err) {
    throw new FoleBackupError('REPO_CORRUPT', `${what}: cannot decompress`, { cause: err });
  }
}
