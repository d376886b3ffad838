/**
 * A backend whose owner outlives its users: close() from a user (a Repository
 * a command closes when it is done) is ignored, and the owner ends it with
 * release(). The CLI opens each repository's backend once, lets the command
 * use and close its Repository, and still appends the command's audit entry
 * through the same backend afterwards.
 */
import type {
  Backend,
  ByteRange,
  Bytes,
  ObjectHandle,
  ObjectInfo,
  ObjectReader,
  ImmutabilityReport,
  ObjectType,
  StorageFacts,
  TemporaryFile,
} from './backend.js';

export class SharedBackend implements Backend {
  readonly openReader?: (h: ObjectHandle) => Promise<ObjectReader>;
  readonly listTemporary?: () => AsyncIterable<TemporaryFile>;
  readonly removeTemporary?: (t: TemporaryFile) => Promise<void>;
  readonly storageFacts?: () => Promise<StorageFacts>;
  readonly retainedUntil?: (h: ObjectHandle) => Promise<number | undefined>;
  readonly probeImmutability?: () => Promise<ImmutabilityReport>;

  constructor(readonly inner: Backend) {
    // the optional methods exist exactly when the wrapped backend has them
    if (inner.openReader !== undefined)
      this.openReader = (h) => (inner.openReader as (h: ObjectHandle) => Promise<ObjectReader>).call(inner, h);
    if (inner.listTemporary !== undefined)
      this.listTemporary = () => (inner.listTemporary as () => AsyncIterable<TemporaryFile>).call(inner);
    if (inner.removeTemporary !== undefined) {
      this.removeTemporary = (t) => (inner.removeTemporary as (t: TemporaryFile) => Promise<void>).call(inner, t);
    }
    const { storageFacts, retainedUntil, probeImmutability } = inner;
    if (storageFacts !== undefined) this.storageFacts = () => storageFacts.call(inner);
    if (retainedUntil !== undefined) this.retainedUntil = (h) => retainedUntil.call(inner, h);
    if (probeImmutability !== undefined) this.probeImmutability = () => probeImmutability.call(inner);
  }

  get location(): string {
    return this.inner.location;
  }

  create(): Promise<void> {
    return this.inner.create();
  }

  isRepository(): Promise<boolean> {
    return this.inner.isRepository();
  }

  save(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.inner.save(h, data);
  }

  saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.inner.saveNew(h, data);
  }

  load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    return this.inner.load(h, range);
  }

  stat(h: ObjectHandle): Promise<ObjectInfo> {
    return this.inner.stat(h);
  }

  list(type: ObjectType): AsyncIterable<ObjectInfo> {
    return this.inner.list(type);
  }

  remove(h: ObjectHandle): Promise<void> {
    return this.inner.remove(h);
  }

  /** A user is done with it: nothing happens until the owner calls release(). */
  async close(): Promise<void> {}

  /** The owner is done: close the wrapped backend. */
  release(): Promise<void> {
    return this.inner.close();
  }
}
