/**
 * Who holds a lock, told apart by more than a pid. A pid alone names a process
 * only inside one PID namespace of one boot: two containers that share a
 * hostname each have their own pid 42, and after a reboot pid 42 is someone
 * else. A holder is therefore recorded with
 *
 *   bootId     /proc/sys/kernel/random/boot_id   (changes with every boot; shared by containers)
 *   pidNs      readlink /proc/self/ns/pid        (e.g. "pid:[4026531836]")
 *   startTime  field 22 of /proc/self/stat       (clock ticks after boot; tells a reused pid apart)
 *
 * and judged gone only when all of that can be checked from here: same host,
 * same boot, same PID namespace, and its pid no longer exists or now belongs to
 * a process that started at another time. Anything else (another machine,
 * another container, no /proc, an old record without these fields) cannot be
 * proven gone; callers then rely on a lease.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { processAlive } from './process-alive.js';

/** What identifies a process beyond its pid. Fields are absent where they could not be read. */
export interface ProcessIdentity {
  bootId?: string;
  pidNs?: string;
  startTime?: string;
}

/** A lock holder as recorded: host and pid, and its identity where the record has one. */
export interface Holder extends ProcessIdentity {
  host: string | null;
  pid: number | null;
}

let self: ProcessIdentity | undefined;

/**
 * This process's identity (read once). Empty when /proc is missing or shows
 * another PID namespace than ours (`unshare -p` without a fresh /proc mount:
 * /proc/self then describes our pid in the outer namespace, and pids we would
 * look up there are not the ones we record).
 */
export function selfIdentity(): ProcessIdentity {
  if (self !== undefined) return self;
  self = {};
  try {
    const stat = readProcStat('self');
    if (stat === undefined || stat.pid !== process.pid) return self;
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const pidNs = readlinkSync('/proc/self/ns/pid');
    if (bootId !== '' && pidNs !== '') self = { bootId, pidNs, startTime: stat.startTime };
  } catch {
    // no /proc (not Linux, or hidden): no identity, holders are judged by their lease only
  }
  return self;
}

/**
 * Why `holder` is provably gone, or false when it may be alive or cannot be
 * checked from here. Never true for a record without boot id and PID namespace.
 */
export function holderGone(holder: Holder, thisHost: string = hostname()): false | string {
  const me = selfIdentity();
  const pid = holder.pid;
  if (holder.host !== thisHost || pid === null || !Number.isSafeInteger(pid) || pid <= 0) return false;
  if (me.bootId === undefined || me.pidNs === undefined) return false;
  if (holder.bootId !== me.bootId || holder.pidNs !== me.pidNs) return false;
  if (!processAlive(pid)) return `process ${pid} on this host (${thisHost}) is gone`;
  if (holder.startTime === undefined) return false;
  const now = readProcStat(String(pid));
  // exited between the two looks
  if (now === undefined) return processAlive(pid) ? false : `process ${pid} on this host (${thisHost}) is gone`;
  if (now.startTime !== holder.startTime) {
    return (
      `pid ${pid} on this host (${thisHost}) now belongs to another process (started at tick ` +
      `${now.startTime}, the holder at ${holder.startTime})`
    );
  }
  return false;
}

/** The pid and start time in /proc/<which>/stat, or undefined when it cannot be read. */
function readProcStat(which: string): { pid: number; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${which}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state): field 22 (starttime) is rest[19]
  const startTime = rest[19];
  const pid = Number(text.slice(0, text.indexOf(' ')));
  if (startTime === undefined || !/^\d+$/.test(startTime) || !Number.isSafeInteger(pid)) return undefined;
  return { pid, startTime };
}
