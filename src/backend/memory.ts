/**
 * A repository held in memory, for tests. Same contract as every backend: buffers
 * are copied in and out, so no caller can change stored bytes after the fact.
 */

import { randomBytes } from 'node:crypto';
import { FoleBackupError } from '../errors.js';
import type { Backend, ByteRange, Bytes, ObjectHandle, ObjectInfo, ObjectType } from './backend.js';
import { beyondEnd, checkHandle, checkRange, joinBytes } from './backend.js';

export class MemoryBackend implements Backend {
  readonly location = `memory:${randomBytes(6).toString('hex')}`;
  private readonly objects = new Map<ObjectType, Map<string, Buffer>>();
  /** When each object was saved, by type and name (its mtime). */
  private readonly written = new Map<ObjectType, Map<string, number>>();
  private created = false;
  /** Bytes per piece of a streamed read (odd, so pieces straddle the spans a restore cuts them into). */
  streamPiece = 1021;

  /** Throws REPO_NOT_EMPTY if create() already ran or any object is stored. */
  async create(): Promise<void> {
    const hasObjects = [...this.objects.values()].some((m) => m.size > 0);
    if (this.created || hasObjects) {
      throw new FoleBackupError('REPO_NOT_EMPTY', `create repository ${this.location}: location is not empty`, {
        hint: 'choose an empty directory or a new path',
      });
    }
    this.created = true;
  }

  async isRepository(): Promise<boolean> {
    return this.objects.get('config')?.has('config') ?? false;
  }

  async save(h: ObjectHandle, data: Bytes): Promise<void> {
    checkHandle(h);
    let byName = this.objects.get(h.type);
    if (byName === undefined) {
      byName = new Map();
      this.objects.set(h.type, byName);
    }
    byName.set(keyOf(h), joinBytes(data));
    let times = this.written.get(h.type);
    if (times === undefined) {
      times = new Map();
      this.written.set(h.type, times);
    }
    times.set(keyOf(h), Date.now());
  }

  async saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    checkHandle(h);
    if (this.objects.get(h.type)?.has(keyOf(h)) === true) {
      throw new FoleBackupError('ALREADY_EXISTS', `write ${this.location}/${describe(h)}: it already exists`);
    }
    await this.save(h, data);
  }

  /** Set an object's modification time (tests of what is judged by age). */
  setModified(h: ObjectHandle, mtimeMs: number): void {
    this.find(h);
    this.written.get(h.type)?.set(keyOf(h), mtimeMs);
  }

  async load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    const stored = this.find(h);
    if (range === undefined) return Buffer.from(stored);
    const what = `${this.location}/${describe(h)}`;
    checkRange(what, range);
    if (range.offset + range.length > stored.length) throw beyondEnd(what, range, stored.length);
    return Buffer.from(stored.subarray(range.offset, range.offset + range.length));
  }

  /** A range in pieces of at most `streamPiece` bytes (Backend.loadStream): restore's streamed reads, in tests. */
  async *loadStream(h: ObjectHandle, range: ByteRange): AsyncIterable<Uint8Array> {
    const whole = await this.load(h, range);
    for (let at = 0; at < whole.length; at += this.streamPiece) yield whole.subarray(at, at + this.streamPiece);
  }

  async stat(h: ObjectHandle): Promise<ObjectInfo> {
    const size = this.find(h).length;
    const mtimeMs = this.written.get(h.type)?.get(keyOf(h));
    return mtimeMs === undefined ? { name: keyOf(h), size } : { name: keyOf(h), size, mtimeMs };
  }

  async *list(type: ObjectType): AsyncIterable<ObjectInfo> {
    // Snapshot the entries so saves and removes during iteration do not disturb it.
    const entries = [...(this.objects.get(type) ?? new Map<string, Buffer>()).entries()];
    const times = this.written.get(type);
    for (const [name, data] of entries) {
      const mtimeMs = times?.get(name);
      yield mtimeMs === undefined ? { name, size: data.length } : { name, size: data.length, mtimeMs };
    }
  }

  async remove(h: ObjectHandle): Promise<void> {
    checkHandle(h);
    this.objects.get(h.type)?.delete(keyOf(h));
    this.written.get(h.type)?.delete(keyOf(h));
  }

  async close(): Promise<void> {
    // Nothing to release; the data lives as long as the object.
  }

  private find(h: ObjectHandle): Buffer {
    checkHandle(h);
    const stored = this.objects.get(h.type)?.get(keyOf(h));
    if (stored === undefined) {
      throw new FoleBackupError('NOT_FOUND', `read ${this.location}/${describe(h)}: no such object`);
    }
    return stored;
  }
}

/** The config object's name is ignored (there is only one). */
function keyOf(h: ObjectHandle): string {
  return h.type === 'config' ? 'config' : h.name;
}

function describe(h: ObjectHandle): string {
  return h.type === 'config' ? 'config' : `${h.type}/${h.name}`;
}
