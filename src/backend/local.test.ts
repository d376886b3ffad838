import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeBackendConformance, expectCode, listAll, randomName } from '../../test/backend-conformance.js';
import { FoleBackupError } from '../errors.js';
import { FaultInjectingBackend } from './fault.js';
import { LocalBackend } from './local.js';
import { openBackend } from './open.js';

describeBackendConformance('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fole-local-'));
  return { backend: new LocalBackend(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

/** The FoleBackupError a synchronous call throws. */
function thrown(fn: () => unknown): FoleBackupError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FoleBackupError);
    return err as FoleBackupError;
  }
  throw new Error('expected a FoleBackupError, nothing was thrown');
}

/** Every file (not folder) under `dir`, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

describe('LocalBackend', () => {
  let tmp: string;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'fole-local-'));
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('creates the repository directory, its type folders and all 256 data folders', async () => {
    const repo = join(tmp, 'repo');
    await new LocalBackend(repo).create();
    expect((await readdir(repo)).sort()).toEqual([
      'approvals',
      'audit',
      'damage',
      'data',
      'index',
      'keys',
      'locks',
      'quarantine',
      'registry',
      'settings',
      'snapshots',
      'witness',
    ]);
    const data = await readdir(join(repo, 'data'));
    expect(data).toHaveLength(256);
    expect(data).toContain('00');
    expect(data).toContain('ff');
  });

  it('stores pack files under data/<first two characters of the name>', async () => {
    const backend = new LocalBackend(tmp);
    await backend.create();
    await backend.save({ type: 'data', name: 'ab12' }, Buffer.from('pack'));
    await backend.save({ type: 'keys', name: 'k' }, Buffer.from('key'));
    await backend.save({ type: 'config', name: 'ignored' }, Buffer.from('cfg'));
    expect((await filesUnder(tmp)).sort()).toEqual(['config', join('data', 'ab', 'ab12'), join('keys', 'k')]);
    expect((await stat(join(tmp, 'keys', 'k'))).mode & 0o077).toBe(0);
  });

  it('refuses to create inside a missing parent directory and says to create it', async () => {
    const parent = join(tmp, 'missing');
    const err = await expectCode(new LocalBackend(join(parent, 'repo')).create(), 'NOT_FOUND');
    expect(err.message).toContain(`parent directory ${parent} does not exist`);
    expect(err.hint).toContain(`create ${parent} first`);
    await expect(stat(parent)).rejects.toThrow();
  });

  it('makes an existing empty directory private (0700), like every folder it creates', async () => {
    const repo = join(tmp, 'shared');
    await mkdir(repo);
    await chmod(repo, 0o777);
    await new LocalBackend(repo).create();
    const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
    expect(await modeOf(repo)).toBe(0o700);
    for (const sub of ['data', 'data/00', 'data/ff', 'index', 'keys', 'locks', 'settings', 'snapshots'])
      expect(await modeOf(join(repo, sub))).toBe(0o700);
  });

  it('lists leftover temp files in every folder it writes into, and removes only those', async () => {
    const backend = new LocalBackend(tmp);
    await backend.create();
    await backend.save({ type: 'keys', name: 'k' }, Buffer.from('key'));
    for (const rel of ['.tmp-a', 'index/.tmp-b', 'data/3f/.tmp-c']) await writeFile(join(tmp, rel), 'partial');
    const temps = [];
    for await (const t of backend.listTemporary()) temps.push(t);
    expect(temps.map((t) => t.path).sort()).toEqual(['.tmp-a', 'data/3f/.tmp-c', 'index/.tmp-b']);
    expect(temps.every((t) => t.size === 7 && t.mtimeMs > 0)).toBe(true);
    for (const path of ['config', 'keys/k', '../.tmp-a', 'data/../.tmp-a', 'data/3f/x/.tmp-c', 'nope/.tmp-b']) {
      await expectCode(backend.removeTemporary({ path, size: 0, mtimeMs: 0 }), 'INTERNAL');
    }
    for (const t of temps) await backend.removeTemporary(t);
    await backend.removeTemporary(temps[0] as (typeof temps)[number]);
    expect((await filesUnder(tmp)).sort()).toEqual([join('keys', 'k')]);
  });

  it('refuses to create over a plain file', async () => {
    const file = join(tmp, 'file');
    await writeFile(file, 'x');
    const err = await expectCode(new LocalBackend(file).create(), 'REPO_NOT_EMPTY');
    expect(err.hint).toBe('choose an empty directory or a new path');
  });

  it('does not list a leftover temp file, a foreign file, or a misplaced pack', async () => {
    const backend = new LocalBackend(tmp);
    await backend.create();
    const name = `ab${randomName().slice(2)}`;
    await backend.save({ type: 'data', name }, Buffer.from('pack'));
    await writeFile(join(tmp, 'data', 'ab', '.tmp-xyz'), 'half a pack');
    await writeFile(join(tmp, 'data', 'ab', 'cd0000'), 'in the wrong folder');
    await writeFile(join(tmp, 'index', '.tmp-0123'), 'half an index');
    await writeFile(join(tmp, 'index', '.DS_Store'), 'junk');
    expect(await listAll(backend, 'data')).toEqual([{ name, size: 4 }]);
    expect(await listAll(backend, 'index')).toEqual([]);
  });

  it('saves into a data folder that went missing', async () => {
    const backend = new LocalBackend(tmp);
    await backend.create();
    await rm(join(tmp, 'data', 'ab'), { recursive: true });
    await backend.save({ type: 'data', name: 'ab99' }, Buffer.from('x'));
    expect((await backend.load({ type: 'data', name: 'ab99' })).toString()).toBe('x');
  });

  it('lists nothing for a type whose folder is missing', async () => {
    const backend = new LocalBackend(tmp);
    await backend.create();
    await rm(join(tmp, 'data'), { recursive: true });
    expect(await listAll(backend, 'data')).toEqual([]);
  });

  it('reports NO_SPACE and stores nothing when the disk is full', async () => {
    const local = new LocalBackend(tmp);
    await local.create();
    const backend = new FaultInjectingBackend(local).failSaveWith('ENOSPC');
    const h = { type: 'data' as const, name: randomName() };
    const err = await expectCode(backend.save(h, Buffer.alloc(1024)), 'NO_SPACE');
    expect(err.hint).toContain('free space');
    await expectCode(local.stat(h), 'NOT_FOUND');
    expect(await filesUnder(tmp)).toEqual([]);
  });

  it('removes its temp file when the final rename fails', async () => {
    const backend = new LocalBackend(tmp);
    await backend.create();
    // A non-empty directory under the object's name makes the real rename fail
    // after the temp file has been fully written and synced.
    await mkdir(join(tmp, 'keys', 'blocked'));
    await writeFile(join(tmp, 'keys', 'blocked', 'inside'), 'x');
    await expectCode(backend.save({ type: 'keys', name: 'blocked' }, Buffer.alloc(4096)), 'WRITE_ERROR');
    expect(await filesUnder(join(tmp, 'keys'))).toEqual([join('blocked', 'inside')]);
  });

  it('rejects a relative path', () => {
    expect(() => new LocalBackend('relative/repo')).toThrow(/not absolute/);
  });
});

describe('openBackend', () => {
  let tmp: string;
  let cwd: string;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'fole-open-'));
    cwd = process.cwd();
  });

  afterEach(async () => {
    process.chdir(cwd);
    await rm(tmp, { recursive: true, force: true });
  });

  it('opens local:/abs/path and a plain absolute path as the same local directory', () => {
    expect(openBackend(`local:${tmp}`).location).toBe(`local:${tmp}`);
    expect(openBackend(tmp).location).toBe(`local:${tmp}`);
    expect(openBackend(`${tmp}/sub/../repo/`).location).toBe(`local:${join(tmp, 'repo')}`);
  });

  it('resolves a relative path against the working directory', async () => {
    process.chdir(tmp);
    const backend = openBackend('repo');
    expect(backend.location).toBe(`local:${join(process.cwd(), 'repo')}`);
    await backend.create();
    expect(await readdir(join(tmp, 'repo'))).toContain('data');
    expect(openBackend('local:rel').location).toBe(`local:${join(process.cwd(), 'rel')}`);
    expect(openBackend('./a:b').location).toBe(`local:${join(process.cwd(), 'a:b')}`);
  });

  it('refuses unknown schemes and says which ones this version supports', () => {
    for (const location of ['ftp://host/repo', 'memory:']) {
      const err = thrown(() => openBackend(location));
      expect(err.code).toBe('USAGE');
      expect(err.message).toMatch(/unsupported backend .*this version supports local:<path>, a plain path, s3:https/);
    }
    // a location of a known scheme that is not of its form is refused for what it is
    expect(thrown(() => openBackend('rest:http://x')).message).toMatch(/plain http:\/\/ is refused/);
    expect(thrown(() => openBackend('s3:bucket/repo')).message).toMatch(/not a URL/);
    expect(thrown(() => openBackend('sftp://host/repo')).message).toMatch(/no user/);
  });

  it('refuses an empty location', () => {
    expect(thrown(() => openBackend('')).code).toBe('USAGE');
    expect(thrown(() => openBackend('local:')).message).toMatch(/no path given/);
  });
});
