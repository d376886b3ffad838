/**
 * A repository in a local directory (or anything mounted as one: NFS, USB disk).
 *
 *   <dir>/config
 *   <dir>/keys/<name>   <dir>/index/<name>   <dir>/snapshots/<name>   <dir>/locks/<name>   <dir>/settings/<name>
 *   <dir>/data/<first two chars of name>/<name>
 *
 * Pack files are spread over 256 folders (data/00..data/ff) so no single folder
 * grows huge. Every write goes through src/fs/durable.ts.
 */

import type { Dirent } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { chmod, lstat, mkdir, open, readdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { errnoCode, FoleBackupError, fsError } from '../errors.js';
import {
  createDraftFile,
  fsyncDir,
  removeDurable,
  writeFileAtomic,
  writeFileExclusive,
  type FileBytes,
  type FileWriter,
} from '../fs/durable.js';
import type { Backend, ByteRange, Bytes, ObjectDraft, ObjectHandle, ObjectReader, ObjectType } from './backend.js';
import { beyondEnd, checkHandle, checkRange, LATER_TYPES, OBJECT_TYPES } from './backend.js';
import { FolderBackend, type FileFacts, type FolderAccess, type FolderEntry } from './folders.js';

const DIR_MODE = 0o700;

export class LocalBackend extends FolderBackend implements Backend {
  readonly location: string;
  private readonly dir: string;

  /** `dir` MUST be absolute (openBackend resolves relative paths). */
  constructor(dir: string) {
    super();
    if (!isAbsolute(dir)) {
      throw new FoleBackupError('USAGE', `local backend: path ${JSON.stringify(dir)} is not absolute`);
    }
    this.dir = resolve(dir);
    this.location = `local:${this.dir}`;
  }

  /**
   * Create the repository directory and its folders. Only the final directory is
   * created: a missing parent is an error, so a typo cannot scatter folders around.
   * An existing empty directory is accepted.
   */
  async create(): Promise<void> {
    await this.makeRepoDir();
    for (const type of OBJECT_TYPES) {
      if (type !== 'config') await mkdirFresh(join(this.dir, type));
    }
    const data = join(this.dir, 'data');
    const prefixes = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
    await Promise.all(prefixes.map((p) => mkdirFresh(join(data, p))));
    await fsyncDir(data);
    await fsyncDir(this.dir);
    await fsyncDir(dirname(this.dir));
  }

  async isRepository(): Promise<boolean> {
    const path = join(this.dir, 'config');
    try {
      return (await stat(path)).isFile();
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw fsError('read', path, err);
    }
  }

  save(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.write(h, data, writeFileAtomic);
  }

  saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.write(h, data, writeFileExclusive);
  }

  /**
   * Store an object whose bytes arrive as a stream (an upload to serve-repo), without holding it in memory:
   * like save, or like saveNew when `createOnly`. If `source` throws, nothing is stored and its error is thrown.
   */
  saveFrom(h: ObjectHandle, source: AsyncIterable<Uint8Array>, opts: { createOnly: boolean }): Promise<void> {
    return this.write(h, source, opts.createOnly ? writeFileExclusive : writeFileAtomic);
  }

  /** A draft in the repository's folder (which always exists), renamed into its type's folder when committed. */
  createDraft(type: Exclude<ObjectType, 'config'>): ObjectDraft {
    const draft = createDraftFile(this.dir);
    return {
      append: (parts) => draft.append(parts),
      commit: async (h) => {
        try {
          if (h.type !== type) throw new FoleBackupError('INTERNAL', `a draft of ${type} committed as ${h.type}`);
          checkHandle(h);
          if (h.type === 'data' || LATER_TYPES.includes(h.type)) await this.ensurePrefixDir(dirname(this.pathOf(h)));
        } catch (err) {
          await draft.discard();
          throw err;
        }
        await draft.publish(this.pathOf(h));
      },
      discard: () => draft.discard(),
    };
  }

  private async write(h: ObjectHandle, data: FileBytes, how: FileWriter): Promise<void> {
    checkHandle(h);
    const path = this.pathOf(h);
    // data/<xx> folders, and type folders a repository made by an older build may lack
    if (h.type === 'data' || LATER_TYPES.includes(h.type)) await this.ensurePrefixDir(dirname(path));
    await how(path, data, { mode: h.type === 'config' ? 0o644 : 0o600 });
  }

  async load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    checkHandle(h);
    const path = this.pathOf(h);
    if (range !== undefined) checkRange(path, range);
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'r');
      const { size } = await fh.stat();
      // a whole object is read into one buffer of its size, not in pieces then joined
      // (readFile's way: twice the allocation, for packs 16 MiB of garbage each)
      return await readRange(fh, path, range ?? { offset: 0, length: size }, size);
    } catch (err) {
      throw fsError('read', path, err);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  async openReader(h: ObjectHandle): Promise<ObjectReader> {
    checkHandle(h);
    const path = this.pathOf(h);
    let fh: FileHandle | undefined;
    let size: number;
    try {
      fh = await open(path, 'r');
      size = (await fh.stat()).size;
    } catch (err) {
      await fh?.close().catch(() => undefined);
      throw fsError('read', path, err);
    }
    const handle = fh;
    let closing: Promise<void> | undefined;
    return {
      size,
      read: async (range, into) => {
        checkRange(path, range);
        if (closing !== undefined)
          throw new FoleBackupError('INTERNAL', `read ${path}: the reader is closed`, { path });
        try {
          return await readRange(handle, path, range, size, into);
        } catch (err) {
          throw fsError('read', path, err);
        }
      },
      // FileHandle.close waits for the reads under way
      close: () => (closing ??= handle.close().catch(() => undefined)),
    };
  }

  protected async statFile(path: string): Promise<FileFacts> {
    try {
      const st = await stat(path);
      return { size: st.size, mtimeMs: st.mtimeMs };
    } catch (err) {
      throw fsError('read', path, err);
    }
  }

  protected removeFile(path: string): Promise<void> {
    return removeDurable(path);
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  /** The directory as the shared walks see it (folders.ts): lstat, so a link is never followed. */
  protected get folders(): FolderAccess {
    // made once: pathOf reads it on every save and load
    this.folderAccess ??= {
      root: this.dir,
      join,
      readdir: async (dir): Promise<FolderEntry[]> =>
        (await readdirOrEmpty(dir)).map((e) => ({
          name: e.name,
          kind: e.isFile() ? 'file' : e.isDirectory() ? 'dir' : 'other',
        })),
      stat: async (path: string) => {
        try {
          const st = await lstat(path);
          return { size: st.size, mtimeMs: st.mtimeMs };
        } catch (err) {
          // removed between the listing and now: it is simply no longer there
          if (errnoCode(err) === 'ENOENT') return undefined;
          throw fsError('list', path, err);
        }
      },
    };
    return this.folderAccess;
  }

  private folderAccess: FolderAccess | undefined;

  private async makeRepoDir(): Promise<void> {
    try {
      await mkdir(this.dir, { mode: DIR_MODE });
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') {
        const parent = dirname(this.dir);
        throw new FoleBackupError(
          'NOT_FOUND',
          `create repository ${this.dir}: parent directory ${parent} does not exist`,
          {
            path: parent,
            cause: err,
            hint: `create ${parent} first (only the final directory is created), or check the path for typos`,
          },
        );
      }
      if (code !== 'EEXIST') throw fsError('create', this.dir, err);
    }
    // It exists: acceptable only as an empty directory.
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (err) {
      if (errnoCode(err) !== 'ENOTDIR') throw fsError('create', this.dir, err);
      throw notEmpty(this.dir, 'exists and is not a directory');
    }
    if (entries.length > 0) throw notEmpty(this.dir, 'directory is not empty');
    // An existing directory keeps the mode it was made with (often 0777 or 0755): anyone
    // else allowed in could read the config or delete and replace the repository's files.
    try {
      await chmod(this.dir, DIR_MODE);
    } catch (err) {
      throw new FoleBackupError(
        'WRITE_ERROR',
        `create repository ${this.dir}: cannot make the directory private (mode 0700): ` +
          `${errnoCode(err) ?? String(err)}`,
        {
          path: this.dir,
          cause: err,
          hint:
            'make the directory owned by the user who runs fole-backup, or give a path that does not exist ' +
            'yet so init creates it',
        },
      );
    }
  }

  private async ensurePrefixDir(dir: string): Promise<void> {
    try {
      await mkdir(dir, { mode: DIR_MODE });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return;
      throw fsError('write', dir, err);
    }
    await fsyncDir(dirname(dir));
  }
}

function notEmpty(dir: string, why: string): FoleBackupError {
  return new FoleBackupError('REPO_NOT_EMPTY', `create repository ${dir}: ${why}`, {
    path: dir,
    hint: 'choose an empty directory or a new path',
  });
}

/**
 * `range` of an open file of `size` bytes, into a buffer of its own: not
 * zero-filled (every byte is read into, or the read fails), never a slice of
 * Node's shared pool (callers may transfer it to a worker).
 */
async function readRange(
  fh: FileHandle,
  path: string,
  range: ByteRange,
  size: number,
  into?: Uint8Array,
): Promise<Buffer> {
  if (range.offset + range.length > size) throw beyondEnd(path, range, size);
  // a read of a local file settles only once the kernel is done with the buffer: the caller's may be used
  const buf =
    into !== undefined && into.byteLength >= range.length
      ? Buffer.from(into.buffer, into.byteOffset, range.length)
      : Buffer.allocUnsafeSlow(range.length);
  let done = 0;
  while (done < range.length) {
    const { bytesRead } = await fh.read(buf, done, range.length - done, range.offset + done);
    // The file shrank since it was opened: same symptom, same error.
    if (bytesRead === 0) throw beyondEnd(path, range, range.offset + done);
    done += bytesRead;
  }
  return buf;
}

function mkdirFresh(path: string): Promise<void> {
  return mkdir(path, { mode: DIR_MODE }).then(
    () => undefined,
    (err: unknown) => {
      throw fsError('create', path, err);
    },
  );
}

async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw fsError('list', dir, err);
  }
}
