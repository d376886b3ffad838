/**
 * A virtual machine's balloon can report the guest's free pages to the host ("free page reporting"), which then
 * takes them back. The next touch of such a page is a fault the host serves, and the guest counts it as system
 * CPU of whichever process touched the page first. The bench drops the page cache before every step, which frees
 * gigabytes, so every step's first writes into the page cache paid for those faults, by chance.
 *
 * Measured on the bench machine (900 MB written and fsynced by one process, caches dropped before each run):
 * 0.31–2.68 s of system CPU with reporting on; 0.26–0.30 s with it off and the memory touched once. On `huge-db`
 * fole-backup's full backup had 4.4–5.2 s of system CPU, and 2.0–2.2 s without the faults.
 *
 * So, where the machine has it and the bench may change it, reporting is turned off for the bench (the order
 * above the largest the kernel has, so no free block qualifies), the free memory is touched once by a child
 * process so it is backed again, and the old setting is put back when the bench ends. Elsewhere nothing changes,
 * and the report says which it was.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { run } from './measure.js';
import { memoryAvailable } from '../../src/host/memory-available.js';

const ORDER = '/sys/module/page_reporting/parameters/page_reporting_order';
/** Left free while the memory is touched, so nothing else on the machine is pushed out. */
const RESERVE_BYTES = 2 * 1024 ** 3;
const PIECE_BYTES = 256 * 1024 ** 2;

export interface HostMemory {
  /** 'held': reporting off and memory touched for the bench; 'absent': no reporting here; 'not-permitted'. */
  state: 'held' | 'absent' | 'not-permitted';
  why: string;
  /** Put the machine's setting back (idempotent). */
  release(): void;
}

const nothing = (): void => undefined;

/** The largest order of a free block the kernel keeps: /proc/buddyinfo lists orders 0..max per zone. */
function maxOrder(): number {
  const line = readFileSync('/proc/buddyinfo', 'utf8').split('\n')[0] ?? '';
  const counts = line
    .replace(/^.*zone\s+\S+/, '')
    .trim()
    .split(/\s+/);
  return counts.length - 1;
}

/** Touch `bytes` of memory in a child process, a page at a time, and let it go. */
function touch(bytes: number): void {
  const pieces = Math.floor(bytes / PIECE_BYTES);
  const code = `const k=[];for(let i=0;i<${pieces};i++)k.push(Buffer.alloc(${PIECE_BYTES},1));`;
  run(process.execPath, ['-e', code]);
}

/** Turn the host's free page reporting off for the bench and touch the free memory once (see the module's note). */
export function holdHostMemory(): HostMemory {
  if (!existsSync(ORDER)) return { state: 'absent', why: 'no free page reporting on this machine', release: nothing };
  const old = readFileSync(ORDER, 'utf8').trim();
  const off = String(maxOrder() + 1);
  try {
    writeFileSync(ORDER, off);
  } catch (err) {
    return {
      state: 'not-permitted',
      why:
        `free page reporting is on and may not be changed (${(err as NodeJS.ErrnoException).code ?? err}): ` +
        'system CPU will vary with the host',
      release: nothing,
    };
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    writeFileSync(ORDER, old);
  };
  process.once('exit', release);
  // a bench stopped with ^C or kill must not leave reporting off until the next boot
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      release();
      process.kill(process.pid, sig);
    });
  const bytes = Math.max(0, memoryAvailable() - RESERVE_BYTES);
  touch(bytes);
  return {
    state: 'held',
    why:
      `free page reporting off (page_reporting_order ${old} → ${off}) and ${(bytes / 1024 ** 3).toFixed(1)} GiB ` +
      'touched once, so no step pays the host for memory it takes back',
    release,
  };
}
