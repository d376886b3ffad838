import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackgroundSync } from './sync-filesystem.js';

const dir = mkdtempSync(join(tmpdir(), 'fole-sync-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('BackgroundSync', () => {
  it('syncs once per flush, once more when asked while one runs, and stop() waits for the one under way', async () => {
    writeFileSync(join(dir, 'a'), Buffer.alloc(1 << 20, 1));
    const sync = new BackgroundSync(dir);
    sync.flush();
    // asked twice while the first runs: one more after it, not two
    sync.flush();
    sync.flush();
    for (let i = 0; i < 500 && sync.synced < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sync.synced).toBe(2);
    sync.flush();
    await sync.stop();
    expect(sync.synced).toBe(3);
    // after stop: nothing more starts, nothing throws
    sync.flush();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sync.synced).toBe(3);
  });

  it('a flush never asked for costs nothing but the shell, which stop() ends', async () => {
    const sync = new BackgroundSync(dir);
    await sync.stop();
    expect(sync.synced).toBe(0);
  });
});
