import { describe, expect, it } from 'vitest';
import { decodeSpan, SpanEncoder, type SpanBlob } from './span-job.js';

const H = (c: string): string => c.repeat(64);

describe('a span job', () => {
  it('decodes to exactly the blobs and targets encoded', () => {
    const blobs: SpanBlob[] = [
      {
        id: H('a'),
        type: 'data',
        at: 0,
        length: 4124,
        rawLength: 4096,
        compression: 0,
        targets: [
          {
            path: 'projects/p1/maps/m1/tiles/1/0/0.png',
            offset: 0,
            create: true,
            meta: { mode: 0o644, mtimeMs: 1709294400123.5 },
          },
          { path: 'projects/p2/dup.png', offset: 0, create: true },
          {
            path: 'core/core.db',
            offset: 0,
            create: true,
            meta: { mode: 0o600, mtimeMs: 1, owner: { uid: 0, gid: 4294967294 } },
          },
        ],
      },
      {
        id: H('b'),
        type: 'data',
        at: 4124,
        length: 9000,
        rawLength: 16384,
        compression: 1,
        targets: [{ path: 'projects/p1/project.db', offset: 5 * 2 ** 32, create: false }],
      },
      {
        id: H('c'),
        type: 'tree',
        at: 13124,
        length: 30,
        rawLength: 2,
        compression: 0,
        targets: [
          { path: 'ünï cødé/名前 with spaces\n.txt', offset: 0, create: true, meta: { mode: 0o400, mtimeMs: 0 } },
        ],
      },
    ];
    const enc = new SpanEncoder();
    for (const b of blobs) {
      enc.blob(b, b.at);
      for (const t of b.targets) enc.target(t.path, t.offset, t.create, t.meta);
    }
    expect(decodeSpan(enc.finish())).toEqual(blobs);
  });

  it('refuses a target before any blob', () => {
    expect(() => new SpanEncoder().target('x', 0, true)).toThrow(/before any blob/);
  });
});
