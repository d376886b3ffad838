/**
 * A very large file is stored as parts on every worker plus a whole-file hash (FilePool.storeParted): the parts
 * must add up to exactly the file a single reader would store, and a file that changes between them must be read
 * again, never stored as a mix of two versions. Real workers, a real repository, real files changed mid-read.
 *
 * And the buffers the workers seal into come back once a local repository's draft has their bytes (to be sealed
 * into again), never from a repository that keeps its packs in memory until they are saved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, truncateSync, utimesSync, writeFileSync, writeSync, openSync, closeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FilePool, type StoreOutcome } from './file-pool.js';
import { makeLocalRepo, makeRepo } from '../../test/repo-helpers.js';
import { LocalBackend } from '../backend/local.js';
import type { Repository } from '../repository/repository.js';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const idsOf = (b: Buffer): string[] =>
  Array.from({ length: Math.ceil(b.length / CHUNK) }, (_, k) => sha256(b.subarray(k * CHUNK, (k + 1) * CHUNK)));

let dir: string;
let repo: Repository;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'file-pool-'));
  repo = await makeRepo();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Store `file` through a pool of two workers; `onBytes` runs on the main thread as its bytes come in. */
async function store(file: string, size: number, onBytes?: () => void, first = false): Promise<StoreOutcome> {
  const pool = new FilePool(repo, 2);
  try {
    const out = await pool.store({ path: file, chunkSize: CHUNK, size, first, ...(onBytes ? { onBytes } : {}) });
    await pool.drain();
    await repo.flush();
    return out;
  } finally {
    await pool.close();
  }
}

async function expectStored(out: StoreOutcome, content: Buffer, changed = false): Promise<void> {
  if (out.status !== 'stored') throw new Error(`not stored: ${out.status}`);
  expect(out.changedWhileReading).toBe(changed);
  expect(out.content.size).toBe(content.length);
  expect(out.content.sha256).toBe(sha256(content));
  expect(out.content.chunks).toEqual(idsOf(content));
  const back = Buffer.concat(await Promise.all(out.content.chunks.map((id) => repo.loadBlob(id))));
  expect(back.equals(content)).toBe(true);
}

/** Rewrite the byte at `at` and move the mtime: a writer's change that keeps the size. */
function touch(file: string, at: number, byte: number, when: number): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from([byte]), 0, 1, at);
  closeSync(fd);
  utimesSync(file, when, when);
}

describe('FilePool: a file stored in parts', () => {
  const content = randomBytes(40 * MiB + 12345);

  it('stores exactly what one reader would: chunks in order, the whole-file SHA-256, the bytes', async () => {
    const file = join(dir, 'big.bin');
    writeFileSync(file, content);
    await expectStored(await store(file, content.length), content);
    // a database copy goes ahead of queued work: its parts still come back in file order
    await expectStored(await store(file, content.length, undefined, true), content);
  });

  it('reads to the end a file that grew after the scan', async () => {
    const file = join(dir, 'grown.bin');
    writeFileSync(file, content);
    await expectStored(await store(file, content.length - 5 * MiB), content);
  });

  it('reads it again when it changes between its parts, and stores the new version whole', async () => {
    const file = join(dir, 'changed.bin');
    writeFileSync(file, content);
    let changes = 0;
    const now = Buffer.from(content);
    const out = await store(file, content.length, () => {
      if (changes++ > 0) return;
      // a byte of every part's first segment: the part whose bytes just came in read the old one
      for (let at = 7; at < content.length; at += 16 * MiB) {
        now[at] = (now[at] as number) ^ 0xff;
        touch(file, at, now[at] as number, 1_000);
      }
    });
    await expectStored(out, now);
  });

  it('says it kept changing when every attempt saw a change', async () => {
    const file = join(dir, 'restless.bin');
    writeFileSync(file, content);
    let n = 0;
    const out = await store(file, content.length, () => touch(file, 3 * MiB, n, 2_000 + n++));
    expect(out.status).toBe('stored');
    expect(out.status === 'stored' && out.changedWhileReading).toBe(true);
  });

  it('reads it again when it shrinks below a part while being read', async () => {
    const file = join(dir, 'shrunk.bin');
    writeFileSync(file, content);
    let cut = false;
    const out = await store(file, content.length, () => {
      if (cut) return;
      cut = true;
      truncateSync(file, 20 * MiB + 1);
    });
    await expectStored(out, content.subarray(0, 20 * MiB + 1));
  });

  it('says vanished or not a file as a single reader would', async () => {
    expect(await store(join(dir, 'never-there.bin'), content.length)).toEqual({ status: 'vanished' });
    expect(await store(dir, content.length)).toEqual({ status: 'not-a-file' });
  });
});

describe('FilePool: the buffers chunks are sealed into', () => {
  const content = randomBytes(24 * MiB);
  let file: string;
  beforeAll(() => {
    file = join(dir, 'sealed.bin');
    writeFileSync(file, content);
  });

  /** Store the file into `into` through two workers, twice; how many sealed buffers came back each time. */
  async function storeTwice(into: Repository): Promise<number[]> {
    const freed: number[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const pool = new FilePool(into, 2);
        try {
          const out = await pool.store({ path: file, chunkSize: CHUNK, size: content.length });
          await pool.drain();
          await into.flush();
          if (out.status !== 'stored') throw new Error(`not stored: ${out.status}`);
          const back = Buffer.concat(await Promise.all(out.content.chunks.map((id) => into.loadBlob(id))));
          expect(back.equals(content)).toBe(true);
          // every sealed byte counted in is counted out, whatever went back to a worker meanwhile
          expect(pool.backlogBytes).toBe(0);
          freed.push(pool.buffersFreed);
        } finally {
          await pool.close();
        }
      }
    } finally {
      await into.close();
    }
    return freed;
  }

  it('come back once a local repository has their bytes, and the stored bytes are the file', async () => {
    // 24 MiB in 1 MiB segments: most are written while the file is still being read; stored again, every chunk is
    // already there and nothing is sealed
    const [first, again] = await storeTwice(await makeLocalRepo(join(dir, 'local-repo')));
    expect(first).toBeGreaterThan(12);
    expect(again).toBe(0);
  });

  it('keep the backlog exact when packs fill mid-segment and their commits are slow', async () => {
    const local = new LocalBackend(join(dir, 'slow-repo'));
    // each pack's commit waits: a segment's buffer is given back while its last add still waits for an upload
    const slow = Object.create(local) as LocalBackend;
    slow.createDraft = (type) => {
      const d = local.createDraft(type);
      return {
        append: (parts) => d.append(parts),
        commit: async (h) => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          await d.commit(h);
        },
        discard: () => d.discard(),
      };
    };
    const repo = await makeRepo(slow, { packSize: 64 * 1024 });
    const [first] = await storeTwice(repo);
    expect(first).toBeGreaterThan(0);
  });

  it('do not come back from a repository that saves its packs whole', async () => {
    expect(await storeTwice(await makeRepo())).toEqual([0, 0]);
  });
});
