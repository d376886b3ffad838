/**
 * The FOLE version a STORAGE_ROOT records about itself: the `foleVersion`
 * field of `config/server.json`. A backup uses it when no version is given
 * (--fole-version, FOLE_VERSION), so a scheduled backup cannot record a
 * version typed by hand that is not the server's.
 *
 * The file is input from the tree being backed up: it is read only when it is
 * a regular file (never through a symlink), at most MAX_CONFIG_BYTES, and its
 * value is checked by the same rule as a version given on the command line.
 */
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, FoleBackupError } from '../errors.js';
import { foleVersionProblem } from '../snapshot/fields.js';
import { pathInsideRoot } from '../fs/inside-root.js';

/** Where FOLE records its version, relative to the STORAGE_ROOT. */
export const FOLE_VERSION_FILE = 'config/server.json';
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The version recorded in `root`, or undefined when the file or the field is
 * absent. A file that is there but unusable (not a regular file, too large,
 * not JSON, a field that is not a valid version) is a USAGE error naming it:
 * silently falling back would record a version nobody chose.
 */
export async function readRecordedFoleVersion(root: string): Promise<string | undefined> {
  const path = join(root, FOLE_VERSION_FILE);
  const bad = (why: string): FoleBackupError =>
    new FoleBackupError('USAGE', `${FOLE_VERSION_FILE} in the STORAGE_ROOT: ${why}`, {
      path,
      hint: 'fix the file, or give the version with --fole-version X.Y.Z (or FOLE_VERSION)',
    });
  // no symlink at any component (config/ included), as for FOLE's databases
  try {
    pathInsideRoot(root, FOLE_VERSION_FILE);
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return undefined;
    if (err instanceof FoleBackupError && err.code === 'UNSAFE_PATH')
      throw bad('reached through a symlink (never followed)');
    throw err;
  }
  let text: string;
  try {
    // O_NOFOLLOW: a symlink swapped in at the file since the check is refused by the kernel (ELOOP)
    const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw bad('not a regular file');
      if (st.size > MAX_CONFIG_BYTES)
        throw bad(`${st.size} bytes, larger than a configuration file can be (${MAX_CONFIG_BYTES})`);
      const buf = Buffer.alloc(st.size);
      const { bytesRead } = await fh.read(buf, 0, st.size, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof FoleBackupError) throw err;
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') throw bad('a symlink (never followed)');
    throw bad(`cannot be read (${code ?? String(err)})`);
  }
  let v: unknown;
  try {
    // editors on Windows may start the file with a byte-order mark, which JSON.parse refuses
    v = JSON.parse(text.startsWith('\uFEFF') ? text.slice(1) : text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('not a JSON object');
  const version = (v as Record<string, unknown>).foleVersion;
  if (version === undefined) return undefined;
  if (typeof version !== 'string') throw bad('foleVersion is not a string');
  const problem = foleVersionProblem(version);
  if (problem !== undefined)
    throw bad(`foleVersion ${JSON.stringify(version.slice(0, 60))} is not accepted: ${problem}`);
  return version;
}
