import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Prng } from '../demo/prng.js';
import { utimeSeconds } from './file-times.js';

const dir = mkdtempSync(join(tmpdir(), 'fole-file-times-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('utimeSeconds', () => {
  it('gives a file back the time a backup recorded, to the nearest microsecond', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    // times as lstat gives them (a double of milliseconds), from 2026 to 2040, drawn the same way every run
    const prng = new Prng(0x2545f491);
    let worst = 0;
    for (let i = 0; i < 5000; i++) {
      const ns = 1_767_225_600e9 + Math.floor(prng.float() * 441_504_000e9);
      utimesSync(file, ns / 1e9, ns / 1e9);
      const recorded = statSync(file).mtimeMs;
      utimesSync(file, utimeSeconds(recorded), utimeSeconds(recorded));
      worst = Math.max(worst, Math.abs(statSync(file).mtimeMs - recorded));
    }
    // half a microsecond of rounding, and a quarter of one in the double of milliseconds stat gives back
    expect(worst).toBeLessThan(0.00075);
  });
});
