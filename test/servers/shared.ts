/** What the test servers (sshd.ts, swift.ts) share: a free port, and running a program to its end. */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

/** Run a program to its end (its output in { stdout, stderr }); rejects when it fails. */
export const run = promisify(execFile);

/** A TCP port on 127.0.0.1 that nothing listens on now, for a test server to take. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `missing` (the program a test server needs and this machine lacks) as a reason to skip, said loudly; under CI
 * (`CI` set, as `.ci/run` runs) a missing program is an error instead, since a skipped suite proves nothing there.
 */
export function skipWithout(missing: string | undefined, suite: string): boolean {
  if (missing === undefined) return false;
  if (process.env.CI !== undefined && process.env.CI !== '') {
    throw new Error(`${suite}: ${missing} is not installed; .ci/run installs it`);
  }
  console.warn(`SKIPPING ${suite}: ${missing} is not installed (see .ci/run)`);
  return true;
}
