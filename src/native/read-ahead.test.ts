import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeModule } from './module.js';

const dir = mkdtempSync(join(tmpdir(), 'fole-read-ahead-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A directory whose access time a read of its entries moves (relatime moves it when it is older than the
 * modification time): set an hour back.
 */
function watched(path: string | Buffer): { moved(): boolean } {
  mkdirSync(path);
  writeFileSync(Buffer.concat([Buffer.from(path), Buffer.from('/f')]), 'x');
  const hourAgo = new Date(Date.now() - 3_600_000);
  utimesSync(path, hourAgo, new Date());
  const before = statSync(path).atimeMs;
  return { moved: () => statSync(path).atimeMs > before };
}

/** Wait until `done` (the reads are on threads of their own), or give up after 10 s. */
async function until(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  return done();
}

describe('readAhead (native/read-ahead.c)', () => {
  const { readAhead } = nativeModule();

  it('reads the directory it is given, by its bytes when its name is not UTF-8', async () => {
    const plain = watched(join(dir, 'plain'));
    const bytes = Buffer.concat([Buffer.from(join(dir, 'bad-')), Buffer.from([0xff])]);
    const notUtf8 = watched(bytes);
    readAhead(join(dir, 'plain'));
    readAhead(bytes);
    expect(await until(() => plain.moved() && notUtf8.moved())).toBe(true);
  });

  it('never reads through a symlink', async () => {
    const target = watched(join(dir, 'target'));
    symlinkSync('target', join(dir, 'link'));
    readAhead(join(dir, 'link'));
    // directories queued after the link, one per reader thread and more: once all are read, so is the link
    const after = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => watched(join(dir, `after-${i}`)));
    for (let i = 0; i < after.length; i++) readAhead(join(dir, `after-${i}`));
    expect(await until(() => after.every((a) => a.moved()))).toBe(true);
    expect(target.moved()).toBe(false);
  });

  it('lets what it cannot read go, and refuses arguments that are no path', () => {
    expect(() => readAhead(join(dir, 'no-such-directory'))).not.toThrow();
    expect(() => readAhead(join(dir, 'plain', 'f'))).not.toThrow();
    for (const bad of [3, undefined, '', Buffer.alloc(0), Buffer.from('/tmp\0/x'), 'x'.repeat(70_000)])
      expect(() => readAhead(bad as string)).toThrow(TypeError);
  });
});

/** mincore(2) over a mapping of the file: pages of it in the page cache (python3 is already needed to build). */
const MINCORE = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
page = os.sysconf('SC_PAGE_SIZE')
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    addr = libc.mmap(None, size, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
    if addr in (None, ctypes.c_void_p(-1).value): sys.exit('mmap failed')
    vec = ctypes.create_string_buffer((size + page - 1) // page)
    if libc.mincore(ctypes.c_void_p(addr), size, vec) != 0: sys.exit('mincore failed')
    print(sum(b & 1 for b in vec.raw) * page / size)
`;

/** The share of each file's bytes in the page cache, 0 to 1. */
const resident = (...paths: string[]): number[] =>
  execFileSync('python3', ['-c', MINCORE, ...paths], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map(Number);

/** A file of 2 MiB on disk that is not in the page cache (GNU dd's nocache drops it: POSIX_FADV_DONTNEED). */
function evicted(path: string): string {
  writeFileSync(path, Buffer.alloc(2 << 20, 7), { flush: true });
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
  // the premise: without it the test could not see a read ahead (a file system that keeps every file in memory)
  expect(resident(path), `${path} could not be dropped from the page cache`).toEqual([0]);
  return path;
}

/**
 * Whether most of each file is in the page cache: the kernel reads it whole, but may already have let a few pages
 * go again by the time they are counted.
 */
const mostlyIn = (...paths: string[]): boolean => resident(...paths).every((share) => share > 0.5);

describe('readFileAhead (native/read-ahead.c)', () => {
  const { readFileAhead } = nativeModule();

  it('brings a regular file into the page cache', async () => {
    const file = evicted(join(dir, 'whole.bin'));
    readFileAhead(file);
    expect(await until(() => mostlyIn(file))).toBe(true);
  });

  it('never reads through a symlink, and opens no directory, FIFO or missing file for its contents', async () => {
    const target = evicted(join(dir, 'target.bin'));
    symlinkSync('target.bin', join(dir, 'file-link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    // a FIFO opened for reading would wait for a writer: a reader thread stuck there would read nothing after it
    for (const path of ['file-link', 'fifo', 'fifo', 'fifo', 'fifo', '.', 'no-such-file'])
      readFileAhead(join(dir, path));
    const after = [0, 1, 2, 3].map((i) => evicted(join(dir, `after-${i}.bin`)));
    for (const file of after) readFileAhead(file);
    expect(await until(() => mostlyIn(...after))).toBe(true);
    expect(resident(target)).toEqual([0]);
  });

  it('refuses arguments that are no path', () => {
    for (const bad of [3, undefined, '', Buffer.alloc(0), Buffer.from('/tmp\0/x'), 'x'.repeat(70_000)])
      expect(() => readFileAhead(bad as string)).toThrow(/^readFileAhead: /);
  });
});
