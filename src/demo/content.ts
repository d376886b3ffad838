/**
 * Content generators for the synthetic STORAGE_ROOT. Every generator is a pure
 * function of its Prng (and arguments): same stream in, same bytes out.
 *
 * Two families, because a backup tool must treat them differently:
 *   incompressible  PNG tiles, JPEG/PDF/ZIP uploads: a real magic number, then random bytes;
 *   compressible    text, CSV, GeoJSON, logs: words from a small vocabulary (zstd gets 3-5x).
 */

import type { Prng } from './prng.js';

export const PNG_SIGNATURE: Buffer = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A fixed instant (2024-03-01T00:00:00Z) so that generated timestamps do not depend on the clock. */
export const BASE_TIME_MS = 1_709_251_200_000;

const WORDS: readonly string[] = [
  'map',
  'layer',
  'tile',
  'feature',
  'road',
  'river',
  'bridge',
  'parcel',
  'survey',
  'boundary',
  'north',
  'south',
  'east',
  'west',
  'elevation',
  'contour',
  'forest',
  'field',
  'village',
  'station',
  'pipeline',
  'sensor',
  'reading',
  'inspection',
  'permit',
  'zone',
  'district',
  'street',
  'building',
  'footprint',
  'drainage',
  'culvert',
  'well',
  'spring',
  'trail',
  'fence',
  'gate',
  'orchard',
  'meadow',
  'wetland',
  'coast',
  'harbour',
  'pier',
  'lighthouse',
  'railway',
  'tunnel',
  'junction',
  'depot',
  'warehouse',
  'school',
  'clinic',
  'market',
  'square',
  'park',
  'garden',
  'cemetery',
  'church',
  'tower',
  'mast',
  'antenna',
  'the',
  'a',
  'of',
  'and',
  'to',
  'in',
  'near',
  'along',
  'across',
  'beside',
  'was',
  'is',
  'will',
  'be',
  'has',
  'been',
  'checked',
  'updated',
  'moved',
  'measured',
  'approved',
  'rejected',
  'pending',
  'draft',
  'final',
  'revised',
  'damaged',
  'repaired',
  'new',
  'old',
  'small',
  'large',
  'narrow',
  'wide',
  'steep',
  'flat',
  'dry',
  'wet',
  'public',
  'private',
  'team',
  'owner',
  'editor',
  'viewer',
  'note',
  'photo',
  'report',
  'sketch',
  'plan',
  'record',
  'alpha',
  'bravo',
  'charlie',
  'delta',
  'echo',
  'foxtrot',
  'golf',
  'hotel',
  'india',
  'juliet',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
];

const WORD_BYTES: readonly Buffer[] = WORDS.map((w) => Buffer.from(w, 'latin1'));

/** A word from the vocabulary. */
export function word(prng: Prng): string {
  return prng.pick(WORDS);
}

/** A short lowercase slug of `n` words joined by '-'. */
export function slug(prng: Prng, n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(word(prng));
  return parts.join('-');
}

/** A PNG-looking tile: the 8-byte PNG signature, then random bytes, `size` bytes in all. */
export function pngTile(prng: Prng, size: number): Buffer {
  const buf = Buffer.allocUnsafe(Math.max(size, PNG_SIGNATURE.length));
  PNG_SIGNATURE.copy(buf, 0);
  return prng.fill(buf, PNG_SIGNATURE.length);
}

/** `magic` followed by random bytes, `size` bytes in all. */
export function binaryFile(prng: Prng, size: number, magic: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(Math.max(size, magic.length));
  magic.copy(buf, 0);
  return prng.fill(buf, magic.length);
}

/** Exactly `size` bytes of prose: words, sentences, lines of about 80 columns, blank lines between paragraphs. */
export function proseText(prng: Prng, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  let col = 0;
  let wordsInSentence = 0;
  while (pos < size) {
    const w = WORD_BYTES[prng.u32() % WORD_BYTES.length];
    if (w === undefined) continue;
    for (let k = 0; k < w.length && pos < size; k++) {
      const c = w[k] ?? 0x20;
      // Capitalise the first word of a sentence.
      out[pos++] = wordsInSentence === 0 && k === 0 ? c - 32 : c;
    }
    col += w.length + 1;
    wordsInSentence++;
    if (pos >= size) break;
    if (wordsInSentence > 6 && prng.u32() % 8 === 0) {
      out[pos++] = 0x2e; // '.'
      wordsInSentence = 0;
      if (pos >= size) break;
    }
    if (col > 78) {
      out[pos++] = 0x0a;
      col = 0;
      if (pos < size && wordsInSentence === 0 && prng.u32() % 6 === 0) out[pos++] = 0x0a;
    } else {
      out[pos++] = 0x20;
    }
  }
  return out;
}

function coord(prng: Prng, lo: number, hi: number): string {
  return (lo + prng.float() * (hi - lo)).toFixed(6);
}

/** A CSV table of survey points, about `size` bytes (whole rows; at least the header). */
export function csvText(prng: Prng, size: number): Buffer {
  const rows: string[] = ['id,name,lat,lon,elevation_m,status,observed_at'];
  let bytes = rows[0]?.length ?? 0;
  for (let id = 1; bytes < size; id++) {
    const row = [
      id,
      slug(prng, 2),
      coord(prng, 45, 48),
      coord(prng, 5, 11),
      prng.int(200, 3000),
      word(prng),
      new Date(BASE_TIME_MS + prng.int(0, 86_400) * 60_000).toISOString(),
    ].join(',');
    rows.push(row);
    bytes += row.length + 1;
  }
  return Buffer.from(`${rows.join('\n')}\n`, 'utf8');
}

/** A valid GeoJSON FeatureCollection of points and lines, about `size` bytes. */
export function geojsonText(prng: Prng, size: number): Buffer {
  const head = '{"type":"FeatureCollection","features":[\n';
  const parts: string[] = [head];
  let bytes = head.length + 4;
  for (let id = 1; bytes < size; id++) {
    let geometry: string;
    if (prng.u32() % 3 === 0) {
      const pts: string[] = [];
      const n = prng.int(2, 12);
      for (let i = 0; i < n; i++) pts.push(`[${coord(prng, 5, 11)},${coord(prng, 45, 48)}]`);
      geometry = `{"type":"LineString","coordinates":[${pts.join(',')}]}`;
    } else {
      geometry = `{"type":"Point","coordinates":[${coord(prng, 5, 11)},${coord(prng, 45, 48)}]}`;
    }
    const feature =
      (id > 1 ? ',\n' : '') +
      `{"type":"Feature","id":${id},"geometry":${geometry},"properties":{"name":"${slug(prng, 2)}",` +
      `"kind":"${word(prng)}","status":"${word(prng)}","note":"${slug(prng, prng.int(2, 9)).replace(/-/g, ' ')}"}}`;
    parts.push(feature);
    bytes += feature.length;
  }
  parts.push('\n]}\n');
  return Buffer.from(parts.join(''), 'utf8');
}

const LEVELS: readonly string[] = ['debug', 'info', 'info', 'info', 'warn', 'error'];

/** Server-style log lines, one every few seconds from `startMs`, about `size` bytes. */
export function logText(prng: Prng, size: number, startMs: number, component: string): Buffer {
  const lines: string[] = [];
  let bytes = 0;
  let t = startMs;
  while (bytes < size) {
    t += prng.int(200, 9000);
    const line =
      `${new Date(t).toISOString()} ${prng.pick(LEVELS).padEnd(5)} [${component}] ` +
      `${word(prng)} ${word(prng)} ${word(prng)} id=${prng.hex(8)} ms=${prng.int(1, 900)}`;
    lines.push(line);
    bytes += line.length + 1;
  }
  return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
}

const AI_ACTIONS: readonly string[] = [
  'suggest-style',
  'classify-features',
  'summarise-layer',
  'fix-geometry',
  'translate-labels',
];

/** `count` lines of FOLE's AI action log (JSON lines). */
export function aiActionLog(prng: Prng, count: number, projectIds: readonly string[]): Buffer {
  const lines: string[] = [];
  let t = BASE_TIME_MS;
  for (let i = 0; i < count; i++) {
    t += prng.int(1000, 600_000);
    lines.push(
      JSON.stringify({
        ts: new Date(t).toISOString(),
        actionId: prng.hex(16),
        projectId: projectIds.length > 0 ? prng.pick(projectIds) : null,
        action: prng.pick(AI_ACTIONS),
        status: prng.u32() % 10 === 0 ? 'rejected' : 'applied',
        tokens: prng.int(50, 4000),
        summary: slug(prng, prng.int(3, 10)).replace(/-/g, ' '),
      }),
    );
  }
  return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
}

/** Pretty-printed JSON, as FOLE writes its settings files. */
export function jsonFile(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}
