import { describe, expect, it } from 'vitest';
import { nativeModule } from '../native/module.js';
import { returnFreedBuffers } from './malloc.js';

/** glibc's, as on every machine this is built for (Debian); musl has no such setting. */
const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime;

describe('returnFreedBuffers', () => {
  it.runIf(glibc !== undefined)("fixes glibc's mmap threshold", () => {
    expect(returnFreedBuffers()).toBe(true);
  });

  it('takes a threshold from 1 byte to 32 MiB, and nothing else', () => {
    const native = nativeModule();
    for (const bad of [0, -1, 32 * 1024 * 1024 + 1, 1.5, Number.NaN]) {
      expect(() => native.fixMmapThreshold(bad), String(bad)).toThrow(RangeError);
    }
    expect(() => (native.fixMmapThreshold as (x: unknown) => boolean)('256k')).toThrow(RangeError);
    expect(native.fixMmapThreshold(256 * 1024)).toBe(glibc !== undefined);
  });
});
