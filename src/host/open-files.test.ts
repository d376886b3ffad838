import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDescriptors, openUnder } from './open-files.js';

describe.runIf(process.platform === 'linux')('open files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fole-open-files-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lists a descriptor open on a file under the directory with its path, and forgets it once closed', () => {
    const file = join(dir, 'a.bin');
    writeFileSync(file, 'x');
    expect(openUnder(dir)).toEqual(new Map());
    const fd = openSync(file, 'r');
    try {
      expect(openUnder(dir)).toEqual(new Map([[fd, file]]));
      expect(openDescriptors().get(fd)).toBe(file);
    } finally {
      closeSync(fd);
    }
    expect(openUnder(dir)).toEqual(new Map());
    expect(openDescriptors().has(fd)).toBe(false);
  });

  it('leaves out a file beside the directory whose name only starts the same', () => {
    const beside = `${dir}-beside`;
    writeFileSync(beside, 'x');
    const fd = openSync(beside, 'r');
    try {
      expect(openUnder(dir)).toEqual(new Map());
      expect(openDescriptors().get(fd)).toBe(beside);
    } finally {
      closeSync(fd);
      rmSync(beside);
    }
  });
});
