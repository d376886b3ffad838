/**
 * How hard property-based tests (fast-check) try, in one place. The default
 * suite runs every property with fixed seeds and a small number of runs:
 * reproducible and well inside the 10-minute budget. `npm run test:fuzz` sets
 * FOLE_FUZZ_SCALE to run each property many times more and with one fresh
 * random seed as well (fast-check prints the seed of any counterexample, so a
 * failure found there can be replayed with that seed).
 */
import fc from 'fast-check';

const SCALE = Math.max(1, Math.floor(Number(process.env.FOLE_FUZZ_SCALE ?? '1')) || 1);

/** The seeds to run with: the fixed ones, plus a random one in a scaled run. */
function seedsFor(seeds: readonly number[]): number[] {
  return SCALE > 1 ? [...seeds, Date.now() ^ (process.pid << 8)] : [...seeds];
}

/** Assert a synchronous property for each seed, `numRuns` times each (scaled). */
export function fuzz<T>(prop: fc.IProperty<T>, numRuns: number, seeds: readonly number[] = [17]): void {
  for (const seed of seedsFor(seeds)) fc.assert(prop, { seed, numRuns: numRuns * SCALE });
}

/** Assert an asynchronous property for each seed, `numRuns` times each (scaled). */
export async function fuzzAsync<T>(
  prop: fc.IAsyncProperty<T>,
  numRuns: number,
  seeds: readonly number[] = [17],
): Promise<void> {
  for (const seed of seedsFor(seeds)) await fc.assert(prop, { seed, numRuns: numRuns * SCALE });
}
