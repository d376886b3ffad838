import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateMultipartUploadCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { describeBackendConformance, expectCode } from '../../test/backend-conformance.js';
import { startSwiftInEnv, swiftMissing, type SwiftServer } from '../../test/servers/swift.js';
import { skipWithout } from '../../test/servers/shared.js';
import { FoleBackupError } from '../errors.js';
import { openBackend } from './open.js';
import { PART_SIZE, S3Backend, SINGLE_PUT_MAX, s3Error } from './s3.js';
import { parseS3Location, type S3Options } from './s3-location.js';
import { FaultInjectingBackend } from './fault.js';
import { RetryBackend } from './retry.js';
import { backup } from '../backup/backup.js';
import { Repository } from '../repository/repository.js';
import { listSnapshots } from '../snapshot/store.js';
import { checkRepository } from '../verify/check-repository.js';
import { makeFoleTree } from '../../test/restore-helpers.js';
import { FAST_KDF, TEST_PASSWORD } from '../../test/repo-helpers.js';

/** The SDK client inside a backend (tests send their own requests and watch the backend's). */
function clientOf(backend: S3Backend): S3Client {
  return (backend as unknown as { client: S3Client }).client;
}

/** An S3 answer as the SDK throws it. */
function sdkError(status: number, code: string): Error {
  return Object.assign(new Error(code), { name: code, Code: code, $metadata: { httpStatusCode: status } });
}

const missing = swiftMissing();
const skip = skipWithout(missing, 'the S3 backend tests');

describe('parseS3Location', () => {
  it('splits the endpoint, the bucket and the prefix', () => {
    expect(parseS3Location('s3:https://s3.example.com/bucket')).toMatchObject({
      endpoint: 'https://s3.example.com',
      bucket: 'bucket',
      prefix: '',
    });
    expect(parseS3Location('s3:https://h:9000/my-bucket/a/b/')).toMatchObject({
      endpoint: 'https://h:9000',
      bucket: 'my-bucket',
      prefix: 'a/b/',
      location: 's3:https://h:9000/my-bucket/a/b/',
    });
  });

  it('refuses plain http to another host unless allowed, and warns when it is', () => {
    const err = (() => {
      try {
        parseS3Location('s3:http://backup.example.com/bucket');
      } catch (e) {
        return e as FoleBackupError;
      }
    })();
    expect(err?.code).toBe('USAGE');
    expect(err?.hint).toMatch(/--insecure-http/);
    const warnings: string[] = [];
    parseS3Location('s3:http://backup.example.com/bucket', { insecureHttp: true, warn: (m) => warnings.push(m) });
    expect(warnings.join()).toMatch(/not encrypted/);
    expect(parseS3Location('s3:http://127.0.0.1:9000/bucket').endpoint).toBe('http://127.0.0.1:9000');
  });

  it('refuses credentials in the URL without repeating them', () => {
    let err: FoleBackupError | undefined;
    try {
      parseS3Location('s3:https://AKIDEXAMPLE:topsecret@h/bucket');
    } catch (e) {
      err = e as FoleBackupError;
    }
    expect(err?.code).toBe('USAGE');
    expect(JSON.stringify(err?.toJSON())).not.toMatch(/topsecret|AKIDEXAMPLE/);
  });

  it('refuses a missing or invalid bucket and dot segments', () => {
    for (const loc of [
      's3:https://h',
      's3:https://h/',
      's3:https://h/B_ad',
      's3:https://h/bucket/../x',
      's3:ftp://h/b',
    ]) {
      expect(() => parseS3Location(loc), loc).toThrow(FoleBackupError);
    }
  });
});

describe.skipIf(skip)('S3 backend on a real server (OpenStack Swift s3api over TLS)', () => {
  let swift: SwiftServer;

  beforeAll(async () => {
    swift = await startSwiftInEnv();
  }, 120_000);

  afterAll(() => swift?.stop());

  /** A fresh S3Backend at `loc` for `fn`, closed afterwards. */
  async function withBackend(
    loc: string,
    opts: S3Options | ((b: S3Backend) => Promise<void>),
    fn?: (b: S3Backend) => Promise<void>,
  ) {
    const [options, body] = typeof opts === 'function' ? [{}, opts] : [opts, fn as (b: S3Backend) => Promise<void>];
    const backend = new S3Backend(parseS3Location(loc), options);
    try {
      await body(backend);
    } finally {
      await backend.close();
    }
  }

  const location = (bucket = 'conformance'): string =>
    `s3:${swift.endpoint}/${bucket}/${randomBytes(6).toString('hex')}`;

  describeBackendConformance('s3 (Swift)', async () => ({
    backend: openBackend(location()),
    cleanup: async () => {},
  }));

  it('reports that Swift does not honour conditional PUTs and still lets exactly one of two racers win', async () => {
    await withBackend(location(), async (backend) => {
      await backend.create();
      // the server's own answer, not a guess: Swift's s3api refuses If-None-Match with 501
      expect(await (backend as unknown as { probeConditionalPut(): Promise<boolean> }).probeConditionalPut()).toBe(
        false,
      );
      const h = { type: 'audit' as const, name: '0000000001' };
      const [a, b] = await Promise.allSettled([
        backend.saveNew(h, Buffer.from('a')),
        backend.saveNew(h, Buffer.from('b')),
      ]);
      const won = [a, b].filter((r) => r?.status === 'fulfilled');
      expect(won).toHaveLength(1);
    });
  });

  it('a create-only write whose PUT fails transiently is retried without its own claim blocking it', async () => {
    await withBackend(location(), async (s3) => {
      await s3.create();
      const client = clientOf(s3);
      let failures = 0;
      client.middlewareStack.add(
        (next) => async (args) => {
          const req = args.request as { method: string; path: string };
          // the object's own PUT (not a claim's), the first two times: the server answers 503
          if (req.method === 'PUT' && req.path.endsWith('/audit/0000000009') && failures++ < 2) {
            throw sdkError(503, 'ServiceUnavailable');
          }
          return next(args);
        },
        { step: 'finalizeRequest' },
      );
      const backend = new RetryBackend(s3, { baseDelayMs: 10 });
      const h = { type: 'audit' as const, name: '0000000009' };
      await backend.saveNew(h, Buffer.from('entry'));
      expect(failures).toBe(3);
      expect((await backend.load(h)).toString()).toBe('entry');
      await expectCode(backend.saveNew(h, Buffer.from('other')), 'ALREADY_EXISTS');
    });
  });

  it('verifies the SHA-256 stored with an object on a whole load', async () => {
    await withBackend(location(), async (backend) => {
      await backend.create();
      const h = { type: 'snapshots' as const, name: 'snap' };
      await backend.save(h, Buffer.from('snapshot bytes'));
      // another writer replaces the bytes but keeps the old metadata: what a damaged object looks like
      const key = `${parseS3Location(backend.location).prefix}snapshots/snap`;
      const client = clientOf(backend);
      const head = await client.send(new HeadObjectCommand({ Bucket: 'conformance', Key: key }));
      await client.send(
        new PutObjectCommand({
          Bucket: 'conformance',
          Key: key,
          Body: Buffer.from('snapshot bytez'),
          Metadata: head.Metadata,
        }),
      );
      await expectCode(backend.load(h), 'REPO_CORRUPT');
      // a range cannot be checked against a whole-object hash; it is the caller's to check
      expect((await backend.load(h, { offset: 0, length: 8 })).toString()).toBe('snapshot');
    });
  });

  it('reports wrong credentials as ACCESS_DENIED without the secret', async () => {
    const env = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret-1234';
    const backend = openBackend(location());
    try {
      const err = await expectCode(backend.isRepository(), 'ACCESS_DENIED');
      expect(`${err.message} ${err.hint}`).not.toMatch(/not-the-secret-1234/);
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = env;
      await backend.close();
    }
  });

  /** Every request the backend's client sends: method, path, query and headers. */
  function recorded(backend: S3Backend): { method: string; path: string; query: string; headers: string }[] {
    const seen: { method: string; path: string; query: string; headers: string }[] = [];
    const client = clientOf(backend);
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { method: string; path: string; query?: object; headers: object };
        seen.push({
          method: req.method,
          path: req.path,
          query: JSON.stringify(req.query ?? {}),
          headers: JSON.stringify(req.headers).toLowerCase(),
        });
        return next(args);
      },
      { step: 'finalizeRequest' },
    );
    return seen;
  }

  it('refuses --object-lock-days on Swift, which answers 200 but enforces nothing; sends no retention', async () => {
    await withBackend(location('lock-refused'), { objectLockDays: 7 }, async (backend) => {
      const seen = recorded(backend);
      const err = await expectCode(backend.create(), 'USAGE');
      expect(err.message).toMatch(/Object Lock/);
      expect(err.hint).toMatch(/Swift does not/);
      expect(seen.some((r) => r.query.includes('object-lock'))).toBe(true);
      expect(seen.filter((r) => r.query.includes('retention') || r.headers.includes('x-amz-object-lock-mode'))).toEqual(
        [],
      );
      expect(await backend.isRepository()).toBe(false);
      // the bucket made only to ask for its lock configuration is gone again
      const status = await clientOf(backend)
        .send(new HeadBucketCommand({ Bucket: 'lock-refused' }))
        .then(
          () => 200,
          (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode,
        );
      expect(status).toBe(404);
      expect(seen.some((r) => r.method === 'DELETE' && r.path === '/lock-refused/')).toBe(true);
    });
  });

  it('finds Swift not immutable: no Object Lock, and the canary (put without retention) is deleted', async () => {
    await withBackend(location('probe'), async (backend) => {
      const seen = recorded(backend);
      await backend.create();
      const report = await backend.probeImmutability();
      expect(report).toMatchObject({
        immutable: false,
        objectLock: false,
        canary: { retention: false, deleted: true },
      });
      expect(report.findings.join('\n')).toMatch(/does not report Object Lock/);
      expect(seen.filter((r) => r.query.includes('retention') || r.headers.includes('x-amz-object-lock'))).toEqual([]);
    });
  });

  it('lists unfinished multipart uploads as temporary files and aborts them, and nothing else', async () => {
    await withBackend(location('uploads'), async (backend) => {
      await backend.create();
      const { prefix } = parseS3Location(backend.location);
      const client = clientOf(backend);
      const started: string[] = [];
      for (const key of [`data/ab/ab${'0'.repeat(62)}`, 'not-ours/x']) {
        const up = await client.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: `${prefix}${key}` }));
        await client.send(
          new UploadPartCommand({
            Bucket: 'uploads',
            Key: `${prefix}${key}`,
            UploadId: up.UploadId,
            PartNumber: 1,
            Body: randomBytes(1000),
          }),
        );
        started.push(`${key}#upload=${up.UploadId}`);
      }
      const temps = [];
      for await (const t of backend.listTemporary()) temps.push(t);
      expect(temps.map((t) => [t.path, t.size])).toEqual([[started[0], 1000]]);
      expect(Math.abs((temps[0]?.mtimeMs ?? 0) - Date.now())).toBeLessThan(60_000);
      await expectCode(backend.removeTemporary({ path: started[1] as string, size: 0, mtimeMs: 0 }), 'INTERNAL');
      await expectCode(backend.removeTemporary({ path: 'config/x#upload=1', size: 0, mtimeMs: 0 }), 'INTERNAL');
      await backend.removeTemporary(temps[0] as (typeof temps)[number]);
      const after = [];
      for await (const t of backend.listTemporary()) after.push(t);
      expect(after).toEqual([]);
    });
  });

  it('finishes a backup through 503s and dropped connections (retried), and the repository checks clean', async () => {
    const work = mkdtempSync(join(tmpdir(), 'fole-s3-faults-'));
    try {
      const root = join(work, 'storage');
      makeFoleTree(root, { bigBytes: 20 << 20 }).core.db.close();
      const faults = new FaultInjectingBackend(new S3Backend(parseS3Location(location('faults'))));
      const retries: string[] = [];
      const backend = new RetryBackend(faults, { baseDelayMs: 10, onRetry: (what) => retries.push(what) });
      const unavailable = () => s3Error('write', 'x', sdkError(503, 'ServiceUnavailable'));
      const dropped = () => s3Error('read', 'x', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
      // every third save and every fifth load fails once, across the whole backup
      for (let n = 3; n <= 300; n += 3) faults.failNth('save', n, unavailable());
      for (let n = 5; n <= 300; n += 5) faults.failNth('load', n, dropped());
      const repo = await Repository.init(backend, TEST_PASSWORD, { kdf: FAST_KDF, packSize: 4 << 20 });
      const { backupId } = await backup(repo, { storageRoot: root, foleVersion: '1.0.0' });
      expect(retries.filter((r) => r.startsWith('save')).length).toBeGreaterThan(3);
      await repo.close();
      faults.clearFaults();
      const again = await Repository.open(backend, TEST_PASSWORD);
      const report = await checkRepository(again, { readData: true });
      expect(report.problems).toEqual([]);
      expect((await listSnapshots(again)).map((x) => x.backupId)).toEqual([backupId]);
      await again.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('puts a pack given in parts as one PUT, and an object over SINGLE_PUT_MAX as a multipart upload', async () => {
    await withBackend(location('put-sizes'), async (backend) => {
      await backend.create();
      const seen = recorded(backend);
      // a default pack: 16 MiB and the overshoot of its last blob, in the parts a pack is made of
      const pack = [randomBytes(8 << 20), randomBytes(8 << 20), randomBytes(1234)];
      const small = { type: 'data' as const, name: randomBytes(32).toString('hex') };
      await backend.save(small, pack);
      expect(seen.map((r) => r.method)).toEqual(['PUT']);
      expect(seen[0]?.query).not.toContain('uploadId');
      expect((await backend.load(small)).equals(Buffer.concat(pack))).toBe(true);

      seen.length = 0;
      const big = { type: 'data' as const, name: randomBytes(32).toString('hex') };
      const over = [randomBytes(SINGLE_PUT_MAX), randomBytes(1)];
      await backend.save(big, over);
      expect(seen.filter((r) => r.method === 'POST' && r.query.includes('uploads')).length).toBe(1);
      expect(seen.filter((r) => r.method === 'PUT' && r.query.includes('partNumber')).length).toBe(
        Math.ceil((SINGLE_PUT_MAX + 1) / PART_SIZE),
      );
      expect((await backend.stat(big)).size).toBe(SINGLE_PUT_MAX + 1);
      const tail = await backend.load(big, { offset: SINGLE_PUT_MAX - 10, length: 11 });
      expect(tail.equals(Buffer.concat([over[0]?.subarray(-10) ?? Buffer.alloc(0), over[1] ?? Buffer.alloc(0)]))).toBe(
        true,
      );
    });
  }, 120_000);

  it('streams a 1 GiB object given in parts without holding it in memory, and reads ranges of it', async () => {
    const backend = openBackend(location());
    try {
      await backend.create();
      const part = randomBytes(16 << 20);
      const h = { type: 'data' as const, name: randomBytes(32).toString('hex') };
      const before = process.memoryUsage().rss;
      let peak = before;
      const sample = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 20);
      try {
        await backend.save(
          h,
          Array.from({ length: 64 }, () => part),
        );
      } finally {
        clearInterval(sample);
      }
      // joined into one buffer it would take 1 GiB more; measured: about 230 MiB for 1 GiB and for 2 GiB alike
      expect(peak - before).toBeLessThan(512 << 20);
      expect((await backend.stat(h)).size).toBe(1 << 30);
      const end = await backend.load(h, { offset: (1 << 30) - 100, length: 100 });
      expect(end.equals(part.subarray(part.length - 100))).toBe(true);
      await backend.remove(h);
    } finally {
      await backend.close();
    }
  }, 120_000);

  it('pages through listings', async () => {
    await withBackend(location(), { listPageSize: 3 }, async (backend) => {
      await backend.create();
      const names = Array.from({ length: 11 }, () => randomBytes(32).toString('hex')).sort();
      await Promise.all(names.map((name) => backend.save({ type: 'data', name }, Buffer.from(name))));
      const seen = recorded(backend);
      const listed: string[] = [];
      for await (const o of backend.list('data')) listed.push(o.name);
      expect(listed.sort()).toEqual(names);
      expect(seen.filter((r) => r.method === 'GET').length).toBe(4);
    });
  });

  it('reports bucket versioning once it is enabled', async () => {
    await withBackend(location('versioned'), async (backend) => {
      await backend.create();
      const client = clientOf(backend);
      await client.send(
        new PutBucketVersioningCommand({ Bucket: 'versioned', VersioningConfiguration: { Status: 'Enabled' } }),
      );
      expect(await backend.storageFacts()).toEqual({ versioning: 'enabled', objectLock: false });
    });
  });

  it('reports a bucket without Object Lock as such although Swift answers 200', async () => {
    await withBackend(location(), async (backend) => {
      await backend.create();
      expect(await backend.storageFacts()).toEqual({ versioning: 'disabled', objectLock: false });
    });
  });
});
