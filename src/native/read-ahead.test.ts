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
