/**
 * A file time in milliseconds (as a backup records it) in the form Node's utimes and futimes take: seconds. libuv
 * keeps only whole microseconds of what it is given, and cuts the rest off (`uv__fs_to_timespec`), so `ms / 1000`
 * came back up to 1 µs early, more than a double of today's milliseconds is off by (0.24 µs). Half a microsecond
 * added makes the cut land on the nearest microsecond: a restored time is then within 0.5 µs of the recorded one.
 */
export function utimeSeconds(ms: number): number {
  return (Math.round(ms * 1000) + 0.5) / 1e6;
}
