import { describe, expect, it } from 'vitest';
import { describeBackendConformance, expectCode } from '../../test/backend-conformance.js';
import { FoleBackupError } from '../errors.js';
import type { ByteRange, Bytes, ObjectHandle, ObjectReader } from './backend.js';
import { FaultInjectingBackend } from './fault.js';
import { MemoryBackend } from './memory.js';
import { isTransient, RetryBackend } from './retry.js';
import { s3Error } from './s3.js';

/** An S3 answer as the SDK throws it, wrapped the way the S3 backend wraps it. */
function http(status: number, code: string): FoleBackupError {
  const sdk = Object.assign(new Error(code), { name: code, Code: code, $metadata: { httpStatusCode: status } });
  return s3Error('write', 's3:https://h/b/data/x', sdk);
}

function reset(): FoleBackupError {
  return s3Error('read', 's3:https://h/b/index/x', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
}

/** A retrying backend over faults over memory that never waits; `retries` lists what was retried. */
function stack(attempts = 4) {
  const memory = new MemoryBackend();
  const faults = new FaultInjectingBackend(memory);
  const retries: string[] = [];
  const delays: number[] = [];
  const backend = new RetryBackend(faults, {
    attempts,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    random: () => 0.999,
    sleep: async (ms) => {
      delays.push(ms);
    },
    onRetry: (what) => retries.push(what),
  });
  return { memory, faults, backend, retries, delays };
}

const h: ObjectHandle = { type: 'index', name: 'a'.repeat(64) };

describeBackendConformance('retry over memory', async () => ({
  backend: new RetryBackend(new MemoryBackend()),
  cleanup: async () => {},
}));

describe('RetryBackend', () => {
  it('retries 5xx answers, throttling and dropped connections until the call succeeds', async () => {
    const { memory, faults, backend, retries } = stack();
    faults.failNth('save', 1, http(503, 'SlowDown')).failNth('save', 2, http(500, 'InternalError'));
    faults.failNth('save', 3, http(429, 'TooManyRequests'));
    await backend.save(h, Buffer.from('index'));
    expect(retries).toEqual([`save index/${h.name}`, `save index/${h.name}`, `save index/${h.name}`]);
    expect((await memory.load(h)).toString()).toBe('index');
    faults.failNth('load', 1, reset());
    expect((await backend.load(h)).toString()).toBe('index');
    expect(retries).toHaveLength(4);
  });

  it('never retries a 4xx other than throttling, nor not-found, a full disk or damage', async () => {
    const { faults, backend, retries } = stack();
    await backend.save(h, Buffer.from('x'));
    for (const err of [
      http(403, 'AccessDenied'),
      http(400, 'InvalidArgument'),
      http(404, 'NoSuchKey'),
      http(507, 'InsufficientStorage'),
      new FoleBackupError('REPO_CORRUPT', 'damaged'),
    ]) {
      faults.failNth('load', 1, err);
      await expect(backend.load(h)).rejects.toBe(err);
    }
    await expectCode(backend.load({ type: 'index', name: 'b'.repeat(64) }), 'NOT_FOUND');
    expect(retries).toEqual([]);
  });

  it('gives up after the last attempt with the last error, pausing with growing, capped, jittered delays', async () => {
    const { faults, backend, retries, delays } = stack(5);
    const errors = Array.from({ length: 5 }, (_, i) => http(502, `BadGateway${i}`));
    for (const [i, e] of errors.entries()) faults.failNth('stat', i + 1, e);
    await backend.save(h, Buffer.from('x'));
    await expect(backend.stat(h)).rejects.toBe(errors[4]);
    expect(retries).toHaveLength(4);
    // full jitter: random·min(cap, base·2^n), here random is just under 1
    expect(delays).toEqual([99, 199, 399, 799]);
    const capped = stack(8);
    for (let i = 1; i <= 7; i++) capped.faults.failNth('remove', i, reset());
    await capped.backend.remove(h);
    expect(Math.max(...capped.delays)).toBe(999);
  });

  it('classifies errors by their cause chain', () => {
    expect(isTransient(http(503, 'ServiceUnavailable'))).toBe(true);
    expect(isTransient(Object.assign(new Error('t'), { name: 'TimeoutError' }))).toBe(true);
    expect(isTransient(http(400, 'RequestTimeout'))).toBe(true);
    expect(isTransient(http(409, 'OperationAborted'))).toBe(false);
    expect(isTransient(new Error('plain'))).toBe(false);
    expect(isTransient(new FoleBackupError('ALREADY_EXISTS', 'taken', { cause: http(503, 'x') }))).toBe(false);
  });

  it('settles a create-only save whose answer was lost by reading the object back', async () => {
    class LosesAnswer extends MemoryBackend {
      lost = 0;
      override async saveNew(handle: ObjectHandle, data: Bytes): Promise<void> {
        await super.saveNew(handle, data);
        if (this.lost++ === 0) throw reset();
      }
    }
    const inner = new LosesAnswer();
    const backend = new RetryBackend(inner, { sleep: async () => {} });
    const a = { type: 'audit' as const, name: '0000000001' };
    await backend.saveNew(a, Buffer.from('entry'));
    expect((await backend.load(a)).toString()).toBe('entry');
    // another writer's entry under the name is still a conflict
    const b = { type: 'audit' as const, name: '0000000002' };
    await inner.save(b, Buffer.from('theirs'));
    inner.lost = 0;
    await expectCode(backend.saveNew(b, Buffer.from('ours')), 'ALREADY_EXISTS');
  });

  it('starts a listing again when it fails before its first object', async () => {
    const { faults, backend, retries } = stack();
    await backend.save(h, Buffer.from('x'));
    faults.failNth('list', 1, reset());
    const names: string[] = [];
    for await (const o of backend.list('index')) names.push(o.name);
    expect(names).toEqual([h.name]);
    expect(retries).toEqual(['list index']);
  });

  it('retries a reader whose connection was lost on a reader opened again, shared by the reads under way', async () => {
    /** Readers live on a connection, as SFTP file handles do: once it drops, every read of theirs fails. */
    class ConnectedReaders extends MemoryBackend {
      connection = 0;
      opened = 0;
      closed = 0;
      async openReader(handle: ObjectHandle): Promise<ObjectReader> {
        const on = this.connection;
        const data = await this.load(handle);
        this.opened++;
        return {
          size: data.length,
          read: async (r: ByteRange) => {
            if (this.connection !== on) throw reset();
            return Buffer.from(data.subarray(r.offset, r.offset + r.length));
          },
          close: async () => {
            this.closed++;
          },
        };
      }
    }
    const inner = new ConnectedReaders();
    const retries: string[] = [];
    const backend = new RetryBackend(inner, { sleep: async () => {}, onRetry: (what) => retries.push(what) });
    await backend.save(h, Buffer.from('0123456789'));
    const reader = await (backend.openReader as (x: ObjectHandle) => Promise<ObjectReader>)(h);
    expect((await reader.read({ offset: 0, length: 4 })).toString()).toBe('0123');
    inner.connection++;
    const [a, b] = await Promise.all([reader.read({ offset: 2, length: 3 }), reader.read({ offset: 5, length: 5 })]);
    expect([a.toString(), b.toString()]).toEqual(['234', '56789']);
    expect(retries).toEqual([`load index/${h.name}`, `load index/${h.name}`]);
    // one reader opened again for both reads, the lost one closed
    expect([inner.opened, inner.closed]).toEqual([2, 1]);
    await reader.close();
    expect(inner.closed).toBe(2);
  });

  it('asks a streamed read that broke off again for the bytes not yet given: the caller sees one stream', async () => {
    /** Streams in pieces of 3 bytes; the first `breaks` streams fail after their second piece. */
    class BreakingStreams extends MemoryBackend {
      breaks = 2;
      asked: ByteRange[] = [];
      override async *loadStream(handle: ObjectHandle, range: ByteRange): AsyncIterable<Uint8Array> {
        this.asked.push(range);
        const data = await this.load(handle, range);
        for (let at = 0; at < data.length; at += 3) {
          if (at === 6 && this.breaks-- > 0) throw reset();
          yield data.subarray(at, at + 3);
        }
      }
    }
    const inner = new BreakingStreams();
    const retries: string[] = [];
    const backend = new RetryBackend(inner, { sleep: async () => {}, onRetry: (what) => retries.push(what) });
    await backend.save(h, Buffer.from('0123456789abcdefghij'));
    const stream = backend.loadStream as (x: ObjectHandle, r: ByteRange) => AsyncIterable<Uint8Array>;
    const got: string[] = [];
    for await (const piece of stream(h, { offset: 1, length: 18 })) got.push(Buffer.from(piece).toString());
    expect(got.join('')).toBe('123456789abcdefghi');
    expect(inner.asked).toEqual([
      { offset: 1, length: 18 },
      { offset: 7, length: 12 },
      { offset: 13, length: 6 },
    ]);
    expect(retries).toEqual([`load index/${h.name}`, `load index/${h.name}`]);
    // damage is never asked again
    const damaged = new (class extends MemoryBackend {
      calls = 0;
      override async *loadStream(): AsyncIterable<Uint8Array> {
        this.calls++;
        yield Buffer.from('x');
        throw new FoleBackupError('REPO_CORRUPT', 'short');
      }
    })();
    const once = new RetryBackend(damaged, { sleep: async () => {} });
    const read = async (): Promise<void> => {
      for await (const _ of (once.loadStream as typeof stream)(h, { offset: 0, length: 2 }));
    };
    await expectCode(read(), 'REPO_CORRUPT');
    expect(damaged.calls).toBe(1);
  });
});
