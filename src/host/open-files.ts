import { readdirSync, readlinkSync } from 'node:fs';

/**
 * Every descriptor this process has open, with what it points at (a path, or
 * `pipe:[…]`, `socket:[…]`, …). Linux only, through /proc/self/fd: elsewhere
 * the map is empty.
 */
export function openDescriptors(): Map<number, string> {
  const out = new Map<number, string>();
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      out.set(Number(fd), readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed since the listing (the listing's own descriptor is one of them)
    }
  }
  return out;
}

/** The descriptors of this process open on a file under directory `dir`, with that file's path. */
export function openUnder(dir: string): Map<number, string> {
  const prefix = `${dir}/`;
  return new Map([...openDescriptors()].filter(([, target]) => target.startsWith(prefix)));
}
