/**
 * Make everything written under `path` durable with ONE syncfs(2) of its
 * filesystem (coreutils `sync -f`), instead of an fsync per file: a restore of
 * 100k files fsynced one by one spends most of its time waiting for the disk.
 * Node has no syncfs binding; without `sync -f`, every filesystem is synced.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { FoleBackupError } from '../errors.js';

export function syncFilesystem(path: string): void {
  const r = spawnSync('sync', ['-f', path], { stdio: 'ignore' });
  if (r.status === 0) return;
  const all = spawnSync('sync', [], { stdio: 'ignore' });
  if (all.status !== 0) {
    throw new FoleBackupError('WRITE_ERROR', `sync ${path}: could not flush the filesystem to disk`, {
      path,
      hint: 'coreutils `sync` is needed to make a restore durable; install coreutils',
    });
  }
}

/**
 * Writes dirty data back while a long write is still going on: after every
 * `everyBytes` written (counted by the caller through wrote()), the filesystem
 * is synced in the background unless a sync is still running. The final
 * syncFilesystem then finds little left to write instead of everything at
 * once. A hint for speed, never for durability: a background sync's result is
 * ignored, and the caller still calls syncFilesystem.
 *
 * The syncs are run by one small shell started up front (`sync -f` per line
 * it reads), not spawned from this process each time: a spawn forks this
 * process, and every page it writes afterwards then costs a copy-on-write
 * fault — with hundreds of MB in flight that undid the gain.
 */
export class BackgroundSync {
  private pending = 0;
  private busy = false;
  private readonly shell: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(
    path: string,
    private readonly everyBytes: number,
  ) {
    this.shell = spawn('sh', ['-c', 'while read -r _; do sync -f "$1" >/dev/null 2>&1; echo; done', 'sh', path], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.exited = new Promise((resolve) => {
      this.shell.once('close', () => resolve());
      this.shell.once('error', () => resolve());
    });
    this.shell.stdin?.on('error', () => undefined);
    this.shell.stdout?.on('data', () => {
      this.busy = false;
    });
  }

  /** Count `n` bytes written under the path. */
  wrote(n: number): void {
    this.pending += n;
    if (this.busy || this.pending < this.everyBytes || this.shell.stdin === null || this.shell.stdin.destroyed) return;
    this.pending = 0;
    this.busy = true;
    this.shell.stdin.write('\n');
  }

  /** Start no more; wait for a sync still running (the shell does not outlive the caller). */
  async stop(): Promise<void> {
    this.shell.stdin?.end();
    await this.exited;
  }
}
