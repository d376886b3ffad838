/**
 * Tests that need something of the machine (root, Linux namespaces, /proc):
 * off CI a missing facility skips them; in CI (CI=true: `.ci/run`, as root on
 * our own kind of machine) it fails the file instead, so a skip can never hide
 * a missing install step or a test that silently stopped running.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

export function canRun(ok: boolean, what: string): boolean {
  if (!ok && process.env.CI === 'true')
    throw new Error(`CI must provide ${what} for these tests, and it is missing here`);
  return ok;
}

/** Run `fn` with a tmpfs of `size` (mount's syntax: "256k", "2m") mounted on `dir` (made if missing); needs root. */
export async function onTmpfs<T>(dir: string, size: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  try {
    return await fn();
  } finally {
    execFileSync('umount', [dir]);
  }
}
