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
  fsyncDir,
  isTempName,
  removeDurable,
  writeFileAtomic,
  writeFileExclusive,
  type FileBytes,
  type FileWriter,
} from '../fs/durable.js';
import type {
  Backend,
  ByteRange,
  Bytes,
  ObjectHandle,
  ObjectInfo,
  ObjectReader,
  ObjectType,
  TemporaryFile,
} from './backend.js';
import {
  beyondEnd,
  checkHandle,
  checkRange,
  isObjectName,
  LATER_TYPES,
  OBJECT_TYPES,
  temporaryPathProblem,
} from './backend.js';

const DIR_MODE = 0o700;

export class LocalBackend implements Backend {
  readonly location: string;
  private readonly dir: string;

  /** `dir` MUST be absolute (openBackend resolves relative paths). */
  constructor(dir: string) {
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
      read: async (range) => {
        checkRange(path, range);
        if (closing !== undefined)
          throw new FoleBackupError('INTERNAL', `read ${path}: the reader is closed`, { path });
        try {
          return await readRange(handle, path, range, size);
        } catch (err) {
          throw fsError('read', path, err);
        }
      },
      // FileHandle.close waits for the reads under way
      close: () => (closing ??= handle.close().catch(() => undefined)),
    };
  }

  async stat(h: ObjectHandle): Promise<ObjectInfo> {
    checkHandle(h);
    const path = this.pathOf(h);
    try {
      const st = await stat(path);
      return { name: h.type === 'config' ? 'config' : h.name, size: st.size, mtimeMs: st.mtimeMs };
    } catch (err) {
      throw fsError('read', path, err);
    }
  }

  /** Complete objects only: temp files, foreign files and misplaced names are skipped. */
  async *list(type: ObjectType): AsyncIterable<ObjectInfo> {
    if (type === 'config') {
      if (await this.isRepository()) yield await this.stat({ type, name: 'config' });
      return;
    }
    const typeDir = join(this.dir, type);
    if (type !== 'data') {
      yield* listFiles(typeDir, (name) => isValidName(type, name));
      return;
    }
    // Walk whatever prefix folders exist (normally data/00..ff); a name counts only
    // if it sits in the folder load() would look in.
    for (const prefix of await readdirOrEmpty(typeDir)) {
      if (!prefix.isDirectory() || isTempName(prefix.name)) continue;
      const accept = (name: string): boolean => isValidName(type, name) && name.slice(0, 2) === prefix.name;
      yield* listFiles(join(typeDir, prefix.name), accept);
    }
  }

  /** Temp files in the repository directory, its type folders and data/<xx>: every folder save() writes into. */
  async *listTemporary(): AsyncIterable<TemporaryFile> {
    const folders = ['', ...OBJECT_TYPES.filter((t) => t !== 'config')];
    for (const entry of await readdirOrEmpty(join(this.dir, 'data'))) {
      if (entry.isDirectory() && !isTempName(entry.name)) folders.push(`data/${entry.name}`);
    }
    for (const folder of folders) {
      for (const entry of await readdirOrEmpty(join(this.dir, folder))) {
        if (!entry.isFile() || !isTempName(entry.name)) continue;
        const path = folder === '' ? entry.name : `${folder}/${entry.name}`;
        try {
          const st = await lstat(join(this.dir, path));
          yield { path, size: st.size, mtimeMs: st.mtimeMs };
        } catch (err) {
          // its writer renamed or removed it meanwhile
          if (errnoCode(err) !== 'ENOENT') throw fsError('list', join(this.dir, path), err);
        }
      }
    }
  }

  async removeTemporary(t: TemporaryFile): Promise<void> {
    const problem = temporaryPathProblem(t.path);
    if (problem !== undefined) {
      throw new FoleBackupError('INTERNAL', `remove temporary file ${JSON.stringify(t.path)}: ${problem}`);
    }
    await removeDurable(join(this.dir, ...t.path.split('/')));
  }

  async remove(h: ObjectHandle): Promise<void> {
    checkHandle(h);
    await removeDurable(this.pathOf(h));
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  private pathOf(h: ObjectHandle): string {
    switch (h.type) {
      case 'config':
        return join(this.dir, 'config');
      case 'data':
        return join(this.dir, 'data', h.name.slice(0, 2), h.name);
      default:
        return join(this.dir, h.type, h.name);
    }
  }

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
async function readRange(fh: FileHandle, path: string, range: ByteRange, size: number): Promise<Buffer> {
  if (range.offset + range.length > size) throw beyondEnd(path, range, size);
  const buf = Buffer.allocUnsafeSlow(range.length);
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

function isValidName(type: ObjectType, name: string): boolean {
  return !isTempName(name) && isObjectName(type, name);
}

async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw fsError('list', dir, err);
  }
}

async function* listFiles(dir: string, accept: (name: string) => boolean): AsyncIterable<ObjectInfo> {
  for (const entry of await readdirOrEmpty(dir)) {
    if (!entry.isFile() || !accept(entry.name)) continue;
    const path = join(dir, entry.name);
    let size: number;
    let mtimeMs: number;
    try {
      ({ size, mtimeMs } = await stat(path));
    } catch (err) {
      // Removed between readdir and stat: it is simply no longer there.
      if (errnoCode(err) === 'ENOENT') continue;
      throw fsError('list', path, err);
    }
    yield { name: entry.name, size, mtimeMs };
  }
}
