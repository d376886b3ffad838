/**
 * `npm run test:fuzz`: the suites with property-based tests, each property run many times more (test/fuzz.ts).
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// mergeConfig would append this list to the default suite's `include`: the list replaces it instead
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      'src/snapshot/validate.test.ts',
      'src/repository/master-index.test.ts',
      'src/repository/index-bytes.test.ts',
      'src/repository/pack.test.ts',
      'src/repository/config.test.ts',
      'src/snapshot/store.test.ts',
      'src/retention/policy.test.ts',
      'src/cli/numbers.test.ts',
      'src/repository/lock.test.ts',
      'src/crypto/keys.test.ts',
      'src/fs/byte-names.test.ts',
    ],
    env: { FOLE_FUZZ_SCALE: process.env.FOLE_FUZZ_SCALE ?? '20' },
  },
});
