/**
 * The one conformance suite every Backend must pass (restic's test.Suite, unstorage's
 * testDriver). A backend's test file calls describeBackendConformance with a factory
 * that returns a backend for a fresh, empty, not-yet-created location.
 */

import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Backend, ByteRange, ObjectHandle, ObjectInfo, ObjectType } from '../src/backend/backend.js';
import { OBJECT_TYPES } from '../src/backend/backend.js';
import { FoleBackupError } from '../src/errors.js';

export interface BackendFixture {
  backend: Backend;
  cleanup: () => Promise<void>;
}

/** A 64-hex-char name, like the pack and index names the repository uses. */
export function randomName(): string {
  return randomBytes(32).toString('hex');
}

/** Assert that `p` rejects with a FoleBackupError carrying `code`. */
export async function expectCode(p: Promise<unknown>, code: string): Promise<FoleBackupError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a ${code} error`).toBeInstanceOf(FoleBackupError);
  expect((err as FoleBackupError).code).toBe(code);
  return err as FoleBackupError;
}

/** Every object the backend lists for `type` (name and size), sorted by name. */
export async function listAll(backend: Backend, type: ObjectType): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of backend.list(type)) out.push({ name: info.name, size: info.size });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** `info` without its optional modification time. */
function sized(info: ObjectInfo): ObjectInfo {
  return { name: info.name, size: info.size };
}

export function describeBackendConformance(name: string, make: () => Promise<BackendFixture>): void {
  describe(`${name} backend conformance`, () => {
    let backend: Backend;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      ({ backend, cleanup } = await make());
    });

    afterEach(async () => {
      await backend.close();
      await cleanup?.();
      cleanup = undefined;
    });

    /** The backend after create(); most tests start from an empty repository. */
    async function created(): Promise<Backend> {
      await backend.create();
      return backend;
    }

    it('names its location', () => {
      expect(backend.location).toMatch(/^[a-z][a-z0-9]*:.+/);
    });

    it('creates a repository in an empty location and lists nothing in it', async () => {
      await backend.create();
      for (const type of OBJECT_TYPES) expect(await listAll(backend, type)).toEqual([]);
    });

    it('refuses to create a repository where one already exists', async () => {
      await backend.create();
      await backend.save({ type: 'config', name: 'config' }, Buffer.from('cfg'));
      await expectCode(backend.create(), 'REPO_NOT_EMPTY');
      expect((await backend.load({ type: 'config', name: 'config' })).toString()).toBe('cfg');
    });

    it('refuses to create twice even before a config is saved', async () => {
      await backend.create();
      await expectCode(backend.create(), 'REPO_NOT_EMPTY');
    });

    it('is not a repository until the config is saved', async () => {
      expect(await backend.isRepository()).toBe(false);
      await backend.create();
      expect(await backend.isRepository()).toBe(false);
      await backend.save({ type: 'config', name: 'config' }, Buffer.from('{}'));
      expect(await backend.isRepository()).toBe(true);
    });

    it('loads back exactly what was saved, for every object type', async () => {
      const b = await created();
      const saved = new Map<ObjectType, { h: ObjectHandle; data: Buffer }>();
      for (const type of OBJECT_TYPES) {
        const h = { type, name: type === 'config' ? 'config' : randomName() };
        const data = randomBytes(1000 + saved.size);
        await b.save(h, data);
        saved.set(type, { h, data });
      }
      for (const { h, data } of saved.values()) expect((await b.load(h)).equals(data)).toBe(true);
    });

    it('stores empty objects', async () => {
      const b = await created();
      const h = { type: 'locks' as const, name: 'empty' };
      await b.save(h, new Uint8Array(0));
      expect((await b.load(h)).length).toBe(0);
      expect(sized(await b.stat(h))).toEqual({ name: 'empty', size: 0 });
    });

    it('reports NOT_FOUND when loading or stat-ing a missing object', async () => {
      const b = await created();
      for (const type of OBJECT_TYPES) {
        const h = { type, name: randomName() };
        await expectCode(b.load(h), 'NOT_FOUND');
        await expectCode(b.load(h, { offset: 0, length: 1 }), 'NOT_FOUND');
        await expectCode(b.stat(h), 'NOT_FOUND');
      }
    });

    it('reports the size of a stored object', async () => {
      const b = await created();
      const h = { type: 'data' as const, name: randomName() };
      await b.save(h, randomBytes(12345));
      expect(sized(await b.stat(h))).toEqual({ name: h.name, size: 12345 });
    });

    it(
      'stores an object given in parts as their concatenation (empty parts, ' + 'more parts than one writev takes)',
      async () => {
        const b = await created();
        const h = { type: 'data' as const, name: randomName() };
        // 3000 parts: beyond IOV_MAX (1024), so a local write needs several writev calls
        const parts = Array.from({ length: 3000 }, (_, i) =>
          i % 7 === 0 ? Buffer.alloc(0) : randomBytes(1 + (i % 97)),
        );
        await b.save(h, parts);
        expect((await b.load(h)).equals(Buffer.concat(parts))).toBe(true);
        expect((await b.stat(h)).size).toBe(Buffer.concat(parts).length);
      },
    );

    it('loads byte ranges at the start, in the middle, at the end, and empty ranges', async () => {
      const b = await created();
      const h = { type: 'data' as const, name: randomName() };
      const data = randomBytes(4096);
      await b.save(h, data);
      const cases = [
        { offset: 0, length: 100 },
        { offset: 1000, length: 2000 },
        { offset: 4000, length: 96 },
        { offset: 0, length: 4096 },
        { offset: 123, length: 0 },
        { offset: 4096, length: 0 },
      ];
      for (const range of cases) {
        const got = await b.load(h, range);
        expect(got.equals(data.subarray(range.offset, range.offset + range.length)), JSON.stringify(range)).toBe(true);
      }
    });

    it('reports REPO_CORRUPT for a range beyond the end of the object', async () => {
      const b = await created();
      const h = { type: 'data' as const, name: randomName() };
      await b.save(h, randomBytes(100));
      await expectCode(b.load(h, { offset: 90, length: 11 }), 'REPO_CORRUPT');
      await expectCode(b.load(h, { offset: 101, length: 0 }), 'REPO_CORRUPT');
      await expectCode(b.load(h, { offset: 500, length: 10 }), 'REPO_CORRUPT');
    });

    it('streams ranges through loadStream like load, with the same errors (a backend that has it)', async () => {
      const b = await created();
      if (b.loadStream === undefined) return;
      const stream = b.loadStream.bind(b);
      const collect = async (h: ObjectHandle, range: ByteRange): Promise<Buffer> => {
        const pieces: Uint8Array[] = [];
        for await (const p of stream(h, range)) pieces.push(p);
        return Buffer.concat(pieces);
      };
      const h = { type: 'data' as const, name: randomName() };
      const data = randomBytes(300_000);
      await b.save(h, data);
      for (const range of [
        { offset: 0, length: 300_000 },
        { offset: 1000, length: 200_000 },
        { offset: 299_999, length: 1 },
        { offset: 300_000, length: 0 },
      ]) {
        const got = await collect(h, range);
        expect(got.equals(data.subarray(range.offset, range.offset + range.length)), JSON.stringify(range)).toBe(true);
      }
      await expectCode(collect({ type: 'data', name: randomName() }, { offset: 0, length: 1 }), 'NOT_FOUND');
      await expectCode(collect(h, { offset: 299_000, length: 1001 }), 'REPO_CORRUPT');
      // a stream given up after its first piece ends its request; the backend goes on serving
      for await (const _ of stream(h, { offset: 0, length: 300_000 })) break;
      expect((await collect(h, { offset: 5, length: 10 })).equals(data.subarray(5, 15))).toBe(true);
    });

    it('reads ranges through openReader like load, with the same errors (a backend that has it)', async () => {
      const b = await created();
      if (b.openReader === undefined) return;
      const h = { type: 'data' as const, name: randomName() };
      const data = randomBytes(4096);
      await b.save(h, data);
      await expectCode(b.openReader({ type: 'data', name: randomName() }), 'NOT_FOUND');
      const r = await b.openReader(h);
      expect(r.size).toBe(4096);
      const reads = [
        { offset: 0, length: 100 },
        { offset: 1000, length: 2000 },
        { offset: 4000, length: 96 },
        { offset: 4096, length: 0 },
      ];
      // concurrently, as restore reads spans
      const got = await Promise.all(reads.map((range) => r.read(range)));
      for (const [i, range] of reads.entries()) {
        const want = data.subarray(range.offset, range.offset + range.length);
        expect(got[i]?.equals(want), JSON.stringify(range)).toBe(true);
      }
      // each buffer is the caller's own
      (got[0] as Buffer).fill(0);
      expect((await r.read({ offset: 0, length: 100 })).equals(data.subarray(0, 100))).toBe(true);
      await expectCode(r.read({ offset: 4000, length: 97 }), 'REPO_CORRUPT');
      // into a buffer of the caller's, or one of the reader's own: the same bytes either way, and a result that is
      // the caller's buffer views its start (restore sends such a buffer to a worker whole)
      const into = new Uint8Array(8192).fill(7);
      const viaInto = await r.read({ offset: 1000, length: 2000 }, into);
      expect(viaInto.equals(data.subarray(1000, 3000))).toBe(true);
      if (viaInto.buffer === into.buffer) expect(viaInto.byteOffset).toBe(into.byteOffset);
      const tooSmall = new Uint8Array(10);
      const own = await r.read({ offset: 0, length: 100 }, tooSmall);
      expect(own.buffer).not.toBe(tooSmall.buffer);
      expect(own.equals(data.subarray(0, 100))).toBe(true);
      await r.close();
      await r.close();
      await expect(r.read({ offset: 0, length: 1 })).rejects.toThrow(/closed/);
    });

    it('writes a draft piece by piece, unseen until committed; a dropped one leaves nothing (drafts)', async () => {
      const b = await created();
      if (b.createDraft === undefined) return;
      const parts = [randomBytes(70_000), Buffer.alloc(0), randomBytes(5), randomBytes(300_000)];
      const whole = Buffer.concat(parts);
      const draft = b.createDraft('data');
      // appends overlap, as an open pack's do
      await Promise.all([
        draft.append([parts[0] as Buffer, parts[1] as Buffer]),
        draft.append([parts[2] as Buffer]),
        draft.append([parts[3] as Buffer]),
      ]);
      expect(await listAll(b, 'data')).toEqual([]);
      const h = { type: 'data' as const, name: randomName() };
      await draft.commit(h);
      expect((await b.load(h)).equals(whole)).toBe(true);
      expect(await listAll(b, 'data')).toEqual([{ name: h.name, size: whole.length }]);
      await expect(draft.append([randomBytes(1)])).rejects.toThrow(/ended/);
      // committed over an existing name: replaced, as save does
      const again = b.createDraft('data');
      await again.append([randomBytes(7)]);
      await again.commit(h);
      expect((await b.stat(h)).size).toBe(7);
      // dropped, or committed as another type: nothing stored, nothing left
      const dropped = b.createDraft('index');
      await dropped.append([randomBytes(10)]);
      await dropped.discard();
      await dropped.discard();
      await expect(dropped.append([randomBytes(1)])).rejects.toThrow(/ended/);
      const wrong = b.createDraft('index');
      await wrong.append([randomBytes(10)]);
      await expectCode(wrong.commit({ type: 'data', name: randomName() }), 'INTERNAL');
      expect(await listAll(b, 'index')).toEqual([]);
      expect((await listAll(b, 'data')).map((o) => o.name)).toEqual([h.name]);
      if (b.listTemporary !== undefined) {
        const left = [];
        for await (const t of b.listTemporary()) left.push(t.path);
        expect(left).toEqual([]);
      }
    });

    it('replaces an object when the same name is saved again', async () => {
      const b = await created();
      const h = { type: 'index' as const, name: randomName() };
      await b.save(h, randomBytes(5000));
      const second = randomBytes(10);
      await b.save(h, second);
      expect((await b.load(h)).equals(second)).toBe(true);
      expect((await b.stat(h)).size).toBe(10);
      expect(await listAll(b, 'index')).toEqual([{ name: h.name, size: 10 }]);
    });

    it('saveNew stores a new object and refuses, unchanged, a name already taken', async () => {
      const b = await created();
      const h = { type: 'audit' as const, name: '0000000001' };
      const first = randomBytes(300);
      await b.saveNew(h, [first.subarray(0, 100), first.subarray(100)]);
      expect((await b.load(h)).equals(first)).toBe(true);
      await expectCode(b.saveNew(h, randomBytes(10)), 'ALREADY_EXISTS');
      expect((await b.load(h)).equals(first)).toBe(true);
      expect(await listAll(b, 'audit')).toEqual([{ name: h.name, size: 300 }]);
      // a name save() wrote is taken too
      const s = { type: 'registry' as const, name: '0000000000' };
      await b.save(s, Buffer.from('x'));
      await expectCode(b.saveNew(s, Buffer.from('y')), 'ALREADY_EXISTS');
    });

    it('saveNew: of many writers racing for one name exactly one wins', async () => {
      const b = await created();
      const h = { type: 'approvals' as const, name: 'race.used' };
      const bodies = Array.from({ length: 12 }, () => randomBytes(64));
      const results = await Promise.allSettled(bodies.map((d) => b.saveNew(h, d)));
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect((r.reason as FoleBackupError).code).toBe('ALREADY_EXISTS');
      }
      expect((await b.load(h)).equals(bodies[won[0] as number] as Buffer)).toBe(true);
    });

    it('tells when an object was written, in stat and in list', async () => {
      const b = await created();
      const h = { type: 'locks' as const, name: randomName() };
      const before = Date.now();
      await b.save(h, randomBytes(10));
      const after = Date.now();
      const listed: ObjectInfo[] = [];
      for await (const info of b.list('locks')) listed.push(info);
      for (const info of [await b.stat(h), ...listed]) {
        expect(info.mtimeMs).toBeDefined();
        // file systems keep coarser times than the clock: allow a second either side
        expect(info.mtimeMs ?? 0).toBeGreaterThanOrEqual(before - 1000);
        expect(info.mtimeMs ?? 0).toBeLessThanOrEqual(after + 1000);
      }
    });

    it('lists exactly the saved names of each type, with their sizes', async () => {
      const b = await created();
      const expected = new Map<ObjectType, ObjectInfo[]>();
      const counts: Record<ObjectType, number> = {
        config: 1,
        keys: 3,
        data: 300,
        index: 40,
        snapshots: 25,
        locks: 2,
        settings: 2,
        registry: 4,
        audit: 30,
        approvals: 3,
        witness: 3,
        damage: 2,
        quarantine: 2,
      };
      for (const type of OBJECT_TYPES) {
        const infos: ObjectInfo[] = [];
        for (let i = 0; i < counts[type]; i++) {
          const name = type === 'config' ? 'config' : randomName();
          const size = (i * 7) % 50;
          await b.save({ type, name }, randomBytes(size));
          infos.push({ name, size });
        }
        expected.set(
          type,
          infos.sort((x, y) => (x.name < y.name ? -1 : 1)),
        );
      }
      // 300 random hex names land in many of the 256 prefixes.
      expect(new Set(expected.get('data')?.map((i) => i.name.slice(0, 2))).size).toBeGreaterThan(150);
      for (const type of OBJECT_TYPES) expect(await listAll(b, type), type).toEqual(expected.get(type));
    });

    it('stores, lists and loads names made of every allowed character, up to the longest allowed', async () => {
      const b = await created();
      const all = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-';
      const names = [all, `_${all}${all}`.slice(0, 128), '-'.replace('-', '_-.'), 'a.b-c_d'];
      for (const type of ['data', 'snapshots'] as const) {
        for (const n of names) await b.save({ type, name: n }, Buffer.from(n));
        expect((await listAll(b, type)).map((i) => i.name)).toEqual([...names].sort());
        for (const n of names) expect((await b.load({ type, name: n })).toString()).toBe(n);
      }
    });

    it('stores a large object given in parts and reads ranges across the parts', async () => {
      const b = await created();
      const h = { type: 'data' as const, name: randomName() };
      const parts = Array.from({ length: 5 }, (_, i) => randomBytes(4 * 1024 * 1024 + i * 1000));
      const whole = Buffer.concat(parts);
      await b.save(h, parts);
      expect((await b.stat(h)).size).toBe(whole.length);
      expect((await b.load(h)).equals(whole)).toBe(true);
      const range = { offset: 4 * 1024 * 1024 - 10, length: 9 * 1024 * 1024 };
      const got = await b.load(h, range);
      expect(got.equals(whole.subarray(range.offset, range.offset + range.length))).toBe(true);
    });

    it('saveNew stores a name again once the object under it was removed', async () => {
      const b = await created();
      const h = { type: 'registry' as const, name: '0000000007' };
      await b.saveNew(h, Buffer.from('first'));
      await b.remove(h);
      await b.saveNew(h, Buffer.from('second'));
      expect((await b.load(h)).toString()).toBe('second');
      await expectCode(b.saveNew(h, Buffer.from('third')), 'ALREADY_EXISTS');
    });

    it('lists short and non-hex names that are valid', async () => {
      const b = await created();
      const names = ['a', 'Zz', 'x_y-z.1', '0'];
      for (const n of names) await b.save({ type: 'data', name: n }, Buffer.from(n));
      expect((await listAll(b, 'data')).map((i) => i.name)).toEqual([...names].sort());
      for (const n of names) expect((await b.load({ type: 'data', name: n })).toString()).toBe(n);
    });

    it('forgets a removed object and tolerates removing a missing one', async () => {
      const b = await created();
      const h = { type: 'snapshots' as const, name: randomName() };
      const other = { type: 'snapshots' as const, name: randomName() };
      await b.save(h, Buffer.from('one'));
      await b.save(other, Buffer.from('two'));
      await b.remove(h);
      await expectCode(b.load(h), 'NOT_FOUND');
      await expectCode(b.stat(h), 'NOT_FOUND');
      expect((await listAll(b, 'snapshots')).map((i) => i.name)).toEqual([other.name]);
      await b.remove(h);
      await b.remove({ type: 'data', name: randomName() });
      expect((await b.load(other)).toString()).toBe('two');
    });

    it('hands out copies, so mutating a saved or loaded buffer does not change stored data', async () => {
      const b = await created();
      const h = { type: 'keys' as const, name: 'k1' };
      const original = Buffer.from('stored bytes');
      const input = Buffer.from(original);
      await b.save(h, input);
      input.fill(0);
      const first = await b.load(h);
      first.fill(1);
      const ranged = await b.load(h, { offset: 0, length: 6 });
      ranged.fill(2);
      expect((await b.load(h)).equals(original)).toBe(true);
    });

    it('rejects names that could escape their folder or hide', async () => {
      const b = await created();
      for (const name of ['../x', '', '.hidden', 'a/b', '..', 'a\\b', 'x'.repeat(129)]) {
        for (const type of ['data', 'keys'] as const) {
          const h = { type, name };
          await expect(b.save(h, Buffer.from('x')), name).rejects.toThrow();
          await expect(b.load(h), name).rejects.toThrow();
          await expect(b.stat(h), name).rejects.toThrow();
          await expect(b.remove(h), name).rejects.toThrow();
        }
      }
      for (const type of OBJECT_TYPES) {
        if (type !== 'config') expect(await listAll(b, type)).toEqual([]);
      }
    });

    it('keeps every object when 50 saves run concurrently', async () => {
      const b = await created();
      const objects = Array.from({ length: 50 }, () => ({ name: randomName(), data: randomBytes(2000) }));
      await Promise.all(objects.map((o) => b.save({ type: 'data', name: o.name }, o.data)));
      expect((await listAll(b, 'data')).map((i) => i.name)).toEqual(objects.map((o) => o.name).sort());
      for (const o of objects) expect((await b.load({ type: 'data', name: o.name })).equals(o.data)).toBe(true);
    });
  });
}
