/**
 * A backend whose module is loaded on its first call. The AWS SDK and ssh2 cost every process that imports them
 * ~20 MiB of memory and a few hundred milliseconds of start-up, and most runs never talk to S3 or SFTP: a local
 * backup, a `snapshots`, a restore from disk. The location is checked at once (its parser is apart from the SDK);
 * only the client waits for the first call.
 */
import type { Backend, ByteRange, Bytes, ObjectHandle, ObjectInfo, ObjectType } from './backend.js';
import { StandInBackend } from './wrapped.js';

/** Every optional method of Backend; a lazy stand-in offers exactly those its backend class has. */
export const OPTIONAL_METHODS = [
  'openReader',
  'loadStream',
  'listTemporary',
  'removeTemporary',
  'storageFacts',
  'retainedUntil',
  'probeImmutability',
] as const;
export type OptionalMethod = (typeof OPTIONAL_METHODS)[number];

export class LazyBackend extends StandInBackend implements Backend {
  private loaded: Promise<Backend> | undefined;

  /** `has`: the optional methods the loaded backend has; `make` loads and makes it (on the first call). */
  constructor(
    readonly location: string,
    has: readonly OptionalMethod[],
    private readonly make: () => Promise<Backend>,
  ) {
    super();
    const on = new Set(has);
    const missing = (name: OptionalMethod): Error => new Error(`${location}: the backend has no ${name}`);
    const optional = <K extends OptionalMethod>(name: K, b: Backend): NonNullable<Backend[K]> => {
      const fn = b[name];
      if (fn === undefined) throw missing(name);
      return fn.bind(b) as NonNullable<Backend[K]>;
    };
    if (on.has('openReader')) this.openReader = async (h) => optional('openReader', await this.backend())(h);
    if (on.has('loadStream')) {
      const self = this;
      this.loadStream = (h, range) =>
        (async function* () {
          yield* optional('loadStream', await self.backend())(h, range);
        })();
    }
    if (on.has('listTemporary')) {
      const self = this;
      this.listTemporary = async function* () {
        yield* optional('listTemporary', await self.backend())();
      };
    }
    if (on.has('removeTemporary'))
      this.removeTemporary = async (t) => optional('removeTemporary', await this.backend())(t);
    if (on.has('storageFacts')) this.storageFacts = async () => optional('storageFacts', await this.backend())();
    if (on.has('retainedUntil')) this.retainedUntil = async (h) => optional('retainedUntil', await this.backend())(h);
    if (on.has('probeImmutability'))
      this.probeImmutability = async () => optional('probeImmutability', await this.backend())();
  }

  /** The real backend, loaded on the first call (a failed load is tried again on the next). */
  private backend(): Promise<Backend> {
    if (this.loaded === undefined) {
      const loading = this.make();
      this.loaded = loading;
      loading.catch(() => {
        if (this.loaded === loading) this.loaded = undefined;
      });
    }
    return this.loaded;
  }

  async create(): Promise<void> {
    return (await this.backend()).create();
  }

  async isRepository(): Promise<boolean> {
    return (await this.backend()).isRepository();
  }

  async save(h: ObjectHandle, data: Bytes): Promise<void> {
    return (await this.backend()).save(h, data);
  }

  async saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    return (await this.backend()).saveNew(h, data);
  }

  async load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    return (await this.backend()).load(h, range);
  }

  async stat(h: ObjectHandle): Promise<ObjectInfo> {
    return (await this.backend()).stat(h);
  }

  async *list(type: ObjectType): AsyncIterable<ObjectInfo> {
    yield* (await this.backend()).list(type);
  }

  async remove(h: ObjectHandle): Promise<void> {
    return (await this.backend()).remove(h);
  }

  /** Closes the backend if it was ever loaded; one never used has nothing open. */
  async close(): Promise<void> {
    const loaded = this.loaded;
    if (loaded === undefined) return;
    await (await loaded).close();
  }
}
