/**
 * BlobCipher: what it seals is what the repository stores and reads, on either
 * side of a worker-thread boundary (the value toWorker() gives is structured-
 * cloned, as workerData is); what the repository writes, it opens.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { makeRepo } from '../../test/repo-helpers.js';
import { sha256Hex } from '../crypto/hash.js';
import { SEAL_OVERHEAD } from '../crypto/aead.js';
import { BlobCipher, type BlobCipherForWorker } from './blob-cipher.js';
import { COMPRESSION_NONE, COMPRESSION_ZSTD, compressAlways } from './compress.js';

/** The cipher as a worker gets it. */
function inWorker(cipher: BlobCipher): BlobCipher {
  return BlobCipher.fromWorker(structuredClone(cipher.toWorker()));
}

function codeOf(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'no error';
}

describe('BlobCipher', () => {
  it('seals, in a worker, blobs the repository stores and reads back', async () => {
    const repo = await makeRepo();
    const cipher = inWorker(repo.blobCipher());
    const chunks = [randomBytes(1000), randomBytes(1), randomBytes(70_000)];
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length + SEAL_OVERHEAD, 0));
    let at = 0;
    const sealed: { id: string; at: number; length: number; raw: number }[] = [];
    for (const c of chunks) {
      const id = sha256Hex(c);
      const length = cipher.sealInto('data', id, c, out, at);
      expect(length).toBe(c.length + SEAL_OVERHEAD);
      sealed.push({ id, at, length, raw: c.length });
      at += length;
    }
    await repo.loadIndex();
    for (const s of sealed) {
      expect(repo.claimBlob(s.id)).toBe(true);
      const bytes = Buffer.from(out.buffer, s.at, s.length);
      await repo.addSealedBlob('data', s.id, bytes, s.raw, COMPRESSION_NONE);
    }
    await repo.flush();
    for (const [i, s] of sealed.entries()) expect(await repo.loadBlob(s.id)).toEqual(chunks[i]);
  });

  it('opens, in a worker, the blobs and pack header the repository wrote', async () => {
    const repo = await makeRepo();
    const plain = Buffer.from('tree and data '.repeat(500));
    const id = sha256Hex(plain);
    await repo.saveBlob('tree', id, plain);
    await repo.flush();
    const packs: string[] = [];
    for await (const o of repo.backend.list('data')) packs.push(o.name);
    expect(packs).toHaveLength(1);
    const name = packs[0] as string;
    const pack = await repo.backend.load({ type: 'data', name });
    const cipher = inWorker(repo.blobCipher());
    const [blob] = cipher.readPackHeader(pack, name);
    expect(blob).toMatchObject({ id, type: 'tree', rawLength: plain.length });
    if (blob === undefined) return;
    const stored = pack.subarray(blob.offset, blob.offset + blob.length);
    expect(cipher.open(blob, name, stored)).toEqual(plain);
    // bound to its type and id: the same bytes are no other blob
    expect(codeOf(() => cipher.open({ ...blob, type: 'data' }, name, stored))).toBe('CHECKSUM_MISMATCH');
    expect(codeOf(() => cipher.open({ ...blob, id: sha256Hex(Buffer.from('x')) }, name, stored))).toBe(
      'CHECKSUM_MISMATCH',
    );
  });

  it('opens compressed blobs one after another, each result its own, none changed by a later or failed one', () => {
    const cipher = new BlobCipher(randomBytes(32));
    // compressible plaintexts of growing, then shrinking sizes: the buffer of compressed bytes grows, then is reused
    const plains = [200, 5_000, 70_000, 300, 40_000].map((n, i) => Buffer.alloc(n, `blob ${i} `));
    const sealed = plains.map((p) => {
      const packed = compressAlways(p);
      const id = sha256Hex(p);
      const out = Buffer.alloc(packed.length + SEAL_OVERHEAD);
      cipher.sealInto('data', id, packed, out, 0);
      return { b: { id, type: 'data' as const, rawLength: p.length, compression: COMPRESSION_ZSTD }, out };
    });
    const opened: Buffer[] = [];
    for (const [i, s] of sealed.entries()) {
      opened.push(cipher.open(s.b, 'pack', s.out));
      if (i === 2) {
        const bad = Buffer.from(s.out);
        bad[20] = (bad[20] as number) ^ 1;
        expect(codeOf(() => cipher.open(s.b, 'pack', bad))).toBe('CHECKSUM_MISMATCH');
      }
    }
    for (const [i, p] of plains.entries()) expect(opened[i]?.equals(p)).toBe(true);
  });

  it('refuses what is not a cipher handed over by toWorker, and an id that is not a blob id', () => {
    expect(codeOf(() => BlobCipher.fromWorker({} as BlobCipherForWorker))).toBe('INTERNAL');
    const cipher = new BlobCipher(randomBytes(32));
    const out = new Uint8Array(100);
    expect(codeOf(() => cipher.sealInto('data', 'abc', Buffer.from('x'), out, 0))).toBe('INTERNAL');
    expect(codeOf(() => cipher.sealInto('data', 'z'.repeat(64), Buffer.from('x'), out, 0))).toBe('INTERNAL');
  });
});
