/**
 * A STORAGE_ROOT for measuring the capture of databases (docs/BENCHMARKS.md,
 * "Database capture: syscalls and threads"): the `small` preset plus many
 * medium map databases (10–50 MiB each) in WAL mode, the newest ~40% of each
 * committed only to its -wal (never checkpointed, as on a running FOLE).
 *
 *   node --import tsx bench/capture-tree.ts <root> [databases=25]
 *
 * Deterministic for a given count: sizes and payloads come from a seeded generator.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { generateStorageRoot, PRESETS, writeWalTail } from '../src/demo/generate-storage-root.js';

const MiB = 1024 * 1024;
const ROW_BYTES = 2000;

/** xorshift32: the same bytes on every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** A row's payload: half random bytes, half repetitive text (about as compressible as FOLE's rows). */
function payload(next: () => number): Buffer {
  const b = Buffer.alloc(ROW_BYTES);
  for (let i = 0; i < ROW_BYTES / 2; i += 4) b.writeUInt32LE(next(), i);
  b.fill(`feature ${next() % 1000} `, ROW_BYTES / 2);
  return b;
}

function fill(db: Database.Database, from: number, rows: number, next: () => number): void {
  const ins = db.prepare('INSERT INTO annotation (id, body) VALUES (?, ?)');
  db.transaction(() => {
    for (let id = from; id < from + rows; id++) ins.run(id, payload(next));
  })();
}

async function main(): Promise<void> {
  const [root, countArg] = process.argv.slice(2);
  if (root === undefined) throw new Error('usage: capture-tree.ts <root> [databases]');
  const count = Number(countArg ?? 25);
  const generated = await generateStorageRoot(root, PRESETS.small);
  const project = generated.projects[0] as string;
  const next = prng(18);
  for (let i = 0; i < count; i++) {
    const bytes = (10 + ((i * 17) % 41)) * MiB;
    const rows = Math.floor(bytes / (ROW_BYTES + 100));
    const inMain = Math.floor(rows * 0.6);
    const dir = join(root, 'projects', project, 'maps', `bench-${String(i).padStart(2, '0')}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'map.db');
    const db = new Database(file);
    try {
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE annotation (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
      fill(db, 1, inMain, next);
    } finally {
      db.close();
    }
    writeWalTail(file, (w) => fill(w, inMain + 1, rows - inMain, next));
  }
  process.stdout.write(`${root}: small preset + ${count} WAL databases\n`);
}

await main();
