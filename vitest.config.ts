import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Suites that start real servers on 127.0.0.1 (Swift with s3api, OpenSSH sshd, `serve-repo` over TLS): run by
 * `npm run test:servers` (vitest.servers.config.ts), which `.ci/run` calls after the default suite.
 */
export const SERVER_SUITES = [
  'src/backend/s3.test.ts',
  'test/s3-cli.test.ts',
  'src/backend/sftp.test.ts',
  'test/sftp-cli.test.ts',
  'src/backend/rest.test.ts',
  'test/rest-cli.test.ts',
  'test/network-faults.test.ts',
];

/**
 * Suites of many crash trials (a real process SIGKILLed at points spread over its run, each followed by a check and
 * restores), of random and planted damage healed end to end, and of copies killed mid-way: run by `npm run
 * test:slow` (vitest.slow.config.ts), which `.ci/run` also calls, so the default suite stays well under ten minutes.
 */
export const SLOW_SUITES = [
  'test/backup-crash.test.ts',
  'test/prune-crash.test.ts',
  'test/restore-crash.test.ts',
  'test/repair-crash.test.ts',
  'test/verify-bitflip.test.ts',
  'test/repair.test.ts',
  'test/copy-cli.test.ts',
];

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: [...configDefaults.exclude, ...SERVER_SUITES, ...SLOW_SUITES],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
