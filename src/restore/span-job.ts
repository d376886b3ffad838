/**
 * A span job as it crosses to a restore worker: the blobs of one span and the
 * places each goes to, as two number arrays and two strings instead of an
 * object per blob and per target. Handing over a span of 4,000 tiles then
 * costs four copies, not 8,000 objects serialized on one thread and rebuilt on
 * the other (which, measured, was a third of the main thread's work).
 *
 *   ids      the blobs' ids, 64 hex characters each, concatenated
 *   blobs    per blob: at (offset in the span), length, rawLength, compression,
 *            type code, number of targets (its targets follow the previous blob's)
 *   targets  per target: offset in the file, flags (CREATE, META), mode, mtimeMs,
 *            uid, gid (-1 when the owner is left as created)
 *   paths    per target: its path relative to the staging root, NUL-separated
 *            (a backup path never holds NUL: src/snapshot/validate.ts)
 */
import { BLOB_TYPE_CODE, BLOB_TYPE_OF_CODE, type BlobType } from '../repository/format.js';
import type { PackedBlob } from '../repository/pack.js';
import type { Owner } from './ownership.js';

export interface EncodedSpan {
  ids: string;
  blobs: Float64Array;
  targets: Float64Array;
  paths: string;
}

/** Mode and mtime (and, when the restore gives owners, the owner) to give a file once it is complete. */
export interface FileMeta {
  mode: number;
  mtimeMs: number;
  owner?: Owner;
}

/** One place a blob goes to. */
interface SpanTarget {
  /** Relative to the staging root. */
  path: string;
  offset: number;
  /** A one-chunk file: created (exclusively) by this write, then closed. */
  create: boolean;
  /** Applied right after a `create` write. */
  meta?: FileMeta;
}

export interface SpanBlob extends Pick<PackedBlob, 'id' | 'type' | 'rawLength' | 'compression' | 'length'> {
  /** Offset of the sealed blob in the span's bytes. */
  at: number;
  targets: SpanTarget[];
}

const BLOB_FIELDS = 6;
const TARGET_FIELDS = 6;
const CREATE = 1;
const META = 2;

/** Builds an EncodedSpan blob by blob, each blob followed by its targets. */
export class SpanEncoder {
  private readonly ids: string[] = [];
  private readonly blobs: number[] = [];
  private readonly targets: number[] = [];
  private readonly paths: string[] = [];
  private count = -1;

  blob(b: Pick<PackedBlob, 'id' | 'type' | 'rawLength' | 'compression' | 'length'>, at: number): void {
    this.ids.push(b.id);
    this.blobs.push(at, b.length, b.rawLength, b.compression, BLOB_TYPE_CODE[b.type], 0);
    this.count = this.blobs.length - 1;
  }

  target(path: string, offset: number, create: boolean, meta?: FileMeta): void {
    if (this.count < 0) throw new Error('SpanEncoder: a target before any blob');
    this.blobs[this.count] = (this.blobs[this.count] as number) + 1;
    this.targets.push(
      offset,
      (create ? CREATE : 0) | (meta !== undefined ? META : 0),
      meta?.mode ?? 0,
      meta?.mtimeMs ?? 0,
      meta?.owner?.uid ?? -1,
      meta?.owner?.gid ?? -1,
    );
    this.paths.push(path);
  }

  finish(): EncodedSpan {
    return {
      ids: this.ids.join(''),
      blobs: Float64Array.from(this.blobs),
      targets: Float64Array.from(this.targets),
      paths: this.paths.join('\0'),
    };
  }
}

/** The blobs of an EncodedSpan, with their targets. */
export function decodeSpan(e: EncodedSpan): SpanBlob[] {
  const paths = e.paths.split('\0');
  const out: SpanBlob[] = [];
  let t = 0;
  for (let i = 0; i * BLOB_FIELDS < e.blobs.length; i++) {
    const f = (k: number): number => e.blobs[i * BLOB_FIELDS + k] as number;
    const targets: SpanTarget[] = [];
    for (let n = f(5); n > 0; n--, t++) {
      const g = (k: number): number => e.targets[t * TARGET_FIELDS + k] as number;
      const flags = g(1);
      targets.push({
        path: paths[t] as string,
        offset: g(0),
        create: (flags & CREATE) !== 0,
        ...((flags & META) !== 0
          ? { meta: { mode: g(2), mtimeMs: g(3), ...(g(4) >= 0 ? { owner: { uid: g(4), gid: g(5) } } : {}) } }
          : {}),
      });
    }
    out.push({
      id: e.ids.slice(i * 64, i * 64 + 64),
      at: f(0),
      length: f(1),
      rawLength: f(2),
      compression: f(3),
      type: BLOB_TYPE_OF_CODE[f(4)] as BlobType,
      targets,
    });
  }
  return out;
}
