/**
 * The private directory the scratch copies of a verification's databases go
 * into: made when the first database needs it, removed with everything in it
 * when the verification ends.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scratchError } from './assembly.js';

const DB_SCRATCH_PREFIX = 'fole-verify-';

export class ScratchDir {
  private dir: Promise<string> | undefined;
  private files = 0;

  /** `parent`: where the directory is made (default: the OS temp dir). */
  constructor(private readonly parent: string = tmpdir()) {}

  /** A path for a new scratch file; the directory is made by the first call (a failure is tried again by the next). */
  async file(): Promise<string> {
    return join(await this.made(), `db-${++this.files}.sqlite`);
  }

  /** Remove the directory and what is in it, if it was made. */
  async remove(): Promise<void> {
    const dir = await this.dir?.catch(() => undefined);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }

  private made(): Promise<string> {
    this.dir ??= (async () => {
      try {
        // mkdtemp makes it 0700: nobody else reads the decrypted copies
        return await mkdtemp(join(this.parent, DB_SCRATCH_PREFIX));
      } catch (err) {
        this.dir = undefined;
        throw scratchError('create', join(this.parent, `${DB_SCRATCH_PREFIX}*`), err);
      }
    })();
    return this.dir;
  }
}
