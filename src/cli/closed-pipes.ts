/**
 * A reader that goes away (`fole-backup backup 2>&1 | head`, `manifest latest
 * | head`) closes our pipe, and writing to it then fails with EPIPE. What that
 * means depends on the stream and the command:
 * - stderr (phases, progress, warnings): the command goes on without them;
 * - stdout of a command that changes something (backup, restore, prune, …): it
 *   finishes — locks released, nothing left half-done — and exits with its own
 *   status; its result simply has no reader;
 * - stdout of a command that only prints a long document (`manifest`, which
 *   opts in with exitWhenStdoutCloses): its reader has what it wanted, so it
 *   stops at once.
 * Any other write error is still thrown.
 */
let exitOnClosedStdout = false;

/** For a read-only command whose whole job is its stdout: a closed stdout ends it (status so far). */
export function exitWhenStdoutCloses(): void {
  exitOnClosedStdout = true;
}

function readerGone(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED';
}

export function handleClosedPipes(): void {
  process.stderr.on('error', (err: NodeJS.ErrnoException) => {
    if (!readerGone(err)) throw err;
  });
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (!readerGone(err)) throw err;
    if (exitOnClosedStdout) process.exit(process.exitCode ?? 0);
  });
}
