/**
 * Reading a password from a file (--password-file, key add --new-password-file):
 * at most a bound is read, whatever the file is, and anything that is not a
 * file holding a password is a usage error that says what it is.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_PASSWORD_FILE_BYTES, readPasswordFile } from './password-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fole-pwfile-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readPasswordFile', () => {
  it('returns the password without its final line break (LF or CRLF)', async () => {
    await writeFile(join(dir, 'lf'), 'secret one\n');
    await writeFile(join(dir, 'crlf'), 'secret two\r\n');
    await writeFile(join(dir, 'bare'), 'secret three');
    expect(await readPasswordFile(join(dir, 'lf'))).toBe('secret one');
    expect(await readPasswordFile(join(dir, 'crlf'))).toBe('secret two');
    expect(await readPasswordFile(join(dir, 'bare'))).toBe('secret three');
  });

  it('accepts a password of exactly the bound and refuses one byte more', async () => {
    await writeFile(join(dir, 'max'), 'x'.repeat(MAX_PASSWORD_FILE_BYTES));
    await writeFile(join(dir, 'over'), 'x'.repeat(MAX_PASSWORD_FILE_BYTES + 1));
    expect((await readPasswordFile(join(dir, 'max'))).length).toBe(MAX_PASSWORD_FILE_BYTES);
    await expect(readPasswordFile(join(dir, 'over'))).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/longer than 64 KiB/),
    });
  });

  it('refuses an endless device after reading no more than the bound', async () => {
    await expect(readPasswordFile('/dev/zero')).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/\/dev\/zero.*longer than 64 KiB/),
    });
  });

  it('says a directory is a directory', async () => {
    await expect(readPasswordFile(dir)).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/is a directory/),
    });
  });

  it('says an empty file is empty, and a missing one is not found', async () => {
    await writeFile(join(dir, 'empty'), '\n');
    await expect(readPasswordFile(join(dir, 'empty'))).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/is empty/),
    });
    await expect(readPasswordFile(join(dir, 'absent'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('does not hang on a FIFO nobody writes to', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await expect(readPasswordFile(fifo, { pipeWaitMs: 200 })).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/FIFO nothing wrote to/),
    });
  });

  it('says at once that an anonymous pipe whose command wrote nothing is empty (a failed `pass show`)', async () => {
    // bash gives <(true) as /dev/fd/N: an anonymous pipe whose writer has already gone. The
    // pipe wait is ten minutes: an answer at all (before execFileSync's timeout) is one at once
    const out = execFileSync(
      'bash',
      [
        '-c',
        `node --import tsx -e "import('${join(process.cwd(), 'src/cli/password-file.ts')}` +
          `').then((m) => m.readPasswordFile(process.argv[1], { pipeWaitMs: 600000 })).then(() => ` +
          `console.log('read'), (e) => console.log(e.message))" <(true)`,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(out).toMatch(/password file \/dev\/fd\/\d+ is empty/);
  });

  it("reads a pipe another process writes to (a shell's <(command))", async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `sleep 0.3; printf 'piped secret\\n' > "${fifo}"`], { stdio: 'ignore' });
    const writerDone = new Promise((r) => writer.on('close', r));
    // the writer opens the FIFO only after a while: the read waits for it
    const got = readPasswordFile(fifo, { pipeWaitMs: 5000 });
    expect(await got).toBe('piped secret');
    await writerDone;
  });
});
