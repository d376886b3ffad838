import { describe, expect, it } from 'vitest';
import { FoleBackupError, StopError } from '../errors.js';
import type { TreeEntry } from '../snapshot/snapshot.js';
import type { AssemblyOutcome } from './assembly.js';
import type { PackChecks } from './check-packs.js';
import type { AssemblyPlan } from './read-plan.js';
import { dataSelection, SubsetDraw, subsetScore } from './subset.js';
import { judgePackStat, oneChunkProblem, type PackUse, readDataFindings } from './verify-checks.js';

const ID = 'b'.repeat(36);
const damaged = (what: string): StopError => new StopError('CHECKSUM_MISMATCH', `${what}: damaged`);

const assembly = (path: string, seq: number, kind: 'file' | 'db' = 'file'): AssemblyPlan => ({
  path,
  kind,
  size: 30,
  sha256: 'x',
  chunks: ['c1', 'c2'],
  seq,
  chunkPacks: ['P1', 'P2'],
  rawLengths: [10, 20],
});
const outcome = (plan: AssemblyPlan, o: Partial<AssemblyOutcome> = {}): AssemblyOutcome => ({
  plan,
  contentOk: true,
  bytesVerified: plan.size,
  checked: plan.kind === 'db',
  ...o,
});
const checks = (c: Partial<PackChecks> = {}): PackChecks => ({
  packProblems: [],
  failed: new Map(),
  lengths: new Map(),
  bytesRead: 0,
  ...c,
});
const task = (pack: string, files: number, bytes: number) => ({
  pack,
  blobs: new Set<string>(),
  keep: new Set<string>(),
  files,
  bytes,
});

describe('readDataFindings', () => {
  it('lists damaged packs, then file-list blobs, then files in tree order, whatever order they were found in', () => {
    const late = assembly('z/late.bin', 9);
    const early = assembly('a/early.db', 2, 'db');
    const found = readDataFindings(
      {
        plan: { tasks: [task('P1', 3, 300), task('P2', 1, 50)], emptyFiles: 2 },
        checks: checks({
          packProblems: [{ pack: 'P2', error: damaged('pack P2') }],
          failed: new Map([['t1', damaged('blob t1')]]),
          bytesRead: 4096,
        }),
        outcomes: [outcome(late, { contentOk: false, error: damaged('z/late.bin') }), outcome(early)],
        oneChunk: [{ seq: 5, path: 'm/one.bin', size: 50, problem: { error: damaged('chunk'), verified: 0 } }],
        treeComplete: true,
        packs: new Map<string, PackUse>([['P2', { end: 10, refs: 1, firstPath: 'm/one.bin' }]]),
        treeBlobs: ['t1', 't1'],
      },
      ID,
    );
    expect(found.problems.map((p) => [p.kind, p.path ?? p.object])).toEqual([
      ['pack', 'm/one.bin'],
      ['tree', undefined],
      ['file', 'm/one.bin'],
      ['file', 'z/late.bin'],
    ]);
    expect(found.problems[0]).toMatchObject({ object: 'data/P2', backupId: ID, code: 'CHECKSUM_MISMATCH' });
    expect(found.problems[1]?.message).toBe('file list blob t1: blob t1: damaged');
    // 2 empty + 4 vouched for by their packs − 1 found wrong + the database put together whole
    expect(found.counts).toEqual({
      filesRead: 6,
      databasesChecked: 1,
      bytesVerified: 350 - 50 + 30 + 30,
      bytesRead: 4096,
    });
    expect(found.complete).toBe(true);
  });

  it('reports an integrity_check failure with its first lines, and a file list that broke off last', () => {
    const dbPlan = assembly('core/core.db', 3, 'db');
    const found = readDataFindings(
      {
        plan: { tasks: [], emptyFiles: 0 },
        checks: checks({ failed: new Map([['c9', damaged('c9')]]) }),
        outcomes: [outcome(dbPlan, { integrity: ['row 1 missing', 'row 2 missing', 'row 3 missing', 'row 4'] })],
        oneChunk: [],
        secondWalkFailure: { error: new FoleBackupError('REPO_CORRUPT', 'bad line', { path: 'x/y' }) },
        treeComplete: true,
        packs: new Map(),
        treeBlobs: [],
      },
      ID,
    );
    expect(found.problems).toEqual([
      {
        code: 'DB_INTEGRITY_ERROR',
        kind: 'database',
        path: 'core/core.db',
        backupId: ID,
        message:
          'core/core.db: integrity_check of the restored copy is not ok: row 1 missing; row 2 missing; row 3 missing',
      },
      { code: 'REPO_CORRUPT', kind: 'tree', path: 'x/y', backupId: ID, message: `backup ${ID}: file list: bad line` },
    ]);
    expect(found.complete).toBe(false);
  });

  it('ends with an abort instead of making it a finding', () => {
    const abort = new FoleBackupError('ABORTED', 'stopped');
    const r = {
      plan: { tasks: [], emptyFiles: 0 },
      checks: checks(),
      outcomes: [outcome(assembly('f', 1), { contentOk: false, error: abort })],
      oneChunk: [],
      treeComplete: true,
      packs: new Map(),
      treeBlobs: [],
    };
    expect(() => readDataFindings(r, ID)).toThrow(abort);
  });
});

describe('judgePackStat', () => {
  const use: PackUse = { end: 1000, refs: 3, firstPath: 'p/f.bin' };

  it('passes a pack long enough for its blobs, and marks a short or missing one bad, naming who needs it', () => {
    expect(judgePackStat('P', use, { size: 2000 }, ID)).toEqual({ bad: false });
    const short = judgePackStat('P', use, { size: 1001 }, ID);
    expect(short.bad).toBe(true);
    expect(short.problem).toMatchObject({ code: 'CHECKSUM_MISMATCH', kind: 'pack', object: 'data/P', path: 'p/f.bin' });
    expect(short.problem?.message).toMatch(/is 1001 bytes, too short .*3 blob references .*first: p\/f\.bin/);
    const gone = judgePackStat('P', { ...use, firstPath: undefined }, { missing: true }, ID);
    expect(gone.bad).toBe(true);
    expect(gone.problem?.message).toMatch(/missing from the repository; .*first: its file list/);
    expect(gone.problem?.path).toBeUndefined();
  });

  it('reports a pack that could not be looked at without calling it damaged', () => {
    const err = new FoleBackupError('READ_ERROR', 'EIO');
    expect(judgePackStat('P', use, { error: err }, ID)).toEqual({
      bad: false,
      problem: {
        code: 'READ_ERROR',
        kind: 'pack',
        object: 'data/P',
        backupId: ID,
        path: 'p/f.bin',
        message: 'stat pack P: EIO',
      },
    });
  });
});

describe('oneChunkProblem', () => {
  const entry = (path: string, size: number, chunk = 'c'): TreeEntry =>
    ({ path, kind: 'file', size, sha256: chunk, chunks: [chunk] }) as TreeEntry;
  const context = {
    locate: (id: string) => (id === 'lost' ? undefined : { pack: id === 'inbad' ? 'BAD' : 'P', rawLength: 10 }),
    badPacks: new Set(['BAD']),
    selected: (path: string) => path !== 'skipped',
  };

  it('finds a one-chunk file whose chunk failed or opened to another length, and nothing in a clean one', () => {
    const failed = damaged('c');
    expect(oneChunkProblem(entry('f', 10), checks({ failed: new Map([['c', failed]]) }), context)).toEqual({
      error: failed,
      verified: 0,
    });
    const odd = oneChunkProblem(entry('f', 10), checks({ lengths: new Map([['c', 7]]) }), context);
    expect(odd?.verified).toBe(7);
    expect(odd?.error).toMatchObject({
      code: 'CHECKSUM_MISMATCH',
      message: 'content is 7 bytes, the backup recorded 10',
    });
    expect(oneChunkProblem(entry('f', 10), checks(), context)).toBeUndefined();
  });

  it('leaves alone the files that were not read: not drawn, in a pack known bad, or not in the index', () => {
    const all = checks({
      failed: new Map([
        ['c', damaged('c')],
        ['inbad', damaged('c')],
        ['lost', damaged('c')],
      ]),
    });
    expect(oneChunkProblem(entry('skipped', 10), all, context)).toBeUndefined();
    expect(oneChunkProblem(entry('f', 10, 'inbad'), all, context)).toBeUndefined();
    expect(oneChunkProblem(entry('f', 10, 'lost'), all, context)).toBeUndefined();
  });
});

describe('the subset draw', () => {
  it('takes the lowest-scoring file when the draw picks nothing, and only then', () => {
    const none = new SubsetDraw<string>(dataSelection({ percent: 1e-9, seed: 's' }, ID));
    for (const p of ['a', 'b', 'c']) expect(none.draw(p, 5, p)).toBe(false);
    const fallback = none.fallback();
    const lowest = ['a', 'b', 'c'].sort((x, y) => subsetScore('s', x) - subsetScore('s', y))[0];
    expect(fallback?.path).toBe(lowest);
    expect(fallback?.item).toBe(fallback?.path);
    expect([none.selectedFiles, none.selectedBytes]).toEqual([1, 5]);

    const every = new SubsetDraw<string>(dataSelection({ percent: 100 }, ID));
    for (const p of ['a', 'b']) expect(every.draw(p, 5, p)).toBe(true);
    expect(every.fallback()).toBeUndefined();
    expect([every.selectedFiles, every.selectedBytes]).toEqual([2, 10]);
  });

  it('refuses a share that is not a percentage, and seeds by the backup id by default', () => {
    expect(() => dataSelection({ percent: 0 }, ID)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => dataSelection({ percent: 101 }, ID)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(dataSelection({ percent: 10 }, ID)).toEqual({ mode: 'subset', percent: 10, seed: ID });
    expect(dataSelection(true, ID)).toEqual({ mode: 'all', percent: 100, seed: ID });
    expect(dataSelection(undefined, ID).mode).toBe('none');
  });
});
