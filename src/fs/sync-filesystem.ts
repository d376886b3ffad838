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
 * Writes dirty data back while what follows a long write only reads it: flush() syncs the filesystem in the
 * background, so the final syncFilesystem finds little left to write. A hint for speed, never for durability: a
 * background sync's result is ignored, and the caller still calls syncFilesystem.
 *
 * Once, not every so many bytes: a sync while files are still being written stalls their writers. Restoring a
 * 954 MB database, a `sync -f` every 128 MiB held both restore workers' writes for ~65 ms each time (the
 * filesystem's journal commits), and staging took 2.0 s instead of 1.3. The workers instead start each large
 * write on its way to the disk without waiting (native/write-back.c), and this one sync runs during the
 * read-backs and integrity checks that follow the last write. By hand, alternating, caches dropped: that restore
 * 3.69–4.47 s → 3.22–3.72 (5 pairs); `medium-dbs` (24 databases of 10–35 MiB, each written while others were
 * being synced) 2.52–2.70 → 2.67–2.82 s (6 pairs): its syncs had written closed files, which stalled nothing.
 *
 * The syncs are run by one small shell started up front (`sync -f` per line
 * it reads), not spawned from this process each time: a spawn forks this
 * process, and every page it writes afterwards then costs a copy-on-write
 * fault — with hundreds of MB in flight that undid the gain.
 */
export class BackgroundSync {
  private busy = false;
  /** flush() was asked while a sync ran: one more once it is done. */
  private again = false;
  private done = 0;
  private readonly shell: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(path: string) {
    this.shell = spawn('sh', ['-c', 'while read -r _; do sync -f "$1" >/dev/null 2>&1; echo; done', 'sh', path], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.exited = new Promise((resolve) => {
      this.shell.once('close', () => resolve());
      this.shell.once('error', () => resolve());
    });
    this.shell.stdin?.on('error', () => undefined);
    this.shell.stdout?.on('data', (d: Buffer) => {
      this.done += d.length;
      this.busy = false;
      if (this.again) this.flush();
    });
  }

  /** Sync what is written so far, in the background (after the sync under way, if one is). */
  flush(): void {
    this.again = this.busy;
    if (this.busy || this.shell.stdin === null || this.shell.stdin.destroyed) return;
    this.busy = true;
    this.shell.stdin.write('\n');
  }

  /** Background syncs finished so far. */
  get synced(): number {
    return this.done;
  }

  /** Start no more; wait for a sync still running (the shell does not outlive the caller). */
  async stop(): Promise<void> {
    this.shell.stdin?.end();
    await this.exited;
  }
}
