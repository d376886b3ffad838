/**
 * Shared helpers for repository tests: a repository with a cheap KDF (tests
 * create many), and reading a stored file back from its chunks.
 */
import { expect } from 'vitest';
import type { Backend } from '../src/backend/backend.js';
import { LocalBackend } from '../src/backend/local.js';
import { MemoryBackend } from '../src/backend/memory.js';
import { Repository } from '../src/repository/repository.js';
import type { TreeEntry } from '../src/snapshot/snapshot.js';
import { listSnapshots } from '../src/snapshot/store.js';
import { readTree } from '../src/snapshot/tree.js';

export const TEST_PASSWORD = 'correct horse battery staple';
export const FAST_KDF = { N: 1024, r: 8, p: 1 };

export async function makeRepo(
  backend: Backend = new MemoryBackend(),
  opts: { packSize?: number } = {},
): Promise<Repository> {
  return Repository.init(backend, TEST_PASSWORD, { kdf: FAST_KDF, ...opts });
}

/** Concatenate a file entry's chunks as stored in the repository. */
export async function readBack(repo: Repository, e: TreeEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const id of e.chunks ?? []) parts.push(await repo.loadBlob(id));
  return Buffer.concat(parts);
}

/** A new repository in a local directory (created), with the cheap KDF; open. */
export async function makeLocalRepo(dir: string, opts: { packSize?: number } = {}): Promise<Repository> {
  return Repository.init(new LocalBackend(dir), TEST_PASSWORD, { kdf: FAST_KDF, ...opts });
}

/** Every file of every backup in the repository reads back at its recorded size. */
export async function expectAllReadable(repo: Repository): Promise<void> {
  for (const s of await listSnapshots(repo)) {
    for await (const e of readTree(repo, s.tree)) {
      if (e.kind !== 'dir') expect((await readBack(repo, e)).length).toBe(e.size);
    }
  }
}
