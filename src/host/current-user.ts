import { userInfo } from 'node:os';

/**
 * The name of the user this process runs as, recorded in lock records, key
 * files and lock owners so a person can tell whose they are. A uid without a
 * passwd entry (common in containers) makes `userInfo()` throw: then `$USER`,
 * then the numeric uid, and 'unknown' where neither exists.
 */
export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? String(process.getuid?.() ?? 'unknown');
  }
}
