import { describe, expect, it } from 'vitest';
import type { IndexEntry } from '../repository/master-index.js';
import type { TreeEntry } from '../snapshot/snapshot.js';
import { planWindow, type PlanCursor, type SpanLimits, type WindowPlan } from './window-plan.js';

const H = (c: string): string => c.repeat(64);
const WIDE: SpanLimits = { maxSpan: 1 << 30, maxGap: 1 << 30 };

/** An index of blobs laid out back to back in their packs, in the order given. */
function indexOf(
  blobs: { id: string; pack: string; length: number; rawLength?: number; at?: number }[],
): (id: string) => IndexEntry | undefined {
  const next = new Map<string, number>();
  const entries = new Map<string, IndexEntry>();
  for (const b of blobs) {
    const offset = b.at ?? next.get(b.pack) ?? 0;
    next.set(b.pack, offset + b.length);
    entries.set(b.id, {
      id: b.id,
      pack: b.pack,
      type: 'data',
      offset,
      length: b.length,
      rawLength: b.rawLength ?? b.length - 28,
      compression: 0,
    });
  }
  return (id) => entries.get(id);
}

function file(path: string, chunks: string[], size: number): TreeEntry {
  return { path, kind: 'file', mode: 0o644, mtimeMs: 1, size, sha256: H('0'), chunks };
}

describe('planWindow', () => {
  it('reads each pack once, in the order the window first needs them, and writes each blob wherever it is used', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p2', length: 128 },
      { id: H('b'), pack: 'p1', length: 228 },
      { id: H('c'), pack: 'p2', length: 78 },
    ]);
    // x: one chunk from p1; y: two chunks from p2; z: the same content as x (deduplicated)
    const files = [file('x', [H('b')], 200), file('y', [H('a'), H('c')], 150), file('z', [H('b')], 200)];
    const plan = planWindow(files, lookup, WIDE);
    expect(plan.spans.map((s) => [s.pack, s.offset, s.length])).toEqual([
      ['p1', 0, 228],
      ['p2', 0, 206],
    ]);
    const [p1, p2] = plan.spans;
    expect(p1?.blobs.map((b) => [b.blob.id, b.targets])).toEqual([
      [
        H('b'),
        [
          { file: 0, offset: 0 },
          { file: 2, offset: 0 },
        ],
      ],
    ]);
    expect(p2?.blobs.map((b) => [b.blob.id, b.targets])).toEqual([
      [H('a'), [{ file: 1, offset: 0 }]],
      [H('c'), [{ file: 1, offset: 100 }]],
    ]);
    expect(p1?.files.sort()).toEqual([0, 2]);
    expect(p2?.files).toEqual([1]);
    expect(plan.spansPerFile).toEqual([1, 1, 1]);
  });

  it('cuts a pack into spans no longer than maxSpan, except a single larger blob', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 400 },
      { id: H('b'), pack: 'p', length: 400 },
      { id: H('c'), pack: 'p', length: 1500 },
      { id: H('d'), pack: 'p', length: 100 },
    ]);
    const f = file('big', [H('a'), H('b'), H('c'), H('d')], 400 + 400 + 1500 + 100 - 4 * 28);
    const plan = planWindow([f], lookup, { maxSpan: 1000, maxGap: 1 << 30 });
    expect(plan.spans.map((s) => [s.offset, s.length, s.blobs.length])).toEqual([
      [0, 800, 2],
      [800, 1500, 1],
      [2300, 100, 1],
    ]);
    // one file written by three spans: it is complete when all three are
    expect(plan.spansPerFile).toEqual([3]);
  });

  it('cuts a span where it would read through more than maxGap unneeded bytes', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 100, at: 0 },
      { id: H('b'), pack: 'p', length: 100, at: 150 },
      { id: H('c'), pack: 'p', length: 100, at: 5000 },
    ]);
    const files = [file('a', [H('a')], 72), file('b', [H('b')], 72), file('c', [H('c')], 72)];
    const plan = planWindow(files, lookup, { maxSpan: 1 << 20, maxGap: 1000 });
    expect(plan.spans.map((s) => [s.offset, s.length])).toEqual([
      [0, 250],
      [5000, 100],
    ]);
  });

  it('plans nothing to read for empty files', () => {
    const plan = planWindow([file('empty', [], 0)], indexOf([]), WIDE);
    expect(plan.spans).toEqual([]);
    expect(plan.spansPerFile).toEqual([0]);
  });

  it('refuses a chunk the index does not know, naming the file', () => {
    expect(() => planWindow([file('core/a.json', [H('e')], 10)], indexOf([]), WIDE)).toThrow(
      expect.objectContaining({
        name: 'StopError',
        code: 'CHECKSUM_MISMATCH',
        path: 'core/a.json',
        message: expect.stringContaining('is not in the repository index'),
      }),
    );
  });

  it('refuses chunks that do not add up to the recorded size', () => {
    const lookup = indexOf([{ id: H('a'), pack: 'p', length: 40, rawLength: 12 }]);
    expect(() => planWindow([file('core/big.json', [H('a')], 3)], lookup, WIDE)).toThrow(
      expect.objectContaining({
        code: 'CHECKSUM_MISMATCH',
        message: 'core/big.json: its chunks add up to 12 bytes, the backup recorded 3',
      }),
    );
  });
});

/** Every span in exactly one read, in order; a read covers its spans, of one pack, none overlapping the next. */
function expectReadsCoverSpans(plan: WindowPlan, readGap?: number): void {
  let next = 0;
  for (const r of plan.reads) {
    expect(r.first).toBe(next);
    const spans = plan.spans.slice(r.first, r.first + r.count);
    expect(spans.length).toBe(r.count);
    next += r.count;
    const first = spans[0];
    const last = spans[spans.length - 1];
    expect(r.offset).toBe(first?.offset);
    expect(r.offset + r.length).toBe((last?.offset ?? 0) + (last?.length ?? 0));
    spans.forEach((s, i) => {
      expect(s.pack).toBe(r.pack);
      const prev = spans[i - 1];
      if (prev === undefined) return;
      expect(s.offset).toBeGreaterThanOrEqual(prev.offset + prev.length);
      expect(s.offset - (prev.offset + prev.length)).toBeLessThanOrEqual(readGap ?? -1);
    });
  }
  expect(next).toBe(plan.spans.length);
}

describe('planWindow: reads', () => {
  /** A small PRNG: the same hostile shapes on every run. */
  function random(seed: number): () => number {
    let x = seed;
    return () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
  }

  it('reads each span alone without a readGap (a local disk)', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 400 },
      { id: H('b'), pack: 'p', length: 400 },
    ]);
    const plan = planWindow([file('x', [H('a'), H('b')], 800 - 56)], lookup, { maxSpan: 500, maxGap: 0 });
    expect(plan.spans.length).toBe(2);
    expect(plan.reads.map((r) => [r.offset, r.length, r.count])).toEqual([
      [0, 400, 1],
      [400, 400, 1],
    ]);
    expectReadsCoverSpans(plan);
  });

  it('reads a pack in one request, through gaps up to readGap, whatever the spans it is cut into', () => {
    // a: 0-400, b: 400-800, c: 2000-2400 (a gap of 1200), d: 10000-10100 (a gap of 7600), e in another pack
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 400, at: 0 },
      { id: H('b'), pack: 'p', length: 400, at: 400 },
      { id: H('c'), pack: 'p', length: 400, at: 2000 },
      { id: H('d'), pack: 'p', length: 100, at: 10_000 },
      { id: H('e'), pack: 'q', length: 100, at: 0 },
    ]);
    const files = [
      file('d', [H('d')], 72),
      file('ab', [H('a'), H('b')], 744),
      file('e', [H('e')], 72),
      file('c', [H('c')], 372),
    ];
    const plan = planWindow(files, lookup, { maxSpan: 500, maxGap: 100, readGap: 2000 });
    expect(plan.spans.map((s) => [s.pack, s.offset, s.length])).toEqual([
      ['p', 0, 400],
      ['p', 400, 400],
      ['p', 2000, 400],
      ['p', 10_000, 100],
      ['q', 0, 100],
    ]);
    // the gap of 7,600 bytes is more than readGap: a second request; another pack: its own
    expect(plan.reads.map((r) => [r.pack, r.offset, r.length, r.first, r.count])).toEqual([
      ['p', 0, 2400, 0, 3],
      ['p', 10_000, 100, 3, 1],
      ['q', 0, 100, 4, 1],
    ]);
    expectReadsCoverSpans(plan, 2000);
  });

  it('reads a blob larger than maxSpan as a span of its own, in the same request as its neighbours', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 100 },
      { id: H('b'), pack: 'p', length: 5000 },
      { id: H('c'), pack: 'p', length: 100 },
    ]);
    const plan = planWindow([file('x', [H('a'), H('b'), H('c')], 5200 - 84)], lookup, {
      maxSpan: 1000,
      maxGap: 0,
      readGap: 1 << 30,
    });
    expect(plan.spans.map((s) => [s.offset, s.length])).toEqual([
      [0, 100],
      [100, 5000],
      [5100, 100],
    ]);
    expect(plan.reads.map((r) => [r.offset, r.length, r.count])).toEqual([[0, 5200, 3]]);
    expect(plan.spansPerFile).toEqual([3]);
  });

  it('reads a blob used by a thousand files once, and writes it to each of them', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 100 },
      { id: H('b'), pack: 'p', length: 100 },
    ]);
    const files = Array.from({ length: 1000 }, (_, i) => file(`t/${i}.png`, [H(i % 2 === 0 ? 'a' : 'b')], 72));
    const plan = planWindow(files, lookup, { maxSpan: 1 << 20, maxGap: 0, readGap: 0 });
    expect(plan.spans.map((s) => [s.offset, s.length, s.blobs.length, s.files.length])).toEqual([[0, 200, 2, 1000]]);
    expect(plan.spans[0]?.blobs.map((b) => b.targets.length)).toEqual([500, 500]);
    expect(plan.reads.length).toBe(1);
  });

  it('never puts overlapping spans (blobs the index lays over each other) in one request', () => {
    const lookup = indexOf([
      { id: H('a'), pack: 'p', length: 600, at: 0 },
      { id: H('b'), pack: 'p', length: 600, at: 300 },
    ]);
    const plan = planWindow([file('a', [H('a')], 572), file('b', [H('b')], 572)], lookup, {
      maxSpan: 700,
      maxGap: 0,
      readGap: 1 << 30,
    });
    expect(plan.spans.map((s) => [s.offset, s.length])).toEqual([
      [0, 600],
      [300, 600],
    ]);
    expect(plan.reads.map((r) => [r.offset, r.length])).toEqual([
      [0, 600],
      [300, 600],
    ]);
  });

  it('on random hostile layouts (a pack used all over, huge gaps, large blobs, dedup), every span is read once', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const rnd = random(seed);
      const blobs: { id: string; pack: string; length: number; at: number }[] = [];
      const ends = new Map<string, number>();
      for (let i = 0; i < 300; i++) {
        const pack = `p${Math.floor(rnd() * 4)}`;
        const length = rnd() < 0.05 ? 3000 + Math.floor(rnd() * 5000) : 30 + Math.floor(rnd() * 500);
        const gap = rnd() < 0.1 ? Math.floor(rnd() * 1_000_000) : Math.floor(rnd() * 200);
        const at = (ends.get(pack) ?? 0) + gap;
        ends.set(pack, at + length);
        blobs.push({ id: i.toString(16).padStart(64, '0'), pack, length, at });
      }
      const lookup = indexOf(blobs);
      // files of 1 to 4 chunks, any blob, the same blob in many files
      const files = Array.from({ length: 400 }, (_, i) => {
        const chunks = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => {
          const b = blobs[Math.floor(rnd() * (rnd() < 0.3 ? 5 : blobs.length))];
          return b?.id ?? '';
        });
        const size = chunks.reduce((n, id) => n + (lookup(id)?.rawLength ?? 0), 0);
        return file(`f/${i}`, chunks, size);
      });
      const readGap = Math.floor(rnd() * 100_000);
      const plan = planWindow(files, lookup, { maxSpan: 4000, maxGap: 500, readGap });
      expectReadsCoverSpans(plan, readGap);
      // each blob needed is in exactly one span, and every use of it is a target there
      const seen = new Map<string, number>();
      for (const s of plan.spans)
        for (const b of s.blobs) seen.set(b.blob.id, (seen.get(b.blob.id) ?? 0) + b.targets.length);
      const uses = new Map<string, number>();
      for (const f of files) for (const id of f.chunks ?? []) uses.set(id, (uses.get(id) ?? 0) + 1);
      expect(seen).toEqual(uses);
      // no two reads of one pack could have been one: they are apart by more than readGap, or overlap
      for (let i = 1; i < plan.reads.length; i++) {
        const a = plan.reads[i - 1];
        const b = plan.reads[i];
        if (a === undefined || b === undefined || a.pack !== b.pack) continue;
        const gap = b.offset - (a.offset + a.length);
        expect(gap < 0 || gap > readGap).toBe(true);
      }
    }
  });
});

describe('planWindow: in pieces', () => {
  /** Every (blob, file, offset) a plan writes, as strings. */
  const writes = (plan: WindowPlan): string[] =>
    plan.spans.flatMap((s) => s.blobs.flatMap((b) => b.targets.map((t) => `${b.blob.id[0]}>${t.file}@${t.offset}`)));

  /** Plan `files` piece by piece, `chunks` at a time, to the end: the pieces' plans in order. */
  function inPieces(files: TreeEntry[], lookup: (id: string) => IndexEntry | undefined, chunks: number): WindowPlan[] {
    const plans: (WindowPlan & { next?: PlanCursor })[] = [];
    let from: PlanCursor | undefined = { file: 0, chunk: 0, offset: 0 };
    while (from !== undefined) {
      const plan = planWindow(files, lookup, WIDE, undefined, { from, chunks });
      plans.push(plan);
      from = plan.next;
    }
    return plans;
  }

  const lookup = indexOf([
    { id: H('a'), pack: 'p1', length: 128 },
    { id: H('b'), pack: 'p1', length: 228 },
    { id: H('c'), pack: 'p2', length: 78 },
    { id: H('d'), pack: 'p2', length: 1028 },
  ]);
  // x: four chunks (b used twice); an empty file; y: one chunk; z: two
  const files = [
    file('x', [H('a'), H('b'), H('c'), H('b')], 100 + 200 + 50 + 200),
    file('empty', [], 0),
    file('y', [H('d')], 1000),
    file('z', [H('c'), H('a')], 150),
  ];

  it('writes every chunk where the whole plan does, each piece at most so many chunks, cut mid-file', () => {
    const whole = writes(planWindow(files, lookup, WIDE));
    for (const chunks of [1, 2, 3, 5, 7, 100]) {
      const plans = inPieces(files, lookup, chunks);
      expect(plans.length).toBe(Math.ceil(7 / chunks));
      for (const p of plans) expect(writes(p).length).toBeLessThanOrEqual(chunks);
      expect(plans.flatMap(writes).sort(), `pieces of ${chunks}`).toEqual([...whole].sort());
    }
  });

  it('says where the next piece starts: the file, its chunk and that chunk’s offset in the file', () => {
    expect(
      planWindow(files, lookup, WIDE, undefined, { from: { file: 0, chunk: 0, offset: 0 }, chunks: 3 }).next,
    ).toEqual({ file: 0, chunk: 3, offset: 350 });
    // a piece that ends with a file's last chunk: the next starts at the next file with chunks, after the empty one
    const plan = planWindow(files, lookup, WIDE, undefined, { from: { file: 0, chunk: 3, offset: 350 }, chunks: 1 });
    expect(plan.next).toEqual({ file: 2, chunk: 0, offset: 0 });
    // spans count for the files of this piece only
    expect(plan.spansPerFile).toEqual([1, 0, 0, 0]);
    expect(planWindow(files, lookup, WIDE, undefined, { from: { file: 2, chunk: 0, offset: 0 }, chunks: 3 }).next).toBe(
      undefined,
    );
  });

  it('checks a file’s size where its last chunk is planned, and a missing chunk where it is reached', () => {
    const short = [file('x', [H('a'), H('b')], 999)];
    // the first piece plans one chunk of two: nothing to check yet
    expect(
      planWindow(short, lookup, WIDE, undefined, { from: { file: 0, chunk: 0, offset: 0 }, chunks: 1 }).next,
    ).toEqual({ file: 0, chunk: 1, offset: 100 });
    expect(() =>
      planWindow(short, lookup, WIDE, undefined, { from: { file: 0, chunk: 1, offset: 100 }, chunks: 1 }),
    ).toThrow(expect.objectContaining({ message: 'x: its chunks add up to 300 bytes, the backup recorded 999' }));
    const missing = [file('x', [H('a'), H('e')], 150)];
    expect(
      planWindow(missing, lookup, WIDE, undefined, { from: { file: 0, chunk: 0, offset: 0 }, chunks: 1 }).next,
    ).toEqual({ file: 0, chunk: 1, offset: 100 });
    expect(() =>
      planWindow(missing, lookup, WIDE, undefined, { from: { file: 0, chunk: 1, offset: 100 }, chunks: 1 }),
    ).toThrow(expect.objectContaining({ code: 'CHECKSUM_MISMATCH', path: 'x' }));
  });
});
