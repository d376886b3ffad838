import { mkdirSync, mkdtempSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FoleBackupError } from '../errors.js';
import { fsPath } from '../fs/byte-names.js';
import { comparePaths } from '../snapshot/snapshot.js';
import { scanTree, walkTree, type ScanRecord, type ScanSkip } from './scan.js';

const dir = mkdtempSync(join(tmpdir(), 'fole-scan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A tree bigger than one batch, with names that sort differently by bytes and by component. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'a', 'b'), { recursive: true });
  mkdirSync(join(root, 'a-c'));
  mkdirSync(join(root, 'tiles'));
  mkdirSync(join(root, 'tmp'));
  writeFileSync(join(root, 'a', 'b', 'x.txt'), 'x');
  writeFileSync(join(root, 'a-c', 'y.txt'), 'y');
  writeFileSync(join(root, 'tmp', 'scratch'), 'excluded');
  writeFileSync(join(root, 'a.db-wal'), 'excluded side file');
  symlinkSync('/etc/passwd', join(root, 'link'));
  for (let z = 0; z < 3; z++) {
    for (let x = 0; x < 30; x++) {
      mkdirSync(join(root, 'tiles', String(z), String(x)), { recursive: true });
      for (let y = 0; y < 15; y++)
        writeFileSync(join(root, 'tiles', String(z), String(x), `${y}.png`), `${z}/${x}/${y}`);
    }
  }
  // names that are not UTF-8, and one that spells what they would decode to: three files
  writeFileSync(Buffer.concat([Buffer.from(join(root, 'bad-')), Buffer.from([0xff, 0xfe])]), 'n');
  mkdirSync(Buffer.concat([Buffer.from(join(root, 'bad-')), Buffer.from([0xc3])]));
  writeFileSync(Buffer.concat([Buffer.from(join(root, 'bad-')), Buffer.from([0xc3]), Buffer.from('/in\\side')]), 'n');
  writeFileSync(join(root, 'bad-\ufffd\ufffd'), 'n');
}

async function collect(root: string): Promise<{ records: ScanRecord[]; skips: ScanSkip[]; batches: number }> {
  const records: ScanRecord[] = [];
  const skips: ScanSkip[] = [];
  let batches = 0;
  for await (const b of scanTree(root, (s) => skips.push(s))) {
    batches++;
    records.push(...b);
  }
  return { records, skips, batches };
}

describe('scanTree (on a worker thread)', () => {
  const root = join(dir, 'root');
  mkdirSync(root);
  makeTree(root);

  it('gives what walkTree gives on the calling thread, in tree order, in several batches', async () => {
    const got = await collect(root);
    const local: ScanRecord[] = [];
    const localSkips: ScanSkip[] = [];
    for (const b of walkTree(root, (s) => localSkips.push(s))) local.push(...b);
    expect(got.records).toEqual(local);
    expect(got.skips).toEqual(localSkips);
    expect(got.batches).toBeGreaterThan(1);
    const paths = got.records.map((r) => r.path);
    expect(paths).toEqual([...paths].sort(comparePaths));
    expect(paths.slice(0, 5)).toEqual(['a', 'a/b', 'a/b/x.txt', 'a-c', 'a-c/y.txt']);
    expect(paths).not.toContain('tmp');
    expect(paths).not.toContain('a.db-wal');
    expect(got.records.find((r) => r.path === 'link')?.kind).toBe('symlink');
    expect(got.records.filter((r) => r.kind === 'file' && r.path.startsWith('tiles/'))).toHaveLength(3 * 30 * 15);
    // every name kept, in its string form (src/fs/byte-names.ts), its bytes as on disk
    expect(got.skips).toEqual([]);
    expect(paths.filter((p) => p.startsWith('bad-'))).toEqual([
      'bad-\udcc3',
      'bad-\udcc3/in\\side',
      'bad-\udcff\udcfe',
      'bad-\ufffd\ufffd',
    ]);
    expect(got.records.find((r) => r.path === 'bad-\udcc3')?.kind).toBe('dir');
  });

  it('raises the walk error on the caller as a typed error naming the path', async () => {
    const missing = join(dir, 'no-such-root');
    const err = await collect(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FoleBackupError);
    expect((err as FoleBackupError).code).toBe('NOT_FOUND');
    expect((err as FoleBackupError).path).toBe(missing);
  });

  it('stops its worker when the caller stops early', async () => {
    let seen = 0;
    for await (const b of scanTree(root, () => undefined)) {
      seen += b.length;
      break;
    }
    expect(seen).toBeGreaterThan(0);
    // the generator's finally has terminated the worker; a fresh scan still works
    expect((await collect(root)).records.length).toBeGreaterThan(1000);
  });
});

describe('walkTree reading directories ahead', () => {
  const root = join(dir, 'ahead');
  mkdirSync(root);
  makeTree(root);
  mkdirSync(join(root, 'a', 'cache'));
  symlinkSync('a', join(root, 'dirlink'));
  const walk = (readAhead: number, read?: (p: string | Uint8Array) => void) => {
    const records: ScanRecord[] = [];
    const skips: ScanSkip[] = [];
    const opts = { readAhead, ...(read === undefined ? {} : { readAheadWith: read }) };
    for (const b of walkTree(root, (s) => skips.push(s), opts)) records.push(...b);
    return { records, skips };
  };
  const asText = (p: string | Uint8Array): string => (typeof p === 'string' ? p : Buffer.from(p).toString('latin1'));

  it('walks the same with any window, the native reader included', () => {
    const plain = walk(0);
    expect(plain.records.length).toBeGreaterThan(1024);
    for (const window of [1, 2, 7, 1024]) {
      expect(walk(window)).toEqual(plain);
      expect(walk(window, () => undefined)).toEqual(plain);
    }
  });

  it("reads ahead the walk's directories, each once: never a symlink, an excluded directory or a file", () => {
    const dirs = walk(0)
      .records.filter((r) => r.kind === 'dir')
      .map((r) => asText(fsPath(join(root, r.path))));
    expect(dirs.some((d) => d.endsWith('/a/cache') || d.endsWith('/dirlink'))).toBe(false);
    // the directory whose name is not UTF-8 is read by its bytes
    expect(dirs).toContain(Buffer.concat([Buffer.from(join(root, 'bad-')), Buffer.from([0xc3])]).toString('latin1'));
    for (const window of [1, 2, 7, 1024]) {
      const read: string[] = [];
      walk(window, (p) => read.push(asText(p)));
      expect(new Set(read).size).toBe(read.length);
      // every directory but the root, whatever the window; one at a time, in the order the walk lists them
      expect([...read].sort()).toEqual([...dirs].sort());
      if (window === 1) expect(read).toEqual(dirs);
    }
  });

  it('keeps reading ahead after a directory read ahead vanishes before the walk comes to it', () => {
    const gone = join(dir, 'vanishing');
    for (let d = 0; d < 6; d++) mkdirSync(join(gone, `d${d}`, 'sub'), { recursive: true });
    const read: string[] = [];
    const skips: ScanSkip[] = [];
    const vanish = (p: string | Uint8Array): void => {
      read.push(asText(p));
      if (asText(p) === join(gone, 'd2')) rmSync(join(gone, 'd2'), { recursive: true });
    };
    for (const _ of walkTree(gone, (s) => skips.push(s), { readAhead: 1, readAheadWith: vanish }));
    expect(skips).toEqual([{ path: 'd2', reason: 'vanished during backup' }]);
    // the room d2 freed is filled at the next listing (d3's): reading ahead goes on to the end, each directory once
    const want = [0, 1, 2, 3, 4, 5].flatMap((d) => [join(gone, `d${d}`), join(gone, `d${d}`, 'sub')]);
    const notRead = [join(gone, 'd2', 'sub'), join(gone, 'd3')];
    expect(read).toEqual(want.filter((p) => !notRead.includes(p)));
  });
});
