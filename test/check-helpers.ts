/**
 * A repository consistency check for fault tests, independent of the code
 * under test: every pack's bytes hash to its name, every blob the index lists
 * decrypts and hashes to its id, every blob a backup uses is indexed.
 */
import { expect } from 'vitest';
import { createHash } from 'node:crypto';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { listSnapshots } from '../src/snapshot/store.js';
import { readTree } from '../src/snapshot/tree.js';

export async function checkRepositoryClean(repoDir: string, password: string): Promise<void> {
  const repo = await Repository.open(new LocalBackend(repoDir), password);
  await repo.loadIndex();
  const stored = new Set<string>();
  for await (const o of repo.backend.list('data')) {
    stored.add(o.name);
    const bytes = await repo.backend.load({ type: 'data', name: o.name });
    expect(createHash('sha256').update(bytes).digest('hex'), `pack ${o.name}`).toBe(o.name);
  }
  for (const e of repo.index.entries()) {
    expect(stored.has(e.pack), `indexed pack ${e.pack} exists`).toBe(true);
    await repo.loadBlob(e.id);
  }
  for (const s of await listSnapshots(repo)) {
    for await (const e of readTree(repo, s.tree)) for (const c of e.chunks ?? []) expect(repo.index.has(c), `${e.path} chunk`).toBe(true);
  }
}
