import { describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backend/memory.js';
import { Repository } from '../src/repository/repository.js';
import { addKey, listKeys, removeKey } from '../src/repository/keys.js';
import { makeRepo, TEST_PASSWORD } from './repo-helpers.js';

describe('several keys per repository', () => {
  it('opens with every key, removes one, and never the one in use or the last', async () => {
    const backend = new MemoryBackend();
    const repo = await makeRepo(backend);
    const second = await addKey(repo, 'second password');
    const viaSecond = await Repository.open(backend, 'second password');
    expect(viaSecond.keyName).toBe(second);
    expect(viaSecond.config.id).toBe(repo.config.id);
    expect((await listKeys(repo)).map((k) => k.current)).toEqual(expect.arrayContaining([true, false]));
    await expect(removeKey(viaSecond, second.slice(0, 10))).rejects.toThrow(/the one you opened/);
    await expect(removeKey(repo, 'abc')).rejects.toThrow(/at least 8/);
    expect(await removeKey(repo, second.slice(0, 10))).toBe(second);
    await expect(Repository.open(backend, 'second password')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    const again = await Repository.open(backend, TEST_PASSWORD);
    expect((await listKeys(again)).length).toBe(1);
    await expect(removeKey(again, again.keyName)).rejects.toThrow(/the one you opened/);
  });
});
