/**
 * The raw upload a `fole-backup copy` to S3 is compared with (`npm run bench -- --offsite s3`): every file under
 * a directory put into a bucket with the AWS SDK v3 alone, sent the way src/backend/s3.ts sends a pack — one
 * PutObject up to SINGLE_PUT_MAX, else a multipart upload of PART_SIZE parts, PART_QUEUE of them in flight — with
 * MAX_UPLOADS objects in flight, as a repository keeps that many pack uploads going
 * (src/repository/repository.ts). No encryption, no hashing, no index: the transport alone.
 *
 *   node --import tsx bench/lib/offsite/put-s3.ts ENDPOINT BUCKET PREFIX DIR CA_FILE
 *
 * Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Prints {"objects", "bytes", "transferS"} on
 * stdout: transferS runs from the first request to the last answer (start-up and the bucket's creation left out).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join, relative } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { PART_QUEUE, PART_SIZE, SINGLE_PUT_MAX } from '../../../src/backend/s3.js';
import { MAX_UPLOADS } from '../../../src/repository/repository.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

async function main(): Promise<void> {
  const [endpoint, bucket, prefix, dir, caFile] = process.argv.slice(2);
  if (endpoint === undefined || bucket === undefined || prefix === undefined || dir === undefined || !caFile)
    throw new Error('usage: put-s3.ts ENDPOINT BUCKET PREFIX DIR CA_FILE');
  // the client fole-backup makes (src/backend/s3.ts): path-style, no checksum bodies, no SDK retries
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: process.env.AWS_REGION || 'us-east-1',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpsAgent: new Agent({ keepAlive: true, maxSockets: 16, ca: readFileSync(caFile) }),
    }),
  });
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  }
  const files = filesUnder(dir);
  let next = 0;
  let bytes = 0;
  const put = async (file: string): Promise<void> => {
    const body = readFileSync(file);
    bytes += body.length;
    const params = { Bucket: bucket, Key: `${prefix}/${relative(dir, file)}`, ContentType: 'application/octet-stream' };
    if (body.length <= SINGLE_PUT_MAX) {
      await client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.length }));
      return;
    }
    await new Upload({ client, params: { ...params, Body: body }, partSize: PART_SIZE, queueSize: PART_QUEUE }).done();
  };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: MAX_UPLOADS }, async () => {
      while (next < files.length) await put(files[next++] as string);
    }),
  );
  const transferS = (performance.now() - t0) / 1000;
  process.stdout.write(`${JSON.stringify({ objects: files.length, bytes, transferS })}\n`);
  client.destroy();
}

await main();
