import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local.js';
import { LockOwners } from './lock-owners.js';
import { MAX_LOCK_BYTES, restHandler, type RestHandlerOptions, type RestResponse } from './rest-handler.js';
import { TokenSet } from './tokens.js';

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef00';
const ADMIN = 'admin-token-0123456789abcdef';

let tmp: string;
let backend: LocalBackend;
let owners: LockOwners;
const ownersFile = (): string => join(tmp, 'owners.json');

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'fole-serve-'));
  backend = new LocalBackend(join(tmp, 'repo'));
  await backend.create();
  await backend.save({ type: 'config', name: 'config' }, Buffer.from('{}'));
  owners = await LockOwners.load(ownersFile());
});

afterEach(() => rm(tmp, { recursive: true, force: true }));

function handler(over: Partial<RestHandlerOptions> = {}) {
  return restHandler({
    backend,
    tokens: new TokenSet([ALICE, BOB]),
    elsewhere: new TokenSet([ADMIN]),
    appendOnly: true,
    lockOwners: owners,
    ...over,
  });
}

interface Reply extends RestResponse {
  bytes: Buffer;
}

async function call(
  h: ReturnType<typeof restHandler>,
  method: string,
  url: string,
  o: { token?: string | null; body?: Buffer; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const token = o.token === undefined ? ALICE : o.token;
  const body = o.body ?? Buffer.alloc(0);
  const r = await h({
    method,
    url,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      'content-length': String(body.length),
      ...o.headers,
    },
    body: (async function* () {
      if (body.length > 0) yield body;
    })(),
  });
  const chunks: Buffer[] = [];
  if (r.body instanceof Uint8Array) chunks.push(Buffer.from(r.body));
  else if (r.body !== undefined) for await (const c of r.body) chunks.push(Buffer.from(c));
  return { ...r, bytes: Buffer.concat(chunks) };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const lockName = (): string => randomBytes(16).toString('hex');

async function filesIn(type: string): Promise<string[]> {
  return (await readdir(join(tmp, 'repo', type), { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

describe('serve-repo requests', () => {
  it('refuses a missing, wrong or other listener’s token with 401, saying which in the log only', async () => {
    const h = handler();
    const none = await call(h, 'GET', '/keys/', { token: null });
    expect([none.status, none.refused]).toEqual([401, 'no bearer token']);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const wrong = await call(h, 'GET', '/keys/', { token: 'x'.repeat(30) });
    expect([wrong.status, wrong.refused]).toEqual([401, 'wrong token']);
    const admin = await call(h, 'DELETE', '/keys/k', { token: ADMIN });
    expect([admin.status, admin.refused]).toEqual([401, 'a token of another listener']);
    expect(admin.bytes.toString()).not.toMatch(/another listener/);
    expect((await call(h, 'GET', '/keys/')).status).toBe(200);
  });

  it('refuses with 400 every path that is not a type and a valid name once decoded', async () => {
    const h = handler({ appendOnly: false });
    for (const url of [
      '/locks/..%2fconfig',
      '/locks/%2e%2e',
      '/locks/..',
      '/locks/.hidden',
      '/data/a%2fb',
      '/data/a%5cb',
      '/../config',
      '/keys/../config',
      '/keys/a/b',
      '/nope/x',
      '/keys/%zz',
      '/config/x',
      '/keys/a%00b',
      '//keys/a',
    ]) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        const r = await call(h, method, url, { body: Buffer.from('x') });
        expect(r.status, `${method} ${url}`).toBe(400);
        expect(r.refused).toMatch(/bad path/);
      }
    }
    expect(await filesIn('locks')).toEqual([]);
    expect(await filesIn('keys')).toEqual([]);
  });

  it('serves ranges (206) and answers 416 for one past the end', async () => {
    const h = handler();
    const data = randomBytes(1000);
    await backend.save({ type: 'data', name: sha(data) }, data);
    const r = await call(h, 'GET', `/data/${sha(data)}`, { headers: { range: 'bytes=10-19' } });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe('bytes 10-19/1000');
    expect(r.bytes.equals(data.subarray(10, 20))).toBe(true);
    const past = await call(h, 'GET', `/data/${sha(data)}`, { headers: { range: 'bytes=1000-1001' } });
    expect(past.status).toBe(416);
    expect((await call(h, 'HEAD', `/data/${sha(data)}`)).headers['content-length']).toBe('1000');
    expect((await call(h, 'GET', `/data/${'0'.repeat(64)}`)).status).toBe(404);
  });

  it('cuts an upload off at the size limit even when it under-declares its length, keeping nothing', async () => {
    const h = handler({ appendOnly: false, maxObjectBytes: 1000 });
    const lied = await call(h, 'POST', '/snapshots/s1', {
      body: randomBytes(5000),
      headers: { 'content-length': '10' },
    });
    expect(lied.status).toBe(413);
    const declared = await call(h, 'POST', '/snapshots/s2', { body: randomBytes(5000) });
    expect(declared.status).toBe(413);
    expect(await readdir(join(tmp, 'repo', 'snapshots'))).toEqual([]);
    expect((await call(h, 'POST', '/snapshots/s3', { body: randomBytes(1000) })).status).toBe(201);
  });

  describe('append-only', () => {
    it('refuses every delete but a lock’s, and every write that would change what a name holds', async () => {
      const h = handler();
      const pack = randomBytes(500);
      const name = sha(pack);
      expect((await call(h, 'POST', `/data/${name}`, { body: pack })).status).toBe(201);
      for (const url of [`/data/${name}`, '/config', '/keys/k1', '/snapshots/s1', '/index/i1']) {
        const r = await call(h, 'DELETE', url);
        expect([r.status, r.refused], url).toEqual([403, 'append-only: only locks are ever removed']);
      }
      // the same bytes again (a client whose answer was lost): "stored", nothing replaced; other bytes: refused
      expect((await call(h, 'POST', `/data/${name}`, { body: pack })).status).toBe(200);
      const other = await call(h, 'POST', `/data/${name}`, { body: randomBytes(500) });
      expect(other.status).toBe(403);
      const createOnly = await call(h, 'POST', `/data/${name}`, { body: pack, headers: { 'if-none-match': '*' } });
      expect(createOnly.status).toBe(412);
      expect((await call(h, 'POST', '/config', { body: Buffer.from('{"evil":1}') })).status).toBe(403);
      expect((await call(h, 'POST', '/config', { body: Buffer.from('{}x') })).status).toBe(403);
      expect((await call(h, 'POST', '/config', { body: Buffer.from('{') })).status).toBe(403);
      expect((await call(h, 'POST', '/config', { body: Buffer.from('{}') })).status).toBe(200);
      expect((await backend.load({ type: 'config', name: 'config' })).toString()).toBe('{}');
      expect((await backend.load({ type: 'data', name })).equals(pack)).toBe(true);
    });

    it('refuses a pack or index whose bytes do not hash to its name, keeping nothing of it', async () => {
      const h = handler();
      const bytes = randomBytes(3000);
      for (const type of ['data', 'index']) {
        const r = await call(h, 'POST', `/${type}/${sha(randomBytes(8))}`, { body: bytes });
        expect(r.status, type).toBe(400);
        expect(r.refused).toMatch(/do not hash to the name/);
        expect(await filesIn(type)).toEqual([]);
      }
      // a snapshot is named by its backup id, not its hash: stored
      expect((await call(h, 'POST', '/snapshots/s1', { body: bytes })).status).toBe(201);
    });

    it('takes locks by lock id only, small, removed only by the token that made one, across restarts', async () => {
      const h = handler();
      for (const name of ['empty', 'A'.repeat(32), `${lockName()}0`]) {
        const r = await call(h, 'POST', `/locks/${name}`, { body: Buffer.from('l') });
        expect(r.status, name).toBe(400);
      }
      const big = await call(h, 'POST', `/locks/${lockName()}`, { body: randomBytes(MAX_LOCK_BYTES + 1) });
      expect(big.status).toBe(413);
      expect(await filesIn('locks')).toEqual([]);

      const mine = lockName();
      expect((await call(h, 'POST', `/locks/${mine}`, { body: Buffer.from('lock') })).status).toBe(201);
      const bobs = await call(h, 'DELETE', `/locks/${mine}`, { token: BOB });
      expect([bobs.status, bobs.refused]).toEqual([
        403,
        'append-only: a lock is removed only by the token that created it',
      ]);
      // a new server process on the same repository remembers who made it
      const restarted = handler({ lockOwners: await LockOwners.load(ownersFile()) });
      expect((await call(restarted, 'DELETE', `/locks/${mine}`, { token: BOB })).status).toBe(403);
      expect((await call(restarted, 'DELETE', `/locks/${mine}`)).status).toBe(204);
      expect(await filesIn('locks')).toEqual([]);
      expect((await call(restarted, 'DELETE', `/locks/${mine}`)).status).toBe(404);
    });

    it('gives a lock’s time by the server’s clock in listings', async () => {
      const h = handler();
      const before = Date.now();
      await call(h, 'POST', `/locks/${lockName()}`, { body: Buffer.from('lock') });
      const listed = JSON.parse((await call(h, 'GET', '/locks/')).bytes.toString()) as { mtime: number }[];
      expect(listed).toHaveLength(1);
      expect(listed[0]?.mtime).toBeGreaterThanOrEqual(before - 1000);
      expect(listed[0]?.mtime).toBeLessThanOrEqual(Date.now() + 1000);
    });
  });

  it('on the admin listener deletes and overwrites work, and any lock can be removed', async () => {
    const client = handler();
    const admin = handler({ tokens: new TokenSet([ADMIN]), elsewhere: new TokenSet([ALICE]), appendOnly: false });
    const lock = lockName();
    await call(client, 'POST', `/locks/${lock}`, { body: Buffer.from('lock') });
    await call(client, 'POST', '/snapshots/s1', { body: Buffer.from('one') });
    expect((await call(admin, 'DELETE', '/snapshots/s1')).status).toBe(401);
    expect((await call(admin, 'DELETE', '/snapshots/s1', { token: ADMIN })).status).toBe(204);
    expect((await call(admin, 'DELETE', `/locks/${lock}`, { token: ADMIN })).status).toBe(204);
    expect(owners.ownerOf(lock)).toBeUndefined();
    expect((await call(admin, 'POST', '/config', { token: ADMIN, body: Buffer.from('{"v":2}') })).status).toBe(201);
    expect((await backend.load({ type: 'config', name: 'config' })).toString()).toBe('{"v":2}');
  });
});
