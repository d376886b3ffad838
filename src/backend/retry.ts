/**
 * A Backend wrapper that retries what a network storage service fails transiently: 5xx answers, throttling
 * (429, SlowDown), timeouts and dropped connections. Exponential backoff with full jitter (a random pause between
 * zero and base·2^attempt, capped), a bounded number of attempts; any other error (a 4xx such as not-found or
 * access denied, a full disk, a damaged object) is final at once. Stacked by openBackend only.
 *
 * Every Backend method is idempotent except saveNew: a create-only PUT that reached the server but whose answer was
 * lost makes the next attempt find the name taken. Such an ALREADY_EXISTS after a transient failure is settled by
 * reading the object back: the same bytes mean the lost attempt stored them.
 */
import { FoleBackupError, errnoCode } from '../errors.js';
import type { Backend, ByteRange, Bytes, ObjectHandle, ObjectInfo, ObjectReader, ObjectType } from './backend.js';
import { joinBytes } from './backend.js';
import { describeHandle, WrappedBackend } from './wrapped.js';

export interface RetryOptions {
  /** Attempts in all, the first included (default 6). */
  attempts?: number;
  /** The first pause's upper bound in ms (default 200). */
  baseDelayMs?: number;
  /** No pause is longer than this (default 10 s). */
  maxDelayMs?: number;
  /** Told before each retry (the CLI shows it as a warning). */
  onRetry?: (what: string, attempt: number, err: unknown) => void;
  /** Waits `ms` (tests pass one that does not wait). */
  sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1) (tests pass a fixed one). */
  random?: () => number;
}

const TRANSIENT_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENOTCONN',
  'UND_ERR_SOCKET',
]);
const THROTTLING = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
]);
/** The SDK's socket timeouts, and S3's 400 RequestTimeout (the upload stalled): both mean "try again". */
const TIMEOUTS = new Set(['TimeoutError', 'RequestTimeout']);

/**
 * Whether `err` (or an error in its cause chain) is worth another attempt. A FoleBackupError that is not a
 * read or write failure (NOT_FOUND, ACCESS_DENIED, NO_SPACE, REPO_CORRUPT, …) never is, whatever its cause.
 */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof FoleBackupError && e.code !== 'READ_ERROR' && e.code !== 'WRITE_ERROR') return false;
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const name = (e as { name?: unknown }).name;
    const code = (e as { Code?: unknown }).Code;
    if (status !== undefined && status >= 500) return true;
    if (status === 429) return true;
    if (typeof code === 'string' && (THROTTLING.has(code) || TIMEOUTS.has(code))) return true;
    if (typeof name === 'string' && (THROTTLING.has(name) || TIMEOUTS.has(name))) return true;
    if (status !== undefined) return false;
    const errno = errnoCode(e);
    if (errno !== undefined && TRANSIENT_ERRNO.has(errno)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export class RetryBackend extends WrappedBackend {
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    inner: Backend,
    private readonly opts: RetryOptions = {},
  ) {
    super(inner);
    this.attempts = Math.max(1, opts.attempts ?? 6);
    this.baseDelayMs = opts.baseDelayMs ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 10_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = opts.random ?? Math.random;
  }

  protected override call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.retry(what, fn);
  }

  /** Run `fn` until it succeeds, fails for good, or the attempts are spent (the last error is thrown). */
  private async retry<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (attempt >= this.attempts || !isTransient(err)) throw err;
        this.opts.onRetry?.(what, attempt, err);
        await this.sleep(this.delay(attempt));
      }
    }
  }

  /** The pause after failed attempt `attempt`: full jitter under an exponential cap. */
  private delay(attempt: number): number {
    return Math.floor(this.random() * Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1)));
  }

  /**
   * A reader whose reads are retried as load is. A read that failed transiently may have lost the reader with its
   * connection (an SFTP file handle lives in its session), so the object is opened again before the next attempt;
   * reads under way at the same time share the new reader, and the old one is closed.
   */
  protected override async openReaderOf(h: ObjectHandle, open: () => Promise<ObjectReader>): Promise<ObjectReader> {
    const what = describeHandle(h);
    const first = await this.retry(`open ${what}`, open);
    let current = Promise.resolve(first);
    let closing: Promise<void> | undefined;
    return {
      size: first.size,
      // `into` is not passed on: an attempt given up on may still be writing into its buffer when the next runs
      read: (range) => {
        let used: Promise<ObjectReader> | undefined;
        return this.retry(`load ${what}`, async () => {
          if (used !== undefined && used === current && closing === undefined) {
            current = open();
            void used.then((r) => r.close()).catch(() => undefined);
          }
          used = current;
          return (await used).read(range);
        });
      },
      close: () =>
        (closing ??= current.then(
          (r) => r.close(),
          () => undefined,
        )),
    };
  }

  /**
   * A streamed read that fails transiently is asked again for the bytes not yet given, so the caller sees one
   * unbroken stream; the attempts are counted over the whole read.
   */
  protected override loadStreamOf(
    h: ObjectHandle,
    range: ByteRange,
    load: (range: ByteRange) => AsyncIterable<Uint8Array>,
  ): AsyncIterable<Uint8Array> {
    const self = this;
    const what = `load ${describeHandle(h)}`;
    return (async function* () {
      let given = 0;
      for (let attempt = 1; ; attempt++) {
        // every byte arrived before the failure (the end of the response was lost): nothing to ask again
        if (attempt > 1 && given === range.length) return;
        try {
          for await (const piece of load({ offset: range.offset + given, length: range.length - given })) {
            given += piece.length;
            yield piece;
          }
          return;
        } catch (err) {
          if (attempt >= self.attempts || !isTransient(err)) throw err;
          self.opts.onRetry?.(what, attempt, err);
          await self.sleep(self.delay(attempt));
        }
      }
    })();
  }

  override async saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    let failedTransiently = false;
    try {
      await this.retry(`save ${describeHandle(h)}`, async (attempt) => {
        failedTransiently ||= attempt > 1;
        return this.inner.saveNew(h, data);
      });
    } catch (err) {
      if (!(failedTransiently && err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS')) throw err;
      const stored = await this.load(h);
      if (!stored.equals(joinBytes(data))) throw err;
    }
  }

  /**
   * A listing that fails before its first object is started again; one that fails later is not (the caller has
   * seen part of it already), and fails as the wrapped backend's did.
   */
  override list(type: ObjectType): AsyncIterable<ObjectInfo> {
    const self = this;
    return (async function* () {
      let first: IteratorResult<ObjectInfo> | undefined;
      const it = await self.retry(`list ${type}`, async () => {
        const iter = self.inner.list(type)[Symbol.asyncIterator]();
        first = await iter.next();
        return iter;
      });
      for (let r = first as IteratorResult<ObjectInfo>; !r.done; r = await it.next()) {
        yield r.value;
      }
    })();
  }
}
