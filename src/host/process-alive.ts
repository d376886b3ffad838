import { errnoCode } from '../errors.js';

/**
 * Whether a process with this pid exists on this host. EPERM means it exists
 * (as another user). A pid we cannot check counts as alive: callers then rely
 * on a lease instead of removing someone's lock or staging.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}
