/**
 * The tree of a backup, stored as NDJSON lines (one TreeEntry each) packed into
 * "tree" blobs of about TREE_BLOB_TARGET bytes, cut at line boundaries.
 */
import { sha256Hex } from '../crypto/hash.js';
import { TREE_BLOB_TARGET } from '../repository/format.js';
import { blobsInOrder } from '../repository/blobs-ahead.js';
import { PackReaders } from '../repository/pack-readers.js';
import type { BlobReader, BlobWriter } from '../repository/slices.js';
import type { TreeEntry } from './snapshot.js';
import { TreeChecker } from './validate.js';

/** FNV-1a of a string: a cheap, stable hash to place cut points by content. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Tree blobs are cut where the content says, not at a byte count: after a line
 * whose path hashes to 0 mod 64 once the blob holds TREE_BLOB_TARGET/2 bytes (or
 * unconditionally at 4× the target). A changed entry then changes only its own
 * small blob, so an incremental re-stores a few tree blobs, not every blob after
 * the first change (and changes are scattered: opening a database moves the
 * mtime of its directory).
 */
export class TreeWriter {
  private lines: string[] = [];
  private bytes = 0;
  readonly blobIds: string[] = [];

  constructor(private readonly repo: BlobWriter) {}

  async add(entry: TreeEntry): Promise<void> {
    const line = `${JSON.stringify(entry)}\n`;
    this.lines.push(line);
    this.bytes += line.length;
    if ((this.bytes >= TREE_BLOB_TARGET / 2 && (fnv1a(entry.path) & 63) === 0) || this.bytes >= TREE_BLOB_TARGET * 4)
      await this.cut();
  }

  /** Store what is left; returns every tree blob id in order. */
  async finish(): Promise<string[]> {
    if (this.lines.length > 0) await this.cut();
    return this.blobIds;
  }

  private async cut(): Promise<void> {
    const data = Buffer.from(this.lines.join(''), 'utf8');
    this.lines = [];
    this.bytes = 0;
    const id = sha256Hex(data);
    await this.repo.saveBlob('tree', id, data);
    this.blobIds.push(id);
  }
}

/**
 * Read a tree back, one validated entry at a time. Every entry is checked
 * against the repository's chunking and index, in strict tree order and under a
 * directory stored before it (TreeChecker), so a damaged or hostile tree
 * (traversal, duplicates, paths through files, sizes that disagree with their
 * chunks) is refused with a typed error before the entry is handed out.
 */
export async function* readTree(repo: BlobReader, blobIds: readonly string[]): AsyncGenerator<TreeEntry> {
  const checker = await treeChecker(repo);
  for await (const lines of treeBlobLines(repo, blobIds)) {
    for (let i = 0; i < lines.length; i++) {
      const entry = checker.line(lines[i] as string);
      // each line is a slice of the blob's text: the text is freed once none is left, not when the blob's last
      // entry is done with (a database of 61k chunks is one line of 4 MB, held while it is restored). The
      // generators that handed the lines out still hold this array, so it is emptied, not dropped.
      lines[i] = '';
      yield entry;
    }
  }
}

/**
 * readTree a tree blob at a time: the validated entries of each blob, in order (a blob with a refused line hands
 * out none of its entries). For a reader that goes through every entry of a large tree (a backup's parent), where
 * a step of an async generator per entry was a measurable part of the main thread's work.
 */
export async function* readTreeBatches(repo: BlobReader, blobIds: readonly string[]): AsyncGenerator<TreeEntry[]> {
  const checker = await treeChecker(repo);
  for await (const lines of treeBlobLines(repo, blobIds)) yield lines.map((line) => checker.line(line));
}

async function treeChecker(repo: BlobReader): Promise<TreeChecker> {
  await repo.loadIndex();
  return new TreeChecker({
    fileChunkSize: repo.config.fileChunkSize,
    dbChunkSize: repo.config.dbChunkSize,
    blobInfo: (id) => repo.index.get(id),
  });
}

/** Tree blobs loaded ahead of the one being read (~40 KB each). */
const TREE_BLOBS_AHEAD = 8;

/**
 * The raw NDJSON lines of a tree, in order, unvalidated (each blob is checked
 * against its id by loadBlob). readTree validates them; a second walk over a
 * tree already validated may parse them directly (src/verify/reread-tree.ts).
 */
export async function* treeLines(repo: BlobReader, blobIds: readonly string[]): AsyncGenerator<string> {
  for await (const lines of treeBlobLines(repo, blobIds)) yield* lines;
}

/**
 * The tree's blobs, in order, each as its lines. The next blobs are loaded while this one's lines are used: a tree
 * of 100k entries is ~700 blobs, and one cold read at a time left the reader waiting. Loads of one pack under way
 * together share one open; nothing stays open between them, so a reader that is dropped unfinished leaks no
 * descriptor. A blob's bytes are dropped once its text is made: a generator's frame holds what it yielded for as
 * long as it is suspended, and what it yields here is the lines, which their reader can empty as it goes.
 */
function treeBlobLines(repo: BlobReader, blobIds: readonly string[]): AsyncGenerator<string[]> {
  return blobsInOrder(repo, blobIds, new PackReaders(repo.backend, 0), TREE_BLOBS_AHEAD, linesOf);
}

/** The non-empty lines of a tree blob. */
function linesOf(blob: Buffer): string[] {
  const text = blob.toString('utf8');
  const lines: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (end > start) lines.push(text.slice(start, end));
    start = end + 1;
  }
  return lines;
}
