/**
 * `npm run test:slow`: the crash-trial and random-damage suites (SLOW_SUITES in vitest.config.ts), left out of the
 * default suite for its time; `.ci/run` runs them after it.
 */
import { configDefaults, defineConfig } from 'vitest/config';
import base, { SLOW_SUITES } from './vitest.config.js';

// the list replaces the default suite's `include` (mergeConfig would append to it)
export default defineConfig({
  ...base,
  test: { ...base.test, include: SLOW_SUITES, exclude: [...configDefaults.exclude] },
});
