/**
 * Tests that need something of the machine (root, Linux namespaces, /proc):
 * off CI a missing facility skips them; in CI (CI=true: `.ci/run`, as root on
 * our own kind of machine) it fails the file instead, so a skip can never hide
 * a missing install step or a test that silently stopped running.
 */
export function canRun(ok: boolean, what: string): boolean {
  if (!ok && process.env.CI === 'true')
    throw new Error(`CI must provide ${what} for these tests, and it is missing here`);
  return ok;
}
