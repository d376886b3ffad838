/**
 * A repository in an S3 bucket (AWS S3 or any server that speaks its API, path-style):
 *
 *   s3:https://HOST[:PORT]/BUCKET[/PREFIX]
 *
 * Objects keep the local backend's layout under PREFIX (config, keys/<name>, data/<xx>/<name>, index/<name>, …),
 * so a local repository copied into a bucket key by key is a valid S3 repository and the other way round.
 *
 * Every object but a pack carries the SHA-256 of its bytes as metadata (x-amz-meta-sha256), checked on every
 * whole-object load. Packs are named by the SHA-256 of their bytes and their blobs are authenticated by the
 * repository layer (verify and check compare a pack's bytes with its name, src/verify/check-packs.ts), so they are
 * not hashed twice here.
 *
 * saveNew (create-only) is a conditional PUT (If-None-Match: *) where the server proves it honours one. Where it
 * does not (OpenStack Swift's s3api answers 501), a claim protocol on plain PUT and LIST gives the same guarantee
 * provided the server's listings are read-after-write consistent: see saveNewByClaim.
 *
 * The SDK retries nothing (maxAttempts 1): retries are a wrapper (src/backend/retry.ts) stacked by openBackend.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandOutput,
  type ListMultipartUploadsCommandOutput,
  type ListObjectsV2CommandOutput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { FoleBackupError } from '../errors.js';
import type { S3Location, S3Options } from './s3-location.js';
import type {
  Backend,
  ByteRange,
  Bytes,
  ImmutabilityReport,
  ObjectHandle,
  ObjectInfo,
  ObjectType,
  StorageFacts,
  TemporaryFile,
} from './backend.js';
import { beyondEnd, checkHandle, checkRange, isObjectName, OBJECT_TYPES } from './backend.js';

// The version range is pinned to releases that support Node 20; the warning is about later ones we never take.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * Objects up to this size are one PUT, held whole while it runs. A pack (16 MiB by default, a little more with its
 * last blob) must be one: as a multipart upload it costs three more requests, and to OpenStack Swift the same
 * packs went up 1.4–1.8× slower that way (measured, docs/BENCHMARKS.md "Offsite").
 */
export const SINGLE_PUT_MAX = 64 * 1024 * 1024;
/** Bytes per piece of a streamed read (loadStream): the response's records joined, one copy, far fewer promises. */
const STREAM_PIECE = 512 * 1024;
/** Larger objects are a multipart upload of parts this size. */
export const PART_SIZE = 8 * 1024 * 1024;
/** Parts of one multipart upload in flight at once (memory: PART_SIZE each). */
export const PART_QUEUE = 4;
/** How long saveNewByClaim keeps trying before it reports the name as held by another writer. */
const CLAIM_WAIT_MS = 60_000;
/** Marks a location create() made, so a second create() of an empty repository is refused like the local one. */
const MARKER = '.fole-backup-location';
/** Where saveNewByClaim's claims live (never listed: a name starting with '.' is no object name). */
const CLAIMS = '.claims';
const PROBES = '.probes';
/** Joins an object path and an upload id in the path of an unfinished upload (listTemporary). */
const UPLOAD_MARK = '#upload=';
const DAY_MS = 24 * 60 * 60 * 1000;

/** A repository's Object Lock rule, kept in its location marker (plaintext: the backend needs it to write). */
interface LockPolicy {
  days: number;
}

/** The SDK's error fields we look at. */
interface SdkError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

function statusOf(err: unknown): number | undefined {
  return (err as SdkError | undefined)?.$metadata?.httpStatusCode;
}

function sdkCode(err: unknown): string | undefined {
  const e = err as SdkError | undefined;
  return e?.Code ?? e?.name;
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket']);
const DENIED = new Set([
  'AccessDenied',
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'InvalidToken',
  'ExpiredToken',
  'AllAccessDisabled',
]);
const FULL = new Set(['QuotaExceeded', 'XMinioStorageFull', 'InsufficientStorage', 'ServiceQuotaExceeded']);

/**
 * An S3 client error as a FoleBackupError naming the object; the SDK error is its cause (the retry wrapper
 * reads its status). The message carries the server's code and status, never a credential.
 */
export function s3Error(what: 'read' | 'write' | 'list' | 'remove' | 'create', where: string, err: unknown) {
  if (err instanceof FoleBackupError) return err;
  const status = statusOf(err);
  const code = sdkCode(err);
  const detail = `${code ?? 'error'}${status === undefined ? '' : ` (HTTP ${status})`}`;
  if ((code !== undefined && NOT_FOUND.has(code)) || status === 404) {
    const noBucket = code === 'NoSuchBucket';
    return new FoleBackupError('NOT_FOUND', `${what} ${where}: ${noBucket ? 'no such bucket' : 'no such object'}`, {
      path: where,
      cause: err,
      ...(noBucket ? { hint: 'create the repository with `fole-backup init`, or check the bucket name' } : {}),
    });
  }
  if (
    (code !== undefined && DENIED.has(code)) ||
    status === 403 ||
    status === 401 ||
    code === 'CredentialsProviderError'
  ) {
    return new FoleBackupError('ACCESS_DENIED', `${what} ${where}: access denied: ${detail}`, {
      path: where,
      cause: err,
      hint:
        'check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the shared AWS config) ' +
        "and that they may use this bucket; the server's clock must be within 15 minutes of this one",
    });
  }
  if ((code !== undefined && FULL.has(code)) || status === 507) {
    return new FoleBackupError('NO_SPACE', `${what} ${where}: the storage is full or over quota: ${detail}`, {
      path: where,
      cause: err,
      hint: 'raise the quota or free space (prune the repository) and run again; nothing partial was kept',
    });
  }
  const message = err instanceof Error && status === undefined ? err.message : detail;
  const unreachable = status === undefined || status >= 500;
  return new FoleBackupError(
    what === 'read' || what === 'list' ? 'READ_ERROR' : 'WRITE_ERROR',
    `${what} ${where}: ${message}`,
    {
      path: where,
      cause: err,
      ...(unreachable
        ? {
            hint:
              'the storage service failed or could not be reached: check that it is up and reachable, then run ' +
              'again; what a stopped backup stored is kept, and the next run completes it',
          }
        : {}),
    },
  );
}

/** The total length of `data`. */
function lengthOf(data: Bytes): number {
  if (data instanceof Uint8Array) return data.length;
  let n = 0;
  for (const p of data) n += p.length;
  return n;
}

function partsOf(data: Bytes): readonly Uint8Array[] {
  return data instanceof Uint8Array ? [data] : data;
}

function sha256Of(data: Bytes): string {
  const h = createHash('sha256');
  for (const p of partsOf(data)) h.update(p);
  return h.digest('hex');
}

/** A response body that ended before its Content-Length: the connection dropped (retryable). */
class TruncatedResponse extends Error {
  readonly code = 'ECONNRESET';
}

export class S3Backend implements Backend {
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  /** Whether the server proved it refuses a PUT with If-None-Match: * over an existing object; probed once. */
  private conditional: Promise<boolean> | undefined;
  /** The repository's Object Lock rule, read from the marker once (undefined: none). */
  private lock: Promise<LockPolicy | undefined> | undefined;
  private readonly lockDays: number | undefined;
  private readonly listPageSize: number | undefined;

  constructor(where: S3Location, opts: S3Options = {}) {
    this.location = where.location;
    this.bucket = where.bucket;
    this.prefix = where.prefix;
    this.lockDays = opts.objectLockDays;
    this.listPageSize = opts.listPageSize;
    const caFile = opts.caCert ?? (process.env.AWS_CA_BUNDLE || undefined);
    let ca: Buffer | undefined;
    if (caFile !== undefined) {
      try {
        ca = readFileSync(caFile);
      } catch (err) {
        throw new FoleBackupError('USAGE', `CA certificate file ${caFile}: cannot be read`, {
          path: caFile,
          cause: err,
          hint: 'give a readable PEM file with --ca-cert FILE (or AWS_CA_BUNDLE)',
        });
      }
    }
    const agentOptions = { keepAlive: true, maxSockets: 16 };
    this.client = new S3Client({
      endpoint: where.endpoint,
      forcePathStyle: true,
      region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1',
      // the SDK's default aws-chunked checksum bodies are refused (Swift: 501) or stored verbatim by some servers
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: 10_000,
        requestTimeout: 120_000,
        httpAgent: new HttpAgent(agentOptions),
        httpsAgent: new HttpsAgent(ca === undefined ? agentOptions : { ...agentOptions, ca }),
      }),
    });
  }

  /** The key of an object (or of a path relative to the prefix). */
  private keyOf(h: ObjectHandle): string {
    checkHandle(h);
    switch (h.type) {
      case 'config':
        return `${this.prefix}config`;
      case 'data':
        return `${this.prefix}data/${h.name.slice(0, 2)}/${h.name}`;
      default:
        return `${this.prefix}${h.type}/${h.name}`;
    }
  }

  private where(key: string): string {
    return `${this.location.replace(/\/$/, '')}/${key.slice(this.prefix.length)}`;
  }

  async create(): Promise<void> {
    const made = await this.ensureBucket(this.lockDays !== undefined);
    if (this.lockDays !== undefined && !(await this.objectLockEnabled())) {
      // a bucket only made to be asked (its lock configuration needs one) is not left behind
      if (made) await this.client.send(new DeleteBucketCommand({ Bucket: this.bucket })).catch(() => undefined);
      throw new FoleBackupError(
        'USAGE',
        `create repository ${this.location}: --object-lock-days refused: the server does not enforce S3 Object Lock ` +
          'on this bucket (its GetObjectLockConfiguration answer holds no ObjectLockEnabled=Enabled)',
        {
          hint:
            'use a bucket created with Object Lock enabled on a server that supports it (AWS S3 and others; ' +
            'OpenStack Swift does not, and accepts lock headers without enforcing them), or init without ' +
            '--object-lock-days; `fole-backup immutability-probe` tests a target',
        },
      );
    }
    const held = await this.client
      .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix, MaxKeys: 1 }))
      .catch((err: unknown) => {
        throw s3Error('list', this.location, err);
      });
    if ((held.KeyCount ?? held.Contents?.length ?? 0) > 0) {
      throw new FoleBackupError('REPO_NOT_EMPTY', `create repository ${this.location}: the location is not empty`, {
        hint: 'choose an empty bucket or a new prefix (s3:https://HOST/BUCKET/PREFIX)',
      });
    }
    const policy = this.lockDays === undefined ? undefined : { days: this.lockDays };
    this.lock = Promise.resolve(policy);
    const marker = policy === undefined ? new Uint8Array(0) : Buffer.from(JSON.stringify({ objectLock: policy }));
    await this.putObject(`${this.prefix}${MARKER}`, marker, undefined, {}, policy);
  }

  /**
   * The Object Lock rule the marker records. Before any object is put with retention the server must prove,
   * again, that Object Lock is enabled: lock headers are never sent to a server that has not.
   */
  private lockPolicy(): Promise<LockPolicy | undefined> {
    this.lock ??= (async () => {
      let text: string;
      try {
        const res = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: `${this.prefix}${MARKER}` }),
        );
        text = (await res.Body?.transformToString()) ?? '';
      } catch (err) {
        const e = s3Error('read', this.where(`${this.prefix}${MARKER}`), err);
        if (e.code === 'NOT_FOUND') return undefined;
        throw e;
      }
      if (text === '') return undefined;
      const days = (JSON.parse(text) as { objectLock?: { days?: unknown } }).objectLock?.days;
      if (typeof days !== 'number' || !Number.isSafeInteger(days) || days < 1) return undefined;
      if (!(await this.objectLockEnabled())) {
        throw new FoleBackupError(
          'REPO_CORRUPT',
          `open ${this.location}: the repository was made with Object Lock (${days} days) but the bucket no longer ` +
            'reports Object Lock enabled',
          { hint: 'check the bucket (or the endpoint: is it the server the repository was made on?)' },
        );
      }
      return { days };
    })().catch((err: unknown) => {
      this.lock = undefined;
      throw err;
    });
    return this.lock;
  }

  /** Create the bucket if it does not exist; whether this call created it. */
  private async ensureBucket(objectLock: boolean): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return false;
    } catch (err) {
      if (statusOf(err) !== 404 && sdkCode(err) !== 'NotFound' && sdkCode(err) !== 'NoSuchBucket') {
        throw s3Error('create', this.location, err);
      }
    }
    try {
      await this.client.send(
        new CreateBucketCommand({ Bucket: this.bucket, ...(objectLock ? { ObjectLockEnabledForBucket: true } : {}) }),
      );
    } catch (err) {
      // made meanwhile by someone else, or ours already: the emptiness check decides
      const code = sdkCode(err);
      if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') {
        throw s3Error('create', this.location, err);
      }
      return false;
    }
    return true;
  }

  async isRepository(): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: `${this.prefix}config` }));
      return true;
    } catch (err) {
      const e = s3Error('read', this.where(`${this.prefix}config`), err);
      if (e.code === 'NOT_FOUND') return false;
      throw e;
    }
  }

  async save(h: ObjectHandle, data: Bytes): Promise<void> {
    const key = this.keyOf(h);
    await this.putObject(key, data, h.type === 'data' ? undefined : sha256Of(data), {}, await this.retentionOf(h));
  }

  /** The retention an object gets: none for a lock (it must go when its command ends), else the repository's. */
  private async retentionOf(h: ObjectHandle): Promise<LockPolicy | undefined> {
    return h.type === 'locks' ? undefined : this.lockPolicy();
  }

  /**
   * One PUT for a small object, a multipart upload of streamed parts for a large one (aborted on failure); with a
   * lock policy, COMPLIANCE retention until `days` from now.
   */
  private async putObject(
    key: string,
    data: Bytes,
    sha256: string | undefined,
    extra: Partial<PutObjectCommandInput> = {},
    lock?: LockPolicy,
  ) {
    const size = lengthOf(data);
    const params: PutObjectCommandInput = {
      Bucket: this.bucket,
      Key: key,
      ContentType: 'application/octet-stream',
      ...(sha256 === undefined ? {} : { Metadata: { sha256 } }),
      ...(lock === undefined ? {} : retention(lock.days * DAY_MS)),
      ...extra,
    };
    try {
      if (size <= SINGLE_PUT_MAX) {
        // the parts as a stream, not joined into one buffer: no copy of a pack, and the SDK signs a stream as
        // UNSIGNED-PAYLOAD instead of hashing every byte again (TLS carries the bytes intact; a pack is checked
        // against its name when read, every other object against its x-amz-meta-sha256)
        const body = Readable.from(partsOf(data), { objectMode: false });
        await this.client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: size }));
        return;
      }
      const upload = new Upload({
        client: this.client,
        params: { ...params, Body: Readable.from(partsOf(data), { objectMode: false }) },
        partSize: PART_SIZE,
        queueSize: PART_QUEUE,
        leavePartsOnError: false,
      });
      await upload.done();
    } catch (err) {
      throw s3Error('write', this.where(key), err);
    }
  }

  async saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    const key = this.keyOf(h);
    const sha256 = h.type === 'data' ? undefined : sha256Of(data);
    this.conditional ??= this.probeConditionalPut().catch((err: unknown) => {
      this.conditional = undefined;
      throw err;
    });
    const lock = await this.retentionOf(h);
    // a multipart upload's condition would rest on CompleteMultipartUpload, which the probe did not test
    if (!(await this.conditional) || lengthOf(data) > SINGLE_PUT_MAX) {
      return this.saveNewByClaim(h, key, data, sha256, lock);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.putObject(key, data, sha256, { IfNoneMatch: '*' }, lock);
        return;
      } catch (err) {
        const status = statusOf(err instanceof FoleBackupError ? err.cause : err);
        if (status === 412) throw this.taken(h);
        // 409: another conditional write of this key is under way (AWS); it may yet fail, so ask again
        if (status !== 409 || attempt >= 8) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 100 * 2 ** attempt));
      }
    }
  }

  private taken(h: ObjectHandle): FoleBackupError {
    const key = this.keyOf(h);
    return new FoleBackupError('ALREADY_EXISTS', `write ${this.where(key)}: it already exists`, {
      path: this.where(key),
    });
  }

  /**
   * Whether the server refuses a second `If-None-Match: *` PUT of one key (412). A server that answers 501
   * (OpenStack Swift's s3api: "Conditional object PUTs are not supported") or that lets the second PUT through is
   * not trusted with create-only writes.
   */
  private async probeConditionalPut(): Promise<boolean> {
    const key = `${this.prefix}${PROBES}/conditional-${randomBytes(8).toString('hex')}`;
    const put = () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: new Uint8Array(0), IfNoneMatch: '*' }),
      );
    try {
      await put();
    } catch (err) {
      const status = statusOf(err);
      if (status === 501 || status === 400) return false;
      throw s3Error('write', this.where(key), err);
    }
    try {
      await put();
      return false;
    } catch (err) {
      if (statusOf(err) === 412) return true;
      if (statusOf(err) === 501 || statusOf(err) === 400) return false;
      throw s3Error('write', this.where(key), err);
    } finally {
      await this.deleteKey(key).catch(() => undefined);
    }
  }

  /**
   * Create-only without conditional PUTs. Each writer PUTs a claim of its own under `.claims/<object path>/`,
   * then lists the claims: it wins only if its claim is the only one it sees, and a winner's claim is never removed
   * (remove() clears the claims of the object it removes). Two winners are impossible when a LIST shows every PUT
   * that completed before it: the later of the two claims completed after the earlier writer's LIST (which did not
   * show it), so the later writer's LIST came after the earlier claim and showed it. Writers that see each other
   * withdraw and try again after a random pause; whoever finds the object stored reports ALREADY_EXISTS.
   *
   * Limits: it rests on read-after-write consistent listings (AWS S3 has them; OpenStack Swift's container
   * listings lag when an update is deferred to its async-pending queue: overload or a failing container server).
   * A writer that dies between its claim and its PUT leaves the name blocked: after CLAIM_WAIT_MS the error names
   * the claims to remove once no other writer runs.
   */
  private async saveNewByClaim(
    h: ObjectHandle,
    key: string,
    data: Bytes,
    sha256: string | undefined,
    lock: LockPolicy | undefined,
  ) {
    const rel = key.slice(this.prefix.length);
    const claimDir = `${this.prefix}${CLAIMS}/${rel}/`;
    const deadline = Date.now() + CLAIM_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      if (await this.exists(key)) throw this.taken(h);
      const mine = `${claimDir}${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
      let claims: string[];
      try {
        await this.putObject(mine, new Uint8Array(0), undefined);
        claims = await this.listKeys(claimDir);
        if (claims.length === 1 && claims[0] === mine) {
          if (await this.exists(key)) throw this.taken(h);
          await this.putObject(key, data, sha256, {}, lock);
          return;
        }
      } catch (err) {
        // a claim left by a failed attempt would block this writer's own retry: withdraw it (if the object's PUT
        // did land, the retry finds the object and the retry wrapper compares its bytes)
        await this.deleteKey(mine).catch(() => undefined);
        throw err;
      }
      await this.deleteKey(mine);
      if (await this.exists(key)) throw this.taken(h);
      if (Date.now() > deadline) {
        const others = claims.filter((k) => k !== mine).map((k) => k.slice(this.prefix.length));
        throw new FoleBackupError(
          'REPO_LOCKED',
          `write ${this.where(key)}: another writer claimed this name and has not stored it ` +
            `(claims: ${others.join(', ')})`,
          {
            path: this.where(key),
            hint:
              'wait for the other fole-backup process to finish; if none is running (one died), remove those ' +
              'claim objects from the bucket and run again',
          },
        );
      }
      // full jitter, growing to about a second
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(1000, 50 * 2 ** attempt)));
    }
  }

  private async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (err) {
      const e = s3Error('read', this.where(key), err);
      if (e.code === 'NOT_FOUND') return false;
      throw e;
    }
  }

  private async listKeys(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const o of this.listObjects(prefix)) keys.push(o.key);
    return keys;
  }

  private async *listObjects(prefix: string): AsyncIterable<{ key: string; size: number; mtimeMs?: number }> {
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(this.listPageSize === undefined ? {} : { MaxKeys: this.listPageSize }),
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
      } catch (err) {
        throw s3Error('list', this.where(prefix), err);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield {
          key: o.Key,
          size: o.Size ?? 0,
          ...(o.LastModified === undefined ? {} : { mtimeMs: o.LastModified.getTime() }),
        };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  private async deleteKey(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      const e = s3Error('remove', this.where(key), err);
      if (e.code !== 'NOT_FOUND') throw e;
    }
  }

  async load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    const key = this.keyOf(h);
    const where = this.where(key);
    if (range !== undefined) {
      checkRange(where, range);
      if (range.length === 0) {
        // no byte to ask for: the size alone says whether the range lies within the object
        const { size } = await this.stat(h);
        if (range.offset > size) throw beyondEnd(where, range, size);
        return Buffer.allocUnsafeSlow(0);
      }
    }
    const res = await this.get(h, key, where, range);
    const buf = await readBody(res.Body as AsyncIterable<Uint8Array> | undefined, res.ContentLength ?? 0, where);
    const want = res.Metadata?.sha256;
    if (range === undefined && want !== undefined && h.type !== 'data') {
      const got = createHash('sha256').update(buf).digest('hex');
      if (got !== want) {
        throw new FoleBackupError('REPO_CORRUPT', `read ${where}: its bytes do not match the SHA-256 stored with it`, {
          path: where,
          hint: 'the object was damaged in storage or in transit; run `fole-backup check`',
        });
      }
    }
    return buf;
  }

  /** A range of a pack in one GET, its body handed on as it arrives (see Backend.loadStream). */
  async *loadStream(h: ObjectHandle, range: ByteRange): AsyncIterable<Uint8Array> {
    const key = this.keyOf(h);
    const where = this.where(key);
    checkRange(where, range);
    if (range.length === 0) {
      await this.load(h, range);
      return;
    }
    const res = await this.get(h, key, where, range);
    const body = res.Body as (Readable & AsyncIterable<Uint8Array>) | undefined;
    let at = 0;
    // the body comes in TLS records (16 KiB): handed on one by one, each would cost every layer above (retry,
    // restore) its promises, ~75,000 of them for `default`; they go on joined, STREAM_PIECE bytes at a time
    let parts: Uint8Array[] = [];
    let held = 0;
    try {
      for await (const piece of body ?? []) {
        at += piece.length;
        if (at > range.length) throw new Error(`more than the ${range.length} bytes asked for`);
        parts.push(piece);
        held += piece.length;
        if (held >= STREAM_PIECE) {
          yield parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts, held);
          parts = [];
          held = 0;
        }
      }
      if (held > 0) yield Buffer.concat(parts, held);
    } catch (err) {
      throw s3Error('read', where, err);
    } finally {
      // the caller stopped early: the rest of the response is not read
      body?.destroy();
    }
    if (at !== range.length) {
      throw s3Error('read', where, new TruncatedResponse(`the response ended after ${at} of ${range.length} bytes`));
    }
  }

  /** A GET of the object or of `range` (not empty), whose answer then holds exactly that range (REPO_CORRUPT beyond
   * the end of the object); its body not read yet. */
  private async get(h: ObjectHandle, key: string, where: string, range?: ByteRange): Promise<GetObjectCommandOutput> {
    let res: GetObjectCommandOutput;
    try {
      res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range === undefined ? {} : { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` }),
        }),
      );
    } catch (err) {
      if (range !== undefined && statusOf(err) === 416) {
        const { size } = await this.stat(h);
        throw beyondEnd(where, range, size);
      }
      throw s3Error('read', where, err);
    }
    const length = res.ContentLength ?? 0;
    if (range !== undefined && length !== range.length) {
      const total = Number(/\/(\d+)$/.exec(res.ContentRange ?? '')?.[1] ?? range.offset + length);
      (res.Body as Readable | undefined)?.destroy();
      throw beyondEnd(where, range, total);
    }
    return res;
  }

  async stat(h: ObjectHandle): Promise<ObjectInfo> {
    const key = this.keyOf(h);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      const name = h.type === 'config' ? 'config' : h.name;
      const size = res.ContentLength ?? 0;
      return res.LastModified === undefined ? { name, size } : { name, size, mtimeMs: res.LastModified.getTime() };
    } catch (err) {
      throw s3Error('read', this.where(key), err);
    }
  }

  /** Complete objects only: names that are not valid object names, or data not in its prefix folder, are skipped. */
  async *list(type: ObjectType): AsyncIterable<ObjectInfo> {
    const config = { type, name: 'config' } as const;
    if (type === 'config') {
      if (await this.exists(this.keyOf(config))) yield await this.stat(config);
      return;
    }
    const base = `${this.prefix}${type}/`;
    for await (const o of this.listObjects(base)) {
      const parts = o.key.slice(base.length).split('/');
      const name = parts[parts.length - 1] ?? '';
      if (type === 'data' ? parts.length !== 2 || parts[0] !== name.slice(0, 2) : parts.length !== 1) continue;
      if (!isObjectName(type, name)) continue;
      yield o.mtimeMs === undefined ? { name, size: o.size } : { name, size: o.size, mtimeMs: o.mtimeMs };
    }
  }

  async retainedUntil(h: ObjectHandle): Promise<number | undefined> {
    const key = this.keyOf(h);
    if ((await this.lockPolicy()) === undefined) return undefined;
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      const until = res.ObjectLockRetainUntilDate?.getTime();
      return until !== undefined && until > Date.now() ? until : undefined;
    } catch (err) {
      const e = s3Error('read', this.where(key), err);
      if (e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  async remove(h: ObjectHandle): Promise<void> {
    const key = this.keyOf(h);
    const until = await this.retainedUntil(h);
    if (until !== undefined) {
      throw new FoleBackupError(
        'OBJECT_LOCKED',
        `remove ${this.where(key)}: under retention until ${new Date(until).toISOString()}`,
        { path: this.where(key), hint: 'it can be removed once its retention has ended; run again after that date' },
      );
    }
    await this.deleteKey(key);
    // a name saveNew may store again must not stay claimed (packs are never saved create-only)
    if (h.type !== 'data') {
      const claimDir = `${this.prefix}${CLAIMS}/${key.slice(this.prefix.length)}/`;
      for (const k of await this.listKeys(claimDir)) await this.deleteKey(k);
    }
  }

  /**
   * Multipart uploads a killed writer left unfinished (their parts take space but no object shows them), as
   * `<object path>#upload=<id>`; mtime is when the newest part arrived, so an upload under way stays recent.
   */
  async *listTemporary(): AsyncIterable<TemporaryFile> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      let page: ListMultipartUploadsCommandOutput;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.prefix,
            ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }),
            ...(idMarker === undefined ? {} : { UploadIdMarker: idMarker }),
          }),
        );
      } catch (err) {
        throw s3Error('list', `${this.location} (unfinished uploads)`, err);
      }
      for (const u of page.Uploads ?? []) {
        // an upload of something that is no repository object is not ours to abort
        if (u.Key === undefined || u.UploadId === undefined || !isObjectPath(u.Key.slice(this.prefix.length))) continue;
        let size = 0;
        let mtimeMs = u.Initiated?.getTime() ?? 0;
        try {
          const parts = await this.client.send(
            new ListPartsCommand({ Bucket: this.bucket, Key: u.Key, UploadId: u.UploadId }),
          );
          for (const part of parts.Parts ?? []) {
            size += part.Size ?? 0;
            mtimeMs = Math.max(mtimeMs, part.LastModified?.getTime() ?? 0);
          }
        } catch (err) {
          // finished or aborted since it was listed
          if (s3Error('list', this.where(u.Key), err).code === 'NOT_FOUND') continue;
          throw s3Error('list', this.where(u.Key), err);
        }
        yield { path: `${u.Key.slice(this.prefix.length)}${UPLOAD_MARK}${u.UploadId}`, size, mtimeMs };
      }
      keyMarker = page.IsTruncated === true ? page.NextKeyMarker : undefined;
      idMarker = page.IsTruncated === true ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
  }

  /** Abort an unfinished upload listTemporary gave; refuses (INTERNAL) anything else. */
  async removeTemporary(t: TemporaryFile): Promise<void> {
    const at = t.path.lastIndexOf(UPLOAD_MARK);
    const rel = at < 0 ? '' : t.path.slice(0, at);
    const uploadId = at < 0 ? '' : t.path.slice(at + UPLOAD_MARK.length);
    if (!isObjectPath(rel) || !/^[A-Za-z0-9._~+=/-]{1,1024}$/.test(uploadId)) {
      throw new FoleBackupError(
        'INTERNAL',
        `remove temporary file ${JSON.stringify(t.path)}: not an unfinished upload of this repository`,
      );
    }
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: `${this.prefix}${rel}`, UploadId: uploadId }),
      );
    } catch (err) {
      const e = s3Error('remove', this.where(`${this.prefix}${rel}`), err);
      if (e.code !== 'NOT_FOUND') throw e;
    }
  }

  /** Versioning and Object Lock as the bucket reports them (init shows them). */
  async storageFacts(): Promise<StorageFacts> {
    let versioning: StorageFacts['versioning'];
    try {
      const v = await this.client.send(new GetBucketVersioningCommand({ Bucket: this.bucket }));
      versioning = v.Status === 'Enabled' ? 'enabled' : v.Status === 'Suspended' ? 'suspended' : 'disabled';
    } catch {
      versioning = 'unknown';
    }
    return { versioning, objectLock: await this.objectLockEnabled() };
  }

  /**
   * Whether the bucket has Object Lock enabled, judged by the response body: OpenStack Swift answers
   * `GET ?object-lock` with 200 and an ordinary bucket listing, which parses to no configuration at all.
   */
  async objectLockEnabled(): Promise<boolean> {
    try {
      const res = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }));
      return res.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 400 || status === 501) return false;
      throw s3Error('read', this.location, err);
    }
  }

  /**
   * What the bucket really enforces: its Object Lock configuration (judged by the body), then a canary. Only where
   * Object Lock was proved is the canary put with retention (COMPLIANCE, one day: it stays that long); then the
   * very version put is deleted. Immutable only if that delete is refused.
   */
  async probeImmutability(): Promise<ImmutabilityReport> {
    const findings: string[] = [];
    const { versioning = 'unknown' } = await this.storageFacts();
    const objectLock = await this.objectLockEnabled();
    findings.push(
      objectLock
        ? 'the bucket reports Object Lock enabled'
        : 'the bucket does not report Object Lock enabled (no ObjectLockEnabled=Enabled in its configuration)',
    );
    findings.push(`bucket versioning: ${versioning}`);
    const key = `${this.prefix}${PROBES}/immutability-${randomBytes(8).toString('hex')}`;
    let versionId: string | undefined;
    try {
      const res = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: Buffer.from('fole-backup immutability canary\n'),
          ...(objectLock ? retention(DAY_MS) : {}),
        }),
      );
      versionId = res.VersionId;
    } catch (err) {
      throw s3Error('write', this.where(key), err);
    }
    let deleted: boolean;
    try {
      await this.client.send(
        new DeleteObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(versionId === undefined ? {} : { VersionId: versionId }),
        }),
      );
      // without a version id a delete may only hide the object behind a delete marker: look for it
      deleted = versionId !== undefined || !(await this.exists(key));
    } catch (err) {
      const e = s3Error('remove', this.where(key), err);
      if (e.code !== 'ACCESS_DENIED') throw e;
      deleted = false;
      findings.push(`deleting the canary was refused: ${e.message}`);
    }
    if (deleted) findings.push('the canary was deleted: anyone with these credentials can delete backups');
    const immutable = objectLock && !deleted;
    return { immutable, objectLock, versioning, canary: { retention: objectLock, deleted }, findings };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** Whether `rel` (a key less the prefix) is where an object of the repository lives. */
function isObjectPath(rel: string): boolean {
  if (rel === 'config') return true;
  const [type, ...rest] = rel.split('/');
  const name = rest[rest.length - 1] ?? '';
  if (type === 'data') return rest.length === 2 && rest[0] === name.slice(0, 2) && isObjectName('data', name);
  return (
    rest.length === 1 &&
    type !== 'config' &&
    OBJECT_TYPES.includes(type as ObjectType) &&
    isObjectName(type as ObjectType, name)
  );
}

/** COMPLIANCE retention for `ms` from now: nobody, the account's root included, can delete the version before. */
function retention(ms: number): Partial<PutObjectCommandInput> {
  return {
    ObjectLockMode: 'COMPLIANCE',
    ObjectLockRetainUntilDate: new Date(Date.now() + ms),
    // AWS wants a checksum with every PUT under retention
    ChecksumAlgorithm: 'SHA256',
  };
}

/** A response body read into one buffer of its announced length (never a slice of Node's shared pool). */
async function readBody(body: AsyncIterable<Uint8Array> | undefined, length: number, where: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafeSlow(length);
  let at = 0;
  try {
    for await (const chunk of body ?? []) {
      if (at + chunk.length > length) throw new Error(`more than the ${length} bytes announced`);
      buf.set(chunk, at);
      at += chunk.length;
    }
  } catch (err) {
    throw s3Error('read', where, err);
  }
  if (at !== length) {
    throw s3Error('read', where, new TruncatedResponse(`the response ended after ${at} of ${length} bytes`));
  }
  return buf;
}
