/**
 * `npm run test:servers`: the suites that start real servers on 127.0.0.1 — OpenStack Swift with s3api
 * (test/servers/swift.ts), OpenSSH sshd (test/servers/sshd.ts), `serve-repo` over TLS — and run the network
 * backends against them. `.ci/run` installs the servers and runs this after the default suite, which leaves
 * these files out to stay within its time.
 */
import { configDefaults, defineConfig } from 'vitest/config';
import base, { SERVER_SUITES } from './vitest.config.js';

// the list replaces the default suite's `include` (mergeConfig would append to it)
export default defineConfig({
  ...base,
  test: { ...base.test, include: SERVER_SUITES, exclude: [...configDefaults.exclude] },
});
