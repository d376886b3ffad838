/**
 * Reading a password from a file (--password-file, FOLE_BACKUP_PASSWORD_FILE,
 * key add --new-password-file). Whatever the path names — a regular file, an
 * endless device such as /dev/zero, a directory, a FIFO nobody writes to — at
 * most MAX_PASSWORD_FILE_BYTES + 1 bytes are read and the wait is bounded, so a
 * wrong path is a usage error that says what it is, never half a gigabyte of
 * memory or a hang.
 *
 * The file is opened non-blocking: opening a FIFO blocks until a writer comes,
 * and a shell's `<(command)` (a pipe whose writer may not have written yet) is
 * a legitimate way to pass a secret, so a pipe is polled for up to `pipeWaitMs`.
 */
import { constants } from 'node:fs';
import { open, readlink, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, fsError } from '../errors.js';
import { UsageError } from './output.js';

/** Far above any passphrase (a generated key file is 44 bytes), far below harm. */
export const MAX_PASSWORD_FILE_BYTES = 64 * 1024;

/** How long a pipe may keep us waiting for its first byte or its end. */
const DEFAULT_PIPE_WAIT_MS = 10_000;
const POLL_MS = 20;

const HINT = 'give a file that holds only the password (or a key file made by `--generate-key-file`)';

export interface ReadPasswordFileOptions {
  /** How long to wait for a pipe's writer (default 10 s). */
  pipeWaitMs?: number;
}

/** The password in `file`, without its final line break (LF or CRLF). */
export async function readPasswordFile(file: string, opts: ReadPasswordFileOptions = {}): Promise<string> {
  let fh: FileHandle;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw fsError('read', file, err);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new UsageError(`password file ${file} is a directory`, HINT);
    const pipe = st.isFIFO() || st.isSocket();
    const bytes = await readBounded(fh, file, pipe, opts.pipeWaitMs ?? DEFAULT_PIPE_WAIT_MS);
    const pw = bytes.toString('utf8').replace(/\r?\n$/, '');
    if (pw === '') throw new UsageError(`password file ${file} is empty`, HINT);
    return pw;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Whether an open pipe is an anonymous one (Linux names it `pipe:[inode]`), not a named FIFO. */
async function isAnonymousPipe(fh: FileHandle): Promise<boolean> {
  try {
    return (await readlink(`/proc/self/fd/${fh.fd}`)).startsWith('pipe:');
  } catch {
    return false;
  }
}

/**
 * Up to MAX_PASSWORD_FILE_BYTES of `fh` (a usage error if there is more). A
 * pipe with nothing in it yet (EAGAIN, or end-of-file before any writer came)
 * is polled until `waitMs` has passed.
 */
async function readBounded(fh: FileHandle, file: string, pipe: boolean, waitMs: number): Promise<Buffer> {
  const buf = Buffer.alloc(MAX_PASSWORD_FILE_BYTES + 1);
  const deadline = Date.now() + waitMs;
  let got = 0;
  let anonymous: boolean | undefined;
  for (;;) {
    let n: number;
    try {
      n = (await fh.read(buf, got, buf.length - got, pipe ? null : got)).bytesRead;
    } catch (err) {
      if (!pipe || errnoCode(err) !== 'EAGAIN') throw fsError('read', file, err);
      n = -1;
    }
    if (n > 0) {
      got += n;
      if (got > MAX_PASSWORD_FILE_BYTES) {
        throw new UsageError(
          `password file ${file} is longer than ${MAX_PASSWORD_FILE_BYTES / 1024} KiB: that is not a password`,
          HINT,
        );
      }
      continue;
    }
    // end of file; for a named FIFO only once something came (before that, no writer may
    // have opened it yet); an anonymous pipe (<(command)) had its writer from the start,
    // so its end of file is final: the command wrote nothing
    if (n === 0 && pipe && got === 0) anonymous ??= await isAnonymousPipe(fh);
    if (n === 0 && (!pipe || got > 0 || anonymous === true)) return buf.subarray(0, got);
    if (Date.now() >= deadline) {
      throw new UsageError(
        got > 0
          ? `password file ${file} is a pipe whose writer did not finish within ${Math.round(waitMs / 1000)} s`
          : `password file ${file} is a FIFO nothing wrote to within ${Math.round(waitMs / 1000)} s`,
        HINT,
      );
    }
    await sleep(POLL_MS);
  }
}
