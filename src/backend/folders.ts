/**
 * A repository kept as folders and files — a local directory, a folder on an SSH server — laid out the same
 * way, and walked the same way: which path an object has, which files of a folder are objects, where
 * interrupted saves leave temporary files. The backends give the few filesystem calls; the rules live here
 * once, so the layouts cannot drift apart.
 *
 *   <root>/config
 *   <root>/<type>/<name>                     (keys, index, snapshots, locks, …)
 *   <root>/data/<first two chars of name>/<name>
 */
import { FoleBackupError } from '../errors.js';
import { isTempName } from '../fs/durable.js';
import type { ObjectHandle, ObjectInfo, ObjectType, TemporaryFile } from './backend.js';
import { checkHandle, isObjectName, OBJECT_TYPES, temporaryPathProblem } from './backend.js';

/** A file's size and last modification (ms since the epoch). */
export interface FileFacts {
  size: number;
  mtimeMs: number;
}

/** One entry of a folder: its name, what it is, and its size and time where the listing carries them. */
export interface FolderEntry {
  name: string;
  kind: 'file' | 'dir' | 'other';
  size?: number;
  mtimeMs?: number;
}

/** The filesystem calls a folder-shaped backend gives the walks. */
export interface FolderAccess {
  /** The repository's folder. */
  readonly root: string;
  /** `root` and `parts` joined with the backend's separator. */
  join(...parts: string[]): string;
  /** The entries of a folder; [] when it does not exist. */
  readdir(dir: string): Promise<FolderEntry[]>;
  /** Size and time of a file, or undefined when it is gone (removed between the listing and now). */
  stat(path: string): Promise<FileFacts | undefined>;
}

/** Where an object lives, as path parts under the repository's folder. */
function objectParts(h: ObjectHandle): string[] {
  if (h.type === 'config') return ['config'];
  if (h.type === 'data') return ['data', h.name.slice(0, 2), h.name];
  return [h.type, h.name];
}

/** A listed file as an object: the size and time the listing gave, else from a stat (undefined: it is gone). */
async function described(
  f: FolderAccess,
  dir: string,
  e: FolderEntry,
): Promise<{ name: string; size: number; mtimeMs: number } | undefined> {
  if (e.size !== undefined && e.mtimeMs !== undefined) return { name: e.name, size: e.size, mtimeMs: e.mtimeMs };
  const st = await f.stat(f.join(dir, e.name));
  return st === undefined ? undefined : { name: e.name, size: st.size, mtimeMs: st.mtimeMs };
}

/**
 * The complete objects of a type (not config): temporary files, foreign files and misplaced names are
 * skipped. Packs are looked for in whatever data/<xx> folders exist, and count only in the folder a load
 * would look in.
 */
async function* listFolderObjects(f: FolderAccess, type: Exclude<ObjectType, 'config'>): AsyncIterable<ObjectInfo> {
  const typeDir = f.join(f.root, type);
  const folders: { dir: string; prefix?: string }[] = [];
  if (type !== 'data') folders.push({ dir: typeDir });
  else {
    for (const e of await f.readdir(typeDir)) {
      if (e.kind === 'dir' && !isTempName(e.name)) folders.push({ dir: f.join(typeDir, e.name), prefix: e.name });
    }
  }
  for (const { dir, prefix } of folders) {
    for (const e of await f.readdir(dir)) {
      if (e.kind !== 'file' || isTempName(e.name) || !isObjectName(type, e.name)) continue;
      if (prefix !== undefined && e.name.slice(0, 2) !== prefix) continue;
      const info = await described(f, dir, e);
      if (info !== undefined) yield info;
    }
  }
}

/** Temporary files in the repository's folder, its type folders and data/<xx>: every folder a save writes in. */
async function* listFolderTemporary(f: FolderAccess): AsyncIterable<TemporaryFile> {
  const folders = ['', ...OBJECT_TYPES.filter((t) => t !== 'config')];
  for (const e of await f.readdir(f.join(f.root, 'data'))) {
    if (e.kind === 'dir' && !isTempName(e.name)) folders.push(`data/${e.name}`);
  }
  for (const folder of folders) {
    const dir = folder === '' ? f.root : f.join(f.root, ...folder.split('/'));
    for (const e of await f.readdir(dir)) {
      if (e.kind !== 'file' || !isTempName(e.name)) continue;
      const info = await described(f, dir, e);
      if (info !== undefined) {
        yield { path: folder === '' ? e.name : `${folder}/${e.name}`, size: info.size, mtimeMs: info.mtimeMs };
      }
    }
  }
}

/** The path of a temporary file listFolderTemporary gave; INTERNAL for anything else (never an object). */
function temporaryFilePath(f: Pick<FolderAccess, 'root' | 'join'>, t: TemporaryFile): string {
  const problem = temporaryPathProblem(t.path);
  if (problem !== undefined) {
    throw new FoleBackupError('INTERNAL', `remove temporary file ${JSON.stringify(t.path)}: ${problem}`);
  }
  return f.join(f.root, ...t.path.split('/'));
}

/**
 * The Backend methods a folder-shaped backend answers the same way whatever the filesystem: stat, list,
 * listTemporary, removeTemporary, remove. A subclass gives the folder walk's calls and the file calls.
 */
export abstract class FolderBackend {
  /** The repository's folder as the walks see it. */
  protected abstract get folders(): FolderAccess;
  /** Size and time of a file; NOT_FOUND (or the backend's read error) when it cannot be read. */
  protected abstract statFile(path: string): Promise<FileFacts>;
  /** Remove a file; one already gone is not an error. */
  protected abstract removeFile(path: string): Promise<void>;
  abstract isRepository(): Promise<boolean>;

  protected pathOf(h: ObjectHandle): string {
    return this.folders.join(this.folders.root, ...objectParts(h));
  }

  async stat(h: ObjectHandle): Promise<ObjectInfo> {
    checkHandle(h);
    const st = await this.statFile(this.pathOf(h));
    return { name: h.type === 'config' ? 'config' : h.name, size: st.size, mtimeMs: st.mtimeMs };
  }

  /** Complete objects only: temp files, foreign files and misplaced names are skipped. */
  async *list(type: ObjectType): AsyncIterable<ObjectInfo> {
    if (type !== 'config') {
      yield* listFolderObjects(this.folders, type);
      return;
    }
    if (await this.isRepository()) yield await this.stat({ type, name: 'config' });
  }

  /** Temp files in the repository's folder, its type folders and data/<xx>: every folder a save writes into. */
  listTemporary(): AsyncIterable<TemporaryFile> {
    return listFolderTemporary(this.folders);
  }

  async removeTemporary(t: TemporaryFile): Promise<void> {
    await this.removeFile(temporaryFilePath(this.folders, t));
  }

  async remove(h: ObjectHandle): Promise<void> {
    checkHandle(h);
    await this.removeFile(this.pathOf(h));
  }
}
