/**
 * The pack being filled, and how it reaches the backend. Where the backend takes drafts (a local directory), the
 * pack's bytes are appended to its object as they come, restic's way with its temporary pack files: no pack is
 * ever whole in memory, where a backup held up to 16 MiB for the open pack and 16 MiB for each pack being saved.
 * Elsewhere (S3, SFTP, REST: one request per object) the pack is kept in memory and saved whole.
 */
import type { Backend, ObjectDraft } from '../backend/backend.js';
import type { BlobType } from './format.js';
import { PackBuilder, type PackedBlob } from './pack.js';

/** Bytes of the open pack gathered into one append. */
const APPEND_BYTES = 1024 * 1024;
/** Bytes being appended at once; adding waits beyond it (a slow disk holds the writers back). */
const APPENDING_LIMIT = 8 * 1024 * 1024;

/**
 * Blobs whose bytes share one buffer of the caller's (a worker's sealed segment): `written` is called once every
 * blob added with it is written to its draft, when the buffer may be used again. Never called where the backend
 * takes no drafts (a pack saved whole may be held by the backend after its save: S3's parts, a retried attempt),
 * nor after a failed write.
 */
export interface SharedBytes {
  /** Blobs added with it whose bytes are not yet written; set by the caller to the number it will add. */
  blobsLeft: number;
  written(): void;
}

/** A finished pack: what the index will say, and how to store it (a save, or the draft's commit). */
export interface FinishedPack {
  name: string;
  size: number;
  blobs: PackedBlob[];
  store(): Promise<void>;
}

export class OpenPack {
  private readonly builder = new PackBuilder();
  private draft: ObjectDraft | undefined;
  private appending = 0;
  private readonly writes = new Set<Promise<void>>();
  private failure: unknown;
  /** The SharedBytes of blobs added since the last append, one entry per blob. */
  private pending: SharedBytes[] = [];

  constructor(private readonly backend: Backend) {}

  get size(): number {
    return this.builder.size;
  }

  get count(): number {
    return this.builder.count;
  }

  /**
   * Append an already sealed blob; the caller MUST NOT modify `sealed` until store() settles, or, with `shared`,
   * until its written() is called.
   */
  add(id: string, type: BlobType, sealed: Buffer, rawLength: number, compression: number, shared?: SharedBytes): void {
    this.builder.add(id, type, sealed, rawLength, compression);
    if (shared !== undefined && this.backend.createDraft !== undefined) this.pending.push(shared);
  }

  /**
   * After an add: with a draft, append what was added once it is worth a write, and wait while too much is being
   * written. Throws a failed append's error.
   */
  async settle(): Promise<void> {
    if (this.backend.createDraft === undefined) return;
    if (this.builder.untaken >= APPEND_BYTES) this.append(this.builder.takeParts());
    while (this.appending > APPENDING_LIMIT && this.failure === undefined) await Promise.race(this.writes);
    if (this.failure !== undefined) throw this.failure;
  }

  /** Seal the header; the pack is stored by the result's store(). Nothing may be added after. */
  finish(key: Uint8Array): FinishedPack {
    const { name, parts, size, blobs } = this.builder.finish(key);
    const h = { type: 'data' as const, name };
    if (this.backend.createDraft === undefined) {
      return { name, size, blobs, store: () => this.backend.save(h, parts) };
    }
    const draft = this.append(parts);
    // the commit waits for every append and throws the first that failed
    return { name, size, blobs, store: () => draft.commit(h) };
  }

  /** Drop what was written of the pack (a backup that failed). */
  discard(): Promise<void> {
    this.pending = [];
    return this.draft?.discard() ?? Promise.resolve();
  }

  private append(parts: readonly Uint8Array[]): ObjectDraft {
    this.draft ??= (this.backend.createDraft as NonNullable<Backend['createDraft']>)('data');
    const draft = this.draft;
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    this.appending += bytes;
    const write: Promise<void> = draft.append(parts).then(
      () => this.appended(write, bytes),
      (err: unknown) => {
        this.failure ??= err;
        this.appended(write, bytes);
      },
    );
    this.writes.add(write);
    if (this.pending.length > 0) {
      // the blobs added since the last append are in this one; an earlier append of theirs may still be running
      const shared = this.pending;
      this.pending = [];
      Promise.all([...this.writes]).then(
        () => {
          if (this.failure !== undefined) return;
          for (const s of shared) if (--s.blobsLeft === 0) s.written();
        },
        () => undefined,
      );
    }
    return draft;
  }

  private appended(write: Promise<void>, bytes: number): void {
    this.appending -= bytes;
    this.writes.delete(write);
  }
}
