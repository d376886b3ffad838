/**
 * The tree and snapshot validators: what they accept and refuse, and
 * property-based fuzzing (fast-check, fixed seeds) showing that no mutation of
 * a valid tree line, tree or snapshot makes them throw anything but a StopError.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fuzz } from '../../test/fuzz.js';
import { DELETE, type JsonMutation, mutateJson, setAt } from '../../test/forge-json.js';
import { StopError } from '../errors.js';
import { isPlainName } from '../fs/byte-names.js';
import { comparePaths, type Snapshot, type TreeEntry } from './snapshot.js';
import {
  CONTROL_CHARACTER,
  isSafeRelativePath,
  printable,
  printablePath,
  TreeChecker,
  TreeOrderChecker,
  validateSnapshot,
  validateTreeEntry,
  validateTreeValue,
  type TreeCheckOptions,
} from './validate.js';

const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const H = (c: string): string => c.repeat(64);
const SIZES: TreeCheckOptions = { fileChunkSize: 16, dbChunkSize: 65536 };
const SEEDS = [1, 42, 20240601, 987654321];
const BACKUP_ID = '0b9d7f36-3c1e-4a52-9a0f-6f1f2b7c8d90';

/** Run a property once per fixed seed, so a failure is reproducible. */
function check<T>(prop: fc.IProperty<T>, numRuns: number): void {
  fuzz(prop, numRuns, SEEDS);
}

/** Call fn; return its result, or undefined if it threw a StopError with `code`. Anything else fails the test. */
function acceptOrStop<T>(fn: () => T, code: StopError['code']): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof StopError)) throw new Error(`threw a non-typed error: ${String(err)}`, { cause: err });
    expect(err.code).toBe(code);
    // untrusted text never reaches the terminal raw
    expect(err.message).not.toMatch(CONTROL_CHARACTER);
    expect(err.path ?? '').not.toMatch(CONTROL_CHARACTER);
    return undefined;
  }
}

function stopOf(fn: () => unknown): StopError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StopError) return err;
    throw err;
  }
  throw new Error('expected a StopError, nothing was thrown');
}

const dir = (path: string, extra: object = {}): object => ({
  path,
  kind: 'dir',
  mode: 0o755,
  mtimeMs: 1.7e12,
  ...extra,
});
const file = (path: string, size: number, extra: object = {}): object => {
  const n = size === 0 ? 0 : Math.ceil(size / 16);
  const chunks = Array.from({ length: n }, (_, i) => H('0123456789abcdef'[i % 16] as string));
  return {
    path,
    kind: 'file',
    mode: 0o644,
    mtimeMs: 1.7e12,
    size,
    sha256: n === 0 ? EMPTY : n === 1 ? chunks[0] : H('f'),
    chunks,
    ino: 12,
    ctimeMs: 1.7e12,
    ...extra,
  };
};
const db = (path: string, extra: object = {}): object => ({
  path,
  kind: 'db',
  mode: 0o600,
  mtimeMs: 1.7e12,
  size: 4096,
  sha256: H('d'),
  chunks: [H('d')],
  db: { pageSize: 4096, pageCount: 1, userVersion: 3, journalMode: 'wal', integrity: 'ok' },
  fingerprint: '1:4096:1:1',
  ...extra,
});
const line = (v: unknown): string => JSON.stringify(v);

describe('validateTreeEntry', () => {
  it('accepts every kind of entry a backup writes and returns exactly its fields', () => {
    const owned = { uid: 1234, gid: 0 };
    for (const e of [
      dir('core'),
      file('core/a.json', 40),
      file('core/empty', 0),
      file('core/one', 16),
      db('core/core.db'),
      dir('core', owned),
      file('core/a.json', 40, owned),
      db('core/core.db', { uid: 0, gid: 4294967294 }),
    ]) {
      expect(validateTreeEntry(line(e), SIZES)).toEqual(e);
    }
  });

  it.each([
    ['../x', "'..' component"],
    ['a/../../x', "'..' component"],
    ['/etc/passwd', 'absolute path'],
    ['a//b', 'empty path component'],
    ['./a', "'.' component"],
    ['a/', 'empty path component'],
    ['a\0b', 'NUL'],
    ['', 'empty path'],
    ['x'.repeat(256), 'longer than 255'],
    ['é'.repeat(128), 'longer than 255'],
    [`${'abcdefgh/'.repeat(460)}x`, 'longer than 4096'],
    ['a\ud800b', 'not valid Unicode'],
    // an escape is a byte 0x80..0xFF that is not UTF-8, spelt as its bytes decode
    ['a\udc41', 'not valid Unicode'],
    ['caf\udcc3\udca9', 'canonical escape'],
    ['\udcf0\udc9f\udc98\udc80', 'canonical escape'],
    ['x\udcff'.repeat(128), 'longer than 255'],
  ])('refuses the path %j (%s), naming it', (path, why) => {
    const err = stopOf(() => validateTreeEntry(line(file(path, 3))));
    expect(err.code).toBe('CHECKSUM_MISMATCH');
    expect(err.message).toContain(why);
    expect(err.message).toContain('unsafe path');
  });

  it('accepts a backslash and the escaped bytes of a name that is not UTF-8, counting its bytes on disk', () => {
    for (const path of ['a\\b.txt', 'f\udcff\udcfe.bin', 'uploads-\udcc3(/x', 'é\udc80', 'x\udcff'.repeat(127)]) {
      expect(validateTreeEntry(line(file(path, 3))).path).toBe(path);
    }
    expect(validateTreeEntry(line(dir('d\udcc3'))).path).toBe('d\udcc3');
  });

  it('refuses a database whose name is not UTF-8, which SQLite could not open', () => {
    expect(stopOf(() => validateTreeEntry(line(db('x\udcff.db')))).message).toContain(
      'database whose name is not UTF-8',
    );
  });

  it.each(['symlink', 'fifo', 'device', 'socket', 'char', 'block', 'link', 'Dir', '', null, 3])(
    'refuses the kind %j',
    (kind) => {
      const err = stopOf(() => validateTreeEntry(line(file('x', 3, { kind }))));
      expect(err.message).toContain('unknown kind');
      expect(err.path).toBe('x');
    },
  );

  it.each([
    ['a directory with content', dir('d', { size: 3 }), 'unexpected field "size"'],
    ['a symlink target on a file', file('f', 3, { target: '/etc/passwd' }), 'unexpected field "target"'],
    [
      'a file with a db record',
      file('f', 3, { db: { pageSize: 4096, pageCount: 1, userVersion: 0, journalMode: 'wal', integrity: 'ok' } }),
      'unexpected field "db"',
    ],
    ['a file without chunks', file('f', 3, { chunks: undefined }), 'without chunks'],
    ['a db without its record', db('x.db', { db: undefined }), 'without db'],
    ['a mode above 0o7777', file('f', 3, { mode: 0o10644 }), 'bad mode'],
    ['a negative mode', file('f', 3, { mode: -1 }), 'bad mode'],
    ['a fractional mode', file('f', 3, { mode: 420.5 }), 'bad mode'],
    ['a mode as text', file('f', 3, { mode: '0644' }), 'bad mode'],
    ['an mtime as text', file('f', 3, { mtimeMs: '2024' }), 'bad mtime'],
    ['an uppercase sha256', file('f', 40, { sha256: H('F') }), 'bad sha256'],
    ['a short sha256', file('f', 40, { sha256: 'abc' }), 'bad sha256'],
    ['a chunk id that is not hex', file('f', 3, { chunks: ['zz'] }), 'bad chunks'],
    ['a size beyond 2^53', file('f', 3, { size: 2 ** 60 }), 'bad size'],
    ['a negative size', file('f', 3, { size: -1 }), 'bad size'],
    ['size 0 with chunks', file('f', 3, { size: 0 }), 'size disagrees with its chunks'],
    ['chunks without size', file('f', 0, { size: 3 }), 'size disagrees with its chunks'],
    ['an empty file hashing to something', file('f', 0, { sha256: H('a') }), 'SHA-256 is not that of no bytes'],
    ['a one-chunk file whose hash is not its chunk', file('f', 3, { sha256: H('a') }), "not its chunk's"],
    ['a db of more bytes than its pages', db('x.db', { size: 4097 }), 'is not 1 × 4096-byte pages'],
    [
      'a db page size that is not a power of two',
      db('x.db', { db: { pageSize: 4000, pageCount: 1, userVersion: 0, journalMode: 'wal', integrity: 'ok' } }),
      'bad db',
    ],
    ['a uid without its gid', file('f', 3, { uid: 1234 }), 'uid without gid'],
    ['a gid without its uid', dir('d', { gid: 1234 }), 'gid without uid'],
    ['a negative uid', db('x.db', { uid: -1, gid: 0 }), 'bad uid'],
    ['the uid that means "unchanged" to chown', file('f', 3, { uid: 4294967295, gid: 0 }), 'bad uid'],
    ['a fractional gid', dir('d', { uid: 0, gid: 1.5 }), 'bad gid'],
    ['a gid as text', file('f', 3, { uid: 0, gid: '0' }), 'bad gid'],
    [
      'a db that failed its integrity check',
      db('x.db', { db: { pageSize: 4096, pageCount: 1, userVersion: 0, journalMode: 'wal', integrity: 'bad' } }),
      'bad db',
    ],
  ])('refuses %s', (_name, entry, why) => {
    const err = stopOf(() => validateTreeEntry(line(entry), SIZES));
    expect(err.code).toBe('CHECKSUM_MISMATCH');
    expect(err.message).toContain(why);
  });

  it('refuses a non-finite mtime, which JSON can spell as 1e999', () => {
    expect(stopOf(() => validateTreeEntry('{"path":"d","kind":"dir","mode":493,"mtimeMs":1e999}')).message).toContain(
      'bad mtime',
    );
  });

  it('refuses a line that is not a JSON object', () => {
    for (const l of ['{', 'null', '[]', '"a"', '3', '{"path":"a"'])
      expect(stopOf(() => validateTreeEntry(l)).code).toBe('CHECKSUM_MISMATCH');
  });

  it('refuses a chunk count that disagrees with the repository chunk size', () => {
    // 40 bytes in 16-byte chunks: 3 chunks, not 2 or 4
    expect(stopOf(() => validateTreeEntry(line(file('f', 40, { chunks: [H('1'), H('2')] })), SIZES)).message).toContain(
      'need 3 chunks of 16',
    );
    expect(
      stopOf(() => validateTreeEntry(line(file('f', 40, { chunks: [H('1'), H('2'), H('3'), H('4')] })), SIZES)).message,
    ).toContain('need 3 chunks');
    expect(validateTreeEntry(line(file('f', 48)), SIZES).chunks).toHaveLength(3);
    // a database uses the database chunk size: 4 pages of 64 KiB are 4 chunks, not 1
    const big = db('x.db', {
      size: 4 * 65536,
      chunks: [H('1'), H('2')],
      db: { pageSize: 65536, pageCount: 4, userVersion: 0, journalMode: 'wal', integrity: 'ok' },
    });
    expect(stopOf(() => validateTreeEntry(line(big), SIZES)).message).toContain('need 4 chunks of 65536');
    // without the repository's sizes only the impossible is refused
    expect(validateTreeEntry(line(file('f', 40, { chunks: [H('1'), H('2')] }))).chunks).toHaveLength(2);
  });

  it('refuses a chunk whose stored length disagrees with its place in the file', () => {
    const e = file('f', 40);
    const lengths: Record<string, number> = { [H('0')]: 16, [H('1')]: 16, [H('2')]: 8 };
    expect(validateTreeEntry(line(e), { ...SIZES, blobInfo: (id) => ({ rawLength: lengths[id] ?? 0 }) }).size).toBe(40);
    // the last chunk holds 20 bytes where only 8 fit
    const lying = { ...SIZES, blobInfo: (id: string) => ({ rawLength: id === H('2') ? 20 : 16 }) };
    expect(stopOf(() => validateTreeEntry(line(e), lying)).message).toContain(
      'chunk 2 holds 20 bytes, its place needs 8',
    );
    // a chunk the index does not know is left to the loader
    expect(validateTreeEntry(line(e), { ...SIZES, blobInfo: () => undefined }).size).toBe(40);
  });

  it('clears setuid on everything and setgid on files, keeps setgid on directories', () => {
    expect(validateTreeEntry(line(file('f', 3, { mode: 0o4755 }))).mode).toBe(0o755);
    expect(validateTreeEntry(line(file('f', 3, { mode: 0o6755 }))).mode).toBe(0o755);
    expect(validateTreeEntry(line(db('x.db', { mode: 0o2640 }))).mode).toBe(0o640);
    expect(validateTreeEntry(line(dir('d', { mode: 0o6775 }))).mode).toBe(0o2775);
    expect(validateTreeEntry(line(dir('d', { mode: 0o1777 }))).mode).toBe(0o1777);
  });

  it('names a hostile path in its error without raw control characters', () => {
    const err = stopOf(() => validateTreeEntry(line(file('a/\u001b[2J\u009b/../x', 3))));
    expect(err.message).toContain('\\u001b[2J\\u009b');
    expect(err.message).not.toMatch(CONTROL_CHARACTER);
    expect(printable('a\u2028b')).toBe('"a\\u2028b"');
    expect(printablePath('projects/p1/a\\b.txt')).toBe('projects/p1/a\\b.txt');
    expect(printablePath('projects/p1/f\udcff')).toBe('"projects/p1/f\\xff"');
    expect(printablePath('x\u001b[2J')).toBe('"x\\u001b[2J"');
    // a byte that is not UTF-8 shows as \xNN; a real backslash before "udcff" stays itself
    expect(printable('f\udcff\udcfe')).toBe('"f\\xff\\xfe"');
    expect(printable('a\\udcff')).toBe('"a\\\\udcff"');
  });
});

describe('TreeChecker', () => {
  const run = (entries: object[]): TreeEntry[] => {
    const c = new TreeChecker(SIZES);
    return entries.map((e) => c.line(line(e)));
  };

  it('accepts a tree in tree order with every parent stored before its children', () => {
    const tree = [
      dir('core'),
      db('core/core.db'),
      dir('projects'),
      dir('projects/p1'),
      dir('projects/p1/files'),
      file('projects/p1/files/a', 3),
      file('projects/p1/project.json', 20),
      file('top', 0),
    ];
    expect(run(tree).map((e) => e.path)).toEqual(tree.map((e) => (e as { path: string }).path));
  });

  it.each([
    ['a duplicate path', [dir('a'), file('a/x', 3), file('a/x', 3)], 'duplicate path "a/x"'],
    ['a duplicate directory', [dir('a'), dir('a')], 'duplicate path "a"'],
    ['entries out of order', [dir('b'), dir('a')], '"a" is out of order'],
    [
      'a path through a file',
      [dir('a'), file('a/f', 3), file('a/f/x', 3)],
      '"a/f/x" lies under "a/f", which is a file',
    ],
    ['a path through a database', [dir('a'), db('a/x.db'), file('a/x.db/y', 3)], 'which is a db'],
    [
      'a path through something never stored (a symlink)',
      [dir('projects'), file('projects/link/passwd', 3)],
      'lies under "projects/link", which is not a directory',
    ],
    ['a top-level entry under a missing directory', [file('core/core.db', 3)], 'lies under "core"'],
    ['an entry under a directory that was closed', [dir('a'), dir('b'), file('a/x', 3)], 'out of order'],
  ])('refuses %s', (_name, entries, why) => {
    const err = stopOf(() => run(entries));
    expect(err.code).toBe('CHECKSUM_MISMATCH');
    expect(err.message).toContain(why);
  });

  it('TreeOrderChecker still refuses duplicates and disorder on its own', () => {
    const o = new TreeOrderChecker();
    o.check('a');
    o.check('a/b');
    expect(stopOf(() => o.check('a/b')).message).toContain('duplicate');
    expect(stopOf(() => o.check('a')).message).toContain('out of order');
  });
});

// ---------------------------------------------------------------- fuzzing

const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const name = fc.constantFrom('a', 'b', 'c', 'a.b', 'B', 'é', 'x y', 'a\\b', 'f\udcff', '\udcc3(', '\ud83d\udc80');
const HOSTILE_PATHS = [
  '../x',
  'a/../../x',
  '/etc/passwd',
  '/',
  'a//b',
  './a',
  'a/.',
  'a\0b',
  '',
  'x'.repeat(256),
  '\ud800',
  '\udc41',
  '\udcc3\udca9',
  'a/',
  '..',
  '.',
];
const hostilePath = fc.oneof(fc.constantFrom(...HOSTILE_PATHS), fc.string({ unit: 'binary', maxLength: 12 }));

/** A valid tree entry at `path`, of any kind, consistent with SIZES. */
function validEntry(path: string, kind?: TreeEntry['kind']): fc.Arbitrary<TreeEntry> {
  const mode = fc.integer({ min: 0, max: 0o1777 });
  // + 0 turns -0 into 0, which is what a JSON round trip gives
  const mtimeMs = fc.double({ min: -1e13, max: 1e13, noNaN: true }).map((t) => t + 0);
  // backups made before owners were recorded have none
  const owner = fc.option(fc.record({ uid: fc.nat(2 ** 32 - 2), gid: fc.nat(2 ** 32 - 2) }), { nil: undefined });
  const withOwner = (a: fc.Arbitrary<TreeEntry>): fc.Arbitrary<TreeEntry> =>
    fc.tuple(a, owner).map(([e, o]) => (o === undefined ? e : { ...e, ...o }));
  const dirArb = withOwner(
    fc.record({ mode, mtimeMs }).map(({ mode, mtimeMs }): TreeEntry => ({ path, kind: 'dir', mode, mtimeMs })),
  );
  const fileArb = withOwner(
    fc
      .record({
        mode,
        mtimeMs,
        size: fc.nat(100),
        ids: fc.array(hex64, { minLength: 7, maxLength: 7 }),
        sha: hex64,
        ino: fc.nat(),
        ctimeMs: mtimeMs,
      })
      .map(({ mode, mtimeMs, size, ids, sha, ino, ctimeMs }): TreeEntry => {
        const chunks = ids.slice(0, Math.ceil(size / 16));
        const sha256 = chunks.length === 0 ? EMPTY : chunks.length === 1 ? (chunks[0] as string) : sha;
        return { path, kind: 'file', mode: mode & 0o1777, mtimeMs, size, sha256, chunks, ino, ctimeMs };
      }),
  );
  const dbArb = withOwner(
    fc
      .record({
        mode,
        mtimeMs,
        pageSize: fc.constantFrom(512, 1024, 4096, 65536),
        pageCount: fc.integer({ min: 1, max: 3 }),
        ids: fc.array(hex64, { minLength: 3, maxLength: 3 }),
        userVersion: fc.integer({ min: -5, max: 5 }),
      })
      .map(({ mode, mtimeMs, pageSize, pageCount, ids, userVersion }): TreeEntry => {
        const size = pageSize * pageCount;
        const chunks = ids.slice(0, Math.ceil(size / 65536));
        return {
          path,
          kind: 'db',
          mode,
          mtimeMs,
          size,
          sha256: chunks.length === 1 ? (chunks[0] as string) : (ids[2] as string),
          chunks,
          db: { pageSize, pageCount, userVersion, journalMode: 'wal', integrity: 'ok' },
        };
      }),
  );
  // a database's name is UTF-8 (SQLite opens it by name): under any other name a backup stores a file
  const dbOrFile = isPlainName(path) ? dbArb : fileArb;
  if (kind === 'dir') return dirArb;
  if (kind !== undefined) return kind === 'file' ? fileArb : dbOrFile;
  return fc.oneof(dirArb, fileArb, dbOrFile);
}

type Mutation =
  | { op: 'replaceChar'; at: number; with: string }
  | { op: 'deleteChars'; at: number; n: number }
  | { op: 'truncate'; at: number }
  | { op: 'deleteField'; which: number }
  | { op: 'setField'; which: number; value: unknown }
  | { op: 'addField'; key: string; value: unknown }
  | { op: 'setPath'; path: string }
  | { op: 'replaceLine'; line: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constant('replaceChar' as const),
    at: fc.nat(),
    with: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  }),
  fc.record({ op: fc.constant('deleteChars' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('deleteField' as const), which: fc.nat() }),
  fc.record({
    op: fc.constant('setField' as const),
    which: fc.nat(),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      hex64,
      fc.constantFrom(0, -1, 2 ** 53, 1e308, 0o4755, 'dir', 'symlink', ''),
    ),
  }),
  fc.record({
    op: fc.constant('addField' as const),
    key: fc.oneof(
      fc.constantFrom('target', '__proto__', 'db', 'size', 'chunks', 'ino', 'uid', 'gid'),
      fc.string({ maxLength: 6 }),
    ),
    value: fc.jsonValue({ maxDepth: 2 }),
  }),
  fc.record({ op: fc.constant('setPath' as const), path: hostilePath }),
  fc.record({
    op: fc.constant('replaceLine' as const),
    line: fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ unit: 'binary', maxLength: 40 })),
  }),
);

/**
 * Apply mutations to one NDJSON line: string edits on the text, field edits on the parsed object when it still parses.
 */
function mutate(original: string, muts: readonly Mutation[]): string {
  let text = original;
  for (const m of muts) {
    if (m.op === 'replaceChar' || m.op === 'deleteChars' || m.op === 'truncate' || m.op === 'replaceLine') {
      const at = text.length === 0 ? 0 : 'at' in m ? m.at % text.length : 0;
      if (m.op === 'replaceChar') text = text.slice(0, at) + m.with + text.slice(at + 1);
      else if (m.op === 'deleteChars') text = text.slice(0, at) + text.slice(at + m.n);
      else if (m.op === 'truncate') text = text.slice(0, at);
      else text = m.line;
      continue;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) continue;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (m.op === 'deleteField' && keys.length > 0) delete o[keys[m.which % keys.length] as string];
    if (m.op === 'setField' && keys.length > 0) o[keys[m.which % keys.length] as string] = m.value;
    // defineProperty, so "__proto__" becomes a real own field as JSON.parse would make it
    if (m.op === 'addField')
      Object.defineProperty(o, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
    if (m.op === 'setPath') o.path = m.path;
    text = JSON.stringify(o);
  }
  return text;
}

/** What every accepted entry must satisfy, whatever it was made from. */
function expectSoundEntry(e: TreeEntry): void {
  expect(isSafeRelativePath(e.path)).toBe(true);
  expect(['dir', 'file', 'db']).toContain(e.kind);
  expect(Number.isInteger(e.mode) && e.mode >= 0 && e.mode <= 0o7777).toBe(true);
  expect(e.mode & 0o4000).toBe(0);
  if (e.kind !== 'dir') expect(e.mode & 0o2000).toBe(0);
  expect(Number.isFinite(e.mtimeMs)).toBe(true);
  expect(e.uid === undefined).toBe(e.gid === undefined);
  for (const id of [e.uid, e.gid])
    if (id !== undefined) expect(Number.isInteger(id) && id >= 0 && id < 2 ** 32 - 1).toBe(true);
  if (e.kind === 'dir') {
    expect(e.size ?? e.chunks ?? e.sha256).toBeUndefined();
  } else {
    const size = e.size as number;
    const chunkSize = e.kind === 'db' ? SIZES.dbChunkSize : SIZES.fileChunkSize;
    expect(Number.isSafeInteger(size) && size >= 0).toBe(true);
    expect(e.chunks).toHaveLength(Math.ceil(size / chunkSize));
    expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
  }
  // what was accepted reads back the same: validation is idempotent (compared as JSON, where -0 is 0)
  expect(JSON.stringify(validateTreeEntry(JSON.stringify(e), SIZES))).toBe(JSON.stringify(e));
}

describe('fuzzing the tree decoder', () => {
  it('accepts every generated valid entry unchanged (the mutations below start from valid lines)', () => {
    check(
      fc.property(
        fc.oneof(name, fc.constant('a/b/c')).chain((p) => validEntry(p)),
        (e) => {
          expect(validateTreeEntry(JSON.stringify(e), SIZES)).toEqual(e);
        },
      ),
      100,
    );
  });

  it('(a) a mutated tree line yields a sound entry or a StopError, never another exception', () => {
    const arb = fc.tuple(
      fc.oneof(name, fc.constant('a/b/c')).chain((p) => validEntry(p)),
      fc.array(mutation, { minLength: 1, maxLength: 3 }),
    );
    check(
      fc.property(arb, ([e, muts]) => {
        const text = mutate(JSON.stringify(e), muts);
        const got = acceptOrStop(() => validateTreeEntry(text, SIZES), 'CHECKSUM_MISMATCH');
        if (got !== undefined) expectSoundEntry(got);
      }),
      150,
    );
  });

  it('(a) random text and random JSON lines yield a sound entry or a StopError', () => {
    const arb = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.json({ maxDepth: 4 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
    );
    check(
      fc.property(arb, (text) => {
        const got = acceptOrStop(() => validateTreeEntry(text, SIZES), 'CHECKSUM_MISMATCH');
        if (got !== undefined) expectSoundEntry(got);
      }),
      100,
    );
  });

  it('(a) any JavaScript value handed to validateTreeValue yields a sound entry or a StopError', () => {
    const arb = fc.anything({
      withBigInt: true,
      withBoxedValues: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
      withDate: true,
    });
    check(
      fc.property(arb, (v) => {
        const got = acceptOrStop(() => validateTreeValue(v, SIZES), 'CHECKSUM_MISMATCH');
        if (got !== undefined) expectSoundEntry(got);
      }),
      100,
    );
  });

  /**
   * A plausible tree (every ancestor a directory, in tree order), then
   * structural mutations (swap, duplicate, drop, turn a directory into a file,
   * insert a stray path) and content mutations of single lines.
   */
  const treeArb = fc
    .uniqueArray(
      fc.array(name, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/')),
      { minLength: 1, maxLength: 8 },
    )
    .chain((leaves) => {
      const all = new Set<string>();
      for (const l of leaves) {
        const parts = l.split('/');
        for (let i = 1; i <= parts.length; i++) all.add(parts.slice(0, i).join('/'));
      }
      const paths = [...all].sort(comparePaths);
      const isParent = (p: string): boolean => paths.some((q) => q.startsWith(`${p}/`));
      return fc.tuple(...paths.map((p) => validEntry(p, isParent(p) ? 'dir' : undefined)));
    })
    .map((entries) => entries.map((e) => JSON.stringify(e)));

  type Edit =
    | { op: 'swap'; i: number; j: number }
    | { op: 'duplicate'; i: number }
    | { op: 'drop'; i: number }
    | { op: 'toFile'; i: number }
    | { op: 'insert'; i: number; path: string }
    | { op: 'mutateLine'; i: number; muts: Mutation[] };
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.record({ op: fc.constant('swap' as const), i: fc.nat(), j: fc.nat() }),
    fc.record({ op: fc.constant('duplicate' as const), i: fc.nat() }),
    fc.record({ op: fc.constant('drop' as const), i: fc.nat() }),
    fc.record({ op: fc.constant('toFile' as const), i: fc.nat() }),
    fc.record({
      op: fc.constant('insert' as const),
      i: fc.nat(),
      path: fc.oneof(
        fc.array(name, { minLength: 1, maxLength: 4 }).map((p) => p.join('/')),
        hostilePath,
      ),
    }),
    fc.record({
      op: fc.constant('mutateLine' as const),
      i: fc.nat(),
      muts: fc.array(mutation, { minLength: 1, maxLength: 2 }),
    }),
  );

  function pathOf(text: string): string | undefined {
    try {
      const v = JSON.parse(text) as { path?: unknown } | null;
      return typeof v?.path === 'string' ? v.path : undefined;
    } catch {
      return undefined;
    }
  }

  function applyEdits(lines: string[], edits: readonly Edit[]): string[] {
    const out = [...lines];
    for (const e of edits) {
      if (out.length === 0) break;
      const i = e.i % out.length;
      if (e.op === 'swap') {
        const j = e.j % out.length;
        [out[i], out[j]] = [out[j] as string, out[i] as string];
      } else if (e.op === 'duplicate') out.splice(i, 0, out[i] as string);
      else if (e.op === 'drop') out.splice(i, 1);
      else if (e.op === 'toFile') {
        const path = pathOf(out[i] as string);
        if (path !== undefined) out[i] = JSON.stringify(file(path, 3));
      } else if (e.op === 'insert') out.splice(i, 0, JSON.stringify(file(e.path, 5)));
      else out[i] = mutate(out[i] as string, e.muts);
    }
    return out;
  }

  /**
   * The index of the first line a correct checker must refuse, by a different
   * method than TreeChecker's (the set of every directory seen, not a stack).
   */
  function firstInvalid(lines: readonly string[]): number | undefined {
    const dirs = new Set<string>();
    let last: string | undefined;
    for (let i = 0; i < lines.length; i++) {
      let e: TreeEntry;
      try {
        e = validateTreeEntry(lines[i] as string, SIZES);
      } catch {
        return i;
      }
      const slash = e.path.lastIndexOf('/');
      const parent = slash === -1 ? '' : e.path.slice(0, slash);
      if (last !== undefined && comparePaths(last, e.path) >= 0) return i;
      if (parent !== '' && !dirs.has(parent)) return i;
      if (e.kind === 'dir') dirs.add(e.path);
      last = e.path;
    }
    return undefined;
  }

  it('(b) a mutated tree is refused at exactly its first bad entry, with a StopError', () => {
    check(
      fc.property(treeArb, fc.array(edit, { maxLength: 3 }), (lines, edits) => {
        const tree = applyEdits(lines, edits);
        const want = firstInvalid(tree);
        const checker = new TreeChecker(SIZES);
        let refusedAt: number | undefined;
        for (let i = 0; i < tree.length; i++) {
          const got = acceptOrStop(() => checker.line(tree[i] as string), 'CHECKSUM_MISMATCH');
          if (got === undefined) {
            refusedAt = i;
            break;
          }
          expectSoundEntry(got);
        }
        expect(refusedAt).toBe(want);
      }),
      150,
    );
  });

  it('(b) unedited generated trees are accepted whole', () => {
    check(
      fc.property(treeArb, (lines) => {
        const checker = new TreeChecker(SIZES);
        for (const l of lines) checker.line(l);
      }),
      50,
    );
  });
});

// ---------------------------------------------------------------- snapshots

/** A snapshot as a backup writes it (an assertion, not an annotation: it carries newer optional fields too). */
function baseSnapshot(): Snapshot {
  return {
    formatVersion: 1,
    backupId: BACKUP_ID,
    type: 'full',
    tags: ['nightly'],
    createdAt: '2024-06-01T02:00:00.123Z',
    host: 'fole-1',
    storageRoot: '/srv/fole/storage',
    root: { mode: 0o2750, uid: 1234, gid: 1234 },
    actor: { name: 'ops@example.com', kind: 'human' },
    manifest: {
      backupId: BACKUP_ID,
      createdAt: '2024-06-01T02:00:00.123Z',
      createdBy: 'ops@example.com',
      foleVersion: '2.3.1',
      storageSpecVersion: '1.1.0',
      modules: ['maps', 'forms'],
      projects: [
        {
          projectId: 'p1',
          projectDb: `sha256:${H('a')}`,
          mapDbs: [`sha256:${H('b')}`],
          maps: [{ mapId: 'm1', path: 'projects/p1/maps/m1/map.db', sha256: `sha256:${H('b')}` }],
        },
        { projectId: 'p2', projectDb: null, mapDbs: [], maps: [] },
      ],
      core: {
        coreDb: `sha256:${H('c')}`,
        templates: { 'server-defaults.json': `sha256:${H('e')}`, 'email/welcome.json': `sha256:${H('f')}` },
      },
    },
    tree: [H('1'), H('2')],
    stats: {
      files: 10,
      dirs: 4,
      databases: 3,
      bytes: 123456,
      addedBytes: 1000,
      durationMs: 812,
      writersBlockedMs: 12.345,
      bytesRead: 1000,
      filesUnchanged: 3,
    },
    databases: [
      {
        path: 'core/core.db',
        sha256: H('c'),
        size: 8192,
        pageSize: 4096,
        pageCount: 2,
        userVersion: 5,
        journalMode: 'wal',
        integrity: 'ok',
        fingerprint: '1:2:3:4',
        captured: true,
      },
      {
        path: 'projects/p1/maps/m1/map.db',
        sha256: H('b'),
        size: 4096,
        pageSize: 4096,
        pageCount: 1,
        userVersion: 0,
        journalMode: 'delete',
        integrity: 'ok',
      },
    ],
    skipped: [{ path: 'projects/p1/files/outside-link', reason: 'symlink (never followed nor stored)' }],
    skippedCount: 1,
    warnings: ['skipped symlink projects/p1/files/outside-link'],
  } as Snapshot;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** Every path-like string a snapshot holds (what restore might join onto a target). */
function pathsIn(s: Snapshot): string[] {
  return [
    ...s.manifest.modules,
    ...s.manifest.projects.flatMap((p) => [p.projectId, ...p.maps.flatMap((m) => [m.mapId, m.path])]),
    ...Object.keys(s.manifest.core.templates),
    ...s.databases.map((d) => d.path),
  ];
}

describe('validateSnapshot', () => {
  it('accepts what a backup writes (full and incremental) and returns it', () => {
    const s = baseSnapshot();
    expect(validateSnapshot(clone(s), BACKUP_ID)).toEqual(s);
    const inc = { ...clone(s), type: 'incremental', parent: '11111111-2222-4333-8444-555555555555' };
    expect(validateSnapshot(inc, BACKUP_ID).parent).toBe(inc.parent);
  });

  // each case: the slot a forged snapshot changes (see setAt), what it holds then, and what the refusal names
  const cases: [string, string, unknown, string][] = [
    ['another backup id', 'backupId', '11111111-2222-4333-8444-555555555555', 'names backup'],
    [
      'a manifest head of another backup',
      'manifest.backupId',
      '11111111-2222-4333-8444-555555555555',
      'manifest.backupId',
    ],
    ['an unknown format version', 'formatVersion', 2, 'formatVersion 2'],
    ['an incremental without parent', 'type', 'incremental', 'incremental backup with parent undefined'],
    ['a full backup with a parent', 'parent', '11111111-2222-4333-8444-555555555555', 'full backup with parent'],
    ['a createdAt that is not a time', 'createdAt', 'yesterday', 'createdAt'],
    ['a relative storageRoot', 'storageRoot', 'srv/fole', 'storageRoot'],
    ['a foleVersion that is a number', 'manifest.foleVersion', 2, 'manifest.foleVersion'],
    ['an empty foleVersion', 'manifest.foleVersion', '', 'manifest.foleVersion'],
    ['a foleVersion with a terminal escape', 'manifest.foleVersion', '2.3.1\u001b[31m', 'manifest.foleVersion'],
    ['a module named ../x', 'manifest.modules', ['../x'], 'module name "../x"'],
    ['a module name with a slash', 'manifest.modules', ['maps/extra'], 'module name'],
    ['a module listed twice', 'manifest.modules', ['maps', 'maps'], 'listed twice'],
    ['an absolute project id', 'manifest.projects.0.projectId', '/etc', 'project id "/etc"'],
    ['a project listed twice', 'manifest.projects.1.projectId', 'p1', 'listed twice'],
    [
      'a map path outside its project',
      'manifest.projects.0.maps.0.path',
      '../../etc/passwd',
      'map path "../../etc/passwd"',
    ],
    ['a map path under another project', 'manifest.projects.0.maps.0.path', 'projects/p2/maps/m1/map.db', 'map path'],
    ['a map hash without its prefix', 'manifest.projects.0.maps.0.sha256', H('b'), 'a map record'],
    ['projects that are not a list', 'manifest.projects', { p1: {} }, 'manifest.projects'],
    [
      'an absolute template path',
      'manifest.core.templates',
      { '/etc/shadow': `sha256:${H('e')}` },
      'template path "/etc/shadow"',
    ],
    ['a template path with ..', 'manifest.core.templates', { '../../x': `sha256:${H('e')}` }, 'template path'],
    ['an empty tree', 'tree', [], 'tree'],
    ['a tree id that is not hex', 'tree', ['../x'], 'tree'],
    ['a negative stat', 'stats.files', -1, 'stats.files'],
    ['a fractional byte count', 'stats.bytes', 1.5, 'stats.bytes'],
    ['a stat as text', 'stats.dirs', '4', 'stats.dirs'],
    ['a missing stat', 'stats.addedBytes', DELETE, 'stats.addedBytes missing'],
    ['an absolute database path', 'databases.0.path', '/srv/fole/storage/core/core.db', 'database path'],
    ['a database listed twice', 'databases.1.path', 'core/core.db', 'listed twice'],
    ['a database whose name is not UTF-8', 'databases.1.path', 'projects/p1/x\udcff.db', 'is not UTF-8'],
    ['a database size that is not its pages', 'databases.0.size', 8193, 'database record'],
    ['an absolute skipped path', 'skipped.0.path', '/etc/hostname', 'skipped-path record'],
    ['a skippedCount below the list', 'skippedCount', 0, 'skippedCount'],
    ['warnings that are not text', 'warnings', [{}], 'warnings'],
    ['an actor of an unknown kind', 'actor.kind', 'robot', 'actor'],
    ['a root that is not an object', 'root', 493, 'root is not an object'],
    ['a root with a field no backup writes', 'root.acl', 'u::rwx', 'root: unexpected field "acl"'],
    ['a root mode above 0o7777', 'root.mode', 0o10750, 'root.mode'],
    ['a root without its gid', 'root.gid', DELETE, 'root owner'],
    ['a root uid of -1', 'root.uid', -1, 'root owner'],
  ];
  it.each(cases)('refuses %s with MISSING_MANIFEST', (_name, path, value, why) => {
    const s: unknown = clone(baseSnapshot());
    setAt(s, path, value);
    const err = stopOf(() => validateSnapshot(s, BACKUP_ID));
    expect(err.code).toBe('MISSING_MANIFEST');
    expect(err.message).toContain('manifest is malformed');
    expect(err.message).toContain(why);
  });

  it('clears setuid on the root, keeps its setgid, and accepts a snapshot that recorded no root', () => {
    const s = clone(baseSnapshot());
    (s.root as { mode: number }).mode = 0o6750;
    expect(validateSnapshot(s, BACKUP_ID).root).toEqual({ mode: 0o2750, uid: 1234, gid: 1234 });
    const old = clone(baseSnapshot());
    delete old.root;
    expect(validateSnapshot(old, BACKUP_ID).root).toBeUndefined();
  });

  it('lets fields a newer build adds through', () => {
    const s = { ...clone(baseSnapshot()), retention: { keep: true } };
    expect(validateSnapshot(s, BACKUP_ID)).toBe(s);
  });

  const snapMutation: fc.Arbitrary<JsonMutation> = fc.record({
    which: fc.nat(),
    op: fc.constantFrom('delete' as const, 'set' as const),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      hostilePath,
      fc.constantFrom(-1, 1.5, 2 ** 60, null, '', 'sha256:', `sha256:${H('0')}`, BACKUP_ID),
    ),
  });

  function mutateSnapshot(muts: readonly JsonMutation[]): unknown {
    const s = clone(baseSnapshot()) as unknown;
    mutateJson(s, muts);
    return s;
  }

  it('(d) a mutated snapshot is accepted only if every path in it is safe; otherwise a StopError', () => {
    check(
      fc.property(fc.array(snapMutation, { minLength: 1, maxLength: 4 }), (muts) => {
        const got = acceptOrStop(() => validateSnapshot(mutateSnapshot(muts), BACKUP_ID), 'MISSING_MANIFEST');
        if (got === undefined) return;
        for (const p of pathsIn(got)) expect(isSafeRelativePath(p)).toBe(true);
        for (const s of got.skipped) expect(s.path.startsWith('/')).toBe(false);
        if (got.root !== undefined) {
          expect(Object.keys(got.root).sort()).toEqual(['gid', 'mode', 'uid']);
          expect(got.root.mode & ~0o3777).toBe(0);
        }
        expect(got.tree.length).toBeGreaterThan(0);
        for (const n of Object.values(got.stats) as number[]) expect(Number.isFinite(n) && n >= 0).toBe(true);
      }),
      150,
    );
  });

  it('(d) any JavaScript value as a snapshot yields a StopError, never another exception', () => {
    const arb = fc.anything({
      withBigInt: true,
      withBoxedValues: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withSparseArray: true,
      withTypedArray: true,
      withDate: true,
    });
    check(
      fc.property(arb, (v) => {
        expect(acceptOrStop(() => validateSnapshot(v, BACKUP_ID), 'MISSING_MANIFEST')).toBeUndefined();
      }),
      100,
    );
  });
});
