/**
 * Freed buffers given back to the system. glibc's malloc serves a block of 128 KiB or more from a mapping of its
 * own, but raises that threshold to the size of each such block freed (up to 32 MiB): after the first 1 MiB
 * buffer is freed, every later one comes from a heap that returns memory only from its top. Our buffers move
 * between threads (a worker's sealed chunks are freed by the main thread, a restore's spans the other way), so
 * those heaps fill with holes that no one reuses in time. A fixed threshold of 256 KiB gives each its own
 * mapping, unmapped when freed: a restore of `wal-heavy` peaked 232–254 MB instead of 275–281 for ~3% more
 * wall time; a backup 217–229 instead of 229–238, for ~5% more (fresh pages faulted in for every buffer), so only
 * restores set it (docs/BENCHMARKS.md, "Memory").
 */
import { optionalNativeModule } from '../native/module.js';

/** Blocks from this size on get a mapping of their own. */
const MMAP_THRESHOLD = 256 * 1024;

/**
 * Fix the threshold for the whole process (every thread's malloc); once is enough. A process that embeds the
 * library decides this for itself: the CLI's restore and recover call it. False where it could not be set (not
 * glibc, no native module).
 */
export function returnFreedBuffers(): boolean {
  return optionalNativeModule()?.fixMmapThreshold(MMAP_THRESHOLD) ?? false;
}
