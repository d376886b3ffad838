/**
 * The base of every Backend wrapper: each call goes to the wrapped backend through `call` (a retrying wrapper
 * repeats it), and the optional methods exist exactly when the wrapped backend has them, so a wrapper never hides
 * or invents a capability.
 */
import type {
  Backend,
  ByteRange,
  Bytes,
  ImmutabilityReport,
  ObjectDraft,
  ObjectHandle,
  ObjectInfo,
  ObjectReader,
  ObjectType,
  StorageFacts,
  TemporaryFile,
} from './backend.js';

/** An object as messages name it: "config" or "<type>/<name>". */
export function describeHandle(h: ObjectHandle): string {
  return h.type === 'config' ? 'config' : `${h.type}/${h.name}`;
}

/** A stand-in for another backend: has an optional method exactly when that backend has it (set by the subclass). */
export abstract class StandInBackend {
  createDraft?: (type: Exclude<ObjectType, 'config'>) => ObjectDraft;
  openReader?: (h: ObjectHandle) => Promise<ObjectReader>;
  loadStream?: (h: ObjectHandle, range: ByteRange) => AsyncIterable<Uint8Array>;
  listTemporary?: () => AsyncIterable<TemporaryFile>;
  removeTemporary?: (t: TemporaryFile) => Promise<void>;
  storageFacts?: () => Promise<StorageFacts>;
  retainedUntil?: (h: ObjectHandle) => Promise<number | undefined>;
  probeImmutability?: () => Promise<ImmutabilityReport>;
}

export abstract class WrappedBackend extends StandInBackend implements Backend {
  constructor(readonly inner: Backend) {
    super();
    const {
      createDraft,
      openReader,
      loadStream,
      listTemporary,
      removeTemporary,
      storageFacts,
      retainedUntil,
      probeImmutability,
    } = inner;
    // a draft's appends cannot be repeated one by one: a wrapper passes it through as it is
    if (createDraft !== undefined) this.createDraft = (type) => createDraft.call(inner, type);
    if (openReader !== undefined) {
      this.openReader = (h) => this.openReaderOf(h, () => openReader.call(inner, h));
    }
    if (loadStream !== undefined) {
      this.loadStream = (h, range) => this.loadStreamOf(h, range, (r) => loadStream.call(inner, h, r));
    }
    if (listTemporary !== undefined) this.listTemporary = () => listTemporary.call(inner);
    if (removeTemporary !== undefined) {
      this.removeTemporary = (t) => this.call(`remove ${t.path}`, () => removeTemporary.call(inner, t));
    }
    if (storageFacts !== undefined)
      this.storageFacts = () => this.call('storage facts', () => storageFacts.call(inner));
    if (retainedUntil !== undefined) {
      this.retainedUntil = (h) => this.call(`stat ${describeHandle(h)}`, () => retainedUntil.call(inner, h));
    }
    // a probe puts and deletes canaries: it runs once, never repeated by a wrapper
    if (probeImmutability !== undefined) this.probeImmutability = () => probeImmutability.call(inner);
  }

  /** How a call reaches the wrapped backend; `what` names it for messages. */
  protected call<T>(_what: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  /** How a reader of the wrapped backend is opened; `open` opens one, and may be called again (a new reader). */
  protected openReaderOf(h: ObjectHandle, open: () => Promise<ObjectReader>): Promise<ObjectReader> {
    return this.call(`open ${describeHandle(h)}`, open);
  }

  /** How a streamed read of the wrapped backend is made; `load` starts one (of any part of `range`), and may be
   * called again. */
  protected loadStreamOf(
    _h: ObjectHandle,
    range: ByteRange,
    load: (range: ByteRange) => AsyncIterable<Uint8Array>,
  ): AsyncIterable<Uint8Array> {
    return load(range);
  }

  get location(): string {
    return this.inner.location;
  }

  create(): Promise<void> {
    return this.call('create', () => this.inner.create());
  }

  isRepository(): Promise<boolean> {
    return this.call('open', () => this.inner.isRepository());
  }

  save(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.call(`save ${describeHandle(h)}`, () => this.inner.save(h, data));
  }

  saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.call(`save ${describeHandle(h)}`, () => this.inner.saveNew(h, data));
  }

  load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    return this.call(`load ${describeHandle(h)}`, () => this.inner.load(h, range));
  }

  stat(h: ObjectHandle): Promise<ObjectInfo> {
    return this.call(`stat ${describeHandle(h)}`, () => this.inner.stat(h));
  }

  list(type: ObjectType): AsyncIterable<ObjectInfo> {
    return this.inner.list(type);
  }

  remove(h: ObjectHandle): Promise<void> {
    return this.call(`remove ${describeHandle(h)}`, () => this.inner.remove(h));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
