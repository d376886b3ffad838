import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeModule } from './module.js';

describe('writeBack (native/write-back.c)', () => {
  const { writeBack } = nativeModule();

  it('takes a range of an open file and leaves its bytes as written (the write-back itself is not visible)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fole-write-back-'));
    const file = join(dir, 'f');
    const bytes = randomBytes(3 << 20);
    try {
      const fd = openSync(file, 'w');
      try {
        writeSync(fd, bytes, 0, bytes.length, 0);
        expect(writeBack(fd, 1 << 20, 2 << 20)).toBeUndefined();
        // to the end of the file, and a range past it: nothing to write, nothing fails
        writeBack(fd, 0, 0);
        writeBack(fd, 1 << 30, 4096);
      } finally {
        closeSync(fd);
      }
      expect(readFileSync(file).equals(bytes)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ignores a descriptor that is not open (a hint: the final sync is what counts)', () => {
    expect(() => writeBack(1 << 20, 0, 0)).not.toThrow();
  });

  it('refuses arguments that are no descriptor and range', () => {
    for (const bad of [
      [-1, 0, 0],
      [3, -1, 0],
      [3, 0, -5],
      [2 ** 32, 0, 0],
      [Number.NaN, 0, 0],
      [3, Number.POSITIVE_INFINITY, 0],
      [3.5, 0, 0],
      ['3', 0, 0],
      [3, 0],
    ])
      expect(() => (writeBack as (...a: unknown[]) => void)(...bad)).toThrow(/^writeBack: /);
  });
});
