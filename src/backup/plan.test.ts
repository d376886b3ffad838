import { describe, expect, it } from 'vitest';
import type { TreeEntry } from '../snapshot/snapshot.js';
import type { ScanRecord } from '../storage/scan.js';
import { MORE, newestOf, ParentCursor, unchangedFile } from './plan.js';

const file = (path: string, extra: Partial<TreeEntry> = {}): TreeEntry => ({
  path,
  kind: 'file',
  mode: 0o644,
  mtimeMs: 1000,
  size: 10,
  ctimeMs: 2000,
  ino: 7,
  ...extra,
});

const scanned = (path: string, extra: Partial<ScanRecord> = {}): ScanRecord => ({
  path,
  kind: 'file',
  size: 10,
  mode: 0o644,
  mtimeMs: 1000,
  ctimeMs: 2000,
  ino: 7,
  uid: 1,
  gid: 1,
  ...extra,
});

/** A parent tree, a tree blob's entries at a time, that counts how many entries were taken from it. */
function counted(batches: TreeEntry[][]): { iterator: AsyncIterator<TreeEntry[]>; taken: () => number } {
  let taken = 0;
  async function* gen(): AsyncGenerator<TreeEntry[]> {
    for (const b of batches) {
      taken += b.length;
      yield b;
    }
  }
  return { iterator: gen(), taken: () => taken };
}

describe('ParentCursor', () => {
  it("finds each path's parent entry in one pass over the parent tree, and none for new or removed paths", async () => {
    // cut into blobs anywhere, an empty one included: the answers are the same
    const parent = counted([
      [{ path: 'a', kind: 'dir', mode: 0o755, mtimeMs: 0 }, file('a/x')],
      [file('a/z')],
      [],
      [file('b'), file('d')],
    ]);
    const cursor = new ParentCursor(parent.iterator);
    // a/z and b are gone from the walk, c is new, e comes after the parent's last entry
    expect(await cursor.find('a')).toMatchObject({ path: 'a', kind: 'dir' });
    expect(await cursor.find('a/x')).toMatchObject({ path: 'a/x' });
    expect(await cursor.find('a/y')).toBeUndefined();
    expect(await cursor.find('c')).toBeUndefined();
    expect(await cursor.find('d')).toMatchObject({ path: 'd' });
    expect(await cursor.find('e')).toBeUndefined();
    expect(parent.taken()).toBe(5);
  });

  it('answers from the entries read while they decide, and says MORE where they end', async () => {
    const cursor = new ParentCursor(counted([[file('a'), file('c')], [file('e')]]).iterator);
    expect(cursor.findRead('a')).toBe(MORE);
    expect(await cursor.find('a')).toMatchObject({ path: 'a' });
    expect(cursor.findRead('b')).toBeUndefined();
    expect(cursor.findRead('c')).toMatchObject({ path: 'c' });
    // past the blob's last entry: only the next blob can say whether d is there
    expect(cursor.findRead('d')).toBe(MORE);
    expect(await cursor.find('d')).toBeUndefined();
    expect(cursor.findRead('e')).toMatchObject({ path: 'e' });
    expect(cursor.findRead('f')).toBe(MORE);
    expect(await cursor.find('f')).toBeUndefined();
    // the parent is read to its end: nothing more to wait for
    expect(cursor.findRead('g')).toBeUndefined();
  });

  it('orders a directory before its contents: a/b is not mistaken for a.txt', async () => {
    const cursor = new ParentCursor(counted([[file('a/b'), file('a.txt')]]).iterator);
    expect(await cursor.find('a/b')).toMatchObject({ path: 'a/b' });
    expect(await cursor.find('a.txt')).toMatchObject({ path: 'a.txt' });
  });

  it('finds nothing without a parent (a full backup)', async () => {
    const cursor = new ParentCursor(undefined);
    expect(cursor.findRead('a')).toBeUndefined();
    expect(await cursor.find('a')).toBeUndefined();
  });
});

describe('unchangedFile', () => {
  it("keeps a file with its parent's size, mtime, ctime and inode", () => {
    expect(unchangedFile(scanned('f'), file('f'))).toBe(true);
  });

  it.each([
    ['size', { size: 11 }],
    ['mtime', { mtimeMs: 1001 }],
    ['ctime', { ctimeMs: 2001 }],
    ['inode', { ino: 8 }],
  ])('re-reads a file whose %s changed', (_what, change) => {
    expect(unchangedFile(scanned('f', change), file('f'))).toBe(false);
  });

  it('re-reads a file that was a database in the parent, or is new', () => {
    expect(unchangedFile(scanned('f'), file('f', { kind: 'db' }))).toBe(false);
    expect(unchangedFile(scanned('f'), undefined)).toBe(false);
  });
});

describe('newestOf', () => {
  it('picks the newest backup of the same STORAGE_ROOT on the same host', () => {
    const snaps = [
      { backupId: '1', storageRoot: '/srv/fole', host: 'h' },
      { backupId: '2', storageRoot: '/srv/fole', host: 'h' },
      { backupId: '3', storageRoot: '/srv/other', host: 'h' },
      { backupId: '4', storageRoot: '/srv/fole', host: 'elsewhere' },
    ];
    expect(newestOf(snaps, '/srv/fole', 'h')?.backupId).toBe('2');
    expect(newestOf(snaps, '/srv/none', 'h')).toBeUndefined();
  });
});
