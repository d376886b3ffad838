/**
 * What `verify --read-data` will read, decided from the tree before anything
 * is read (pure: no I/O, tested with plain objects).
 *
 * The data is checked pack by pack, not file by file: every pack the backup
 * needs is read once, and each blob the backup needs in it is opened once
 * (decrypted, decompressed, hashed against its id), however many files share
 * it. What a file needs beyond its chunks depends on its shape:
 *
 *   no chunk      (empty file) its hash was checked with the tree: nothing to read
 *   one chunk     its content IS the chunk: the tree already requires its
 *                 SHA-256 to be the chunk id and its size the chunk's length,
 *                 so opening the chunk checks the file
 *   more chunks,  an "assembly": the chunks' plaintexts are put together in
 *   or a database order, to hash the whole file (and, for a database, write it
 *                 to a scratch file for PRAGMA integrity_check)
 *
 * The plan lists the packs in the order the backup first needs them (roughly
 * the order they were written, so an assembly's pieces arrive nearly in
 * order) — but the packs that feed assemblies first: a database is checked
 * (read back, hashed, integrity_check) once its last pack is done, and so that
 * runs while the packs of plain files are still being read instead of after
 * them. With each pack: the blobs to open, which of them an
 * assembly keeps, and how many one-chunk files it vouches for (the counts of
 * a clean run).
 */

/** Where the index puts a blob: its pack, and its plaintext length. */
export interface Location {
  pack: string;
  rawLength: number;
}

export type Locate = (id: string) => Location | undefined;

/** A tree entry as the plan sees it. */
export interface PlannedEntry {
  path: string;
  kind: 'file' | 'db';
  size: number;
  sha256: string;
  chunks: readonly string[];
}

/** One pack to read and the blobs to open in it. */
export interface PackTask {
  pack: string;
  /** Blob ids the backup needs from this pack, each once. */
  blobs: Set<string>;
  /** Of those, the ids a file checked as a whole (an assembly) needs. */
  keep: Set<string>;
  /** One-chunk files whose only chunk is here, and their bytes. */
  files: number;
  bytes: number;
}

/** A file checked as a whole from its chunks' plaintexts. */
export interface AssemblyPlan extends PlannedEntry {
  /** Position of the entry in the tree (orders findings). */
  seq: number;
  /** The pack of every chunk. */
  chunkPacks: string[];
  /** The plaintext length the index gives every chunk (where it goes in the file). */
  rawLengths: number[];
}

export interface ReadPlan {
  /** The packs that feed assemblies, then the others; each in the order the backup first needs them. */
  tasks: PackTask[];
  assemblies: AssemblyPlan[];
  /** Files checked without reading anything (empty files). */
  emptyFiles: number;
}

export class ReadPlanner {
  private readonly tasks = new Map<string, PackTask>();
  private readonly assemblies: AssemblyPlan[] = [];
  private emptyFiles = 0;

  /** `locate`: for the blobs added without a file (addBlobs). */
  constructor(private readonly locate: Locate) {}

  private task(pack: string): PackTask {
    let t = this.tasks.get(pack);
    if (t === undefined) {
      t = { pack, blobs: new Set(), keep: new Set(), files: 0, bytes: 0 };
      this.tasks.set(pack, t);
    }
    return t;
  }

  /** Blobs to open that no file needs (the file list's own blobs). Unknown ids are skipped. */
  addBlobs(ids: readonly string[]): void {
    for (const id of ids) {
      const at = this.locate(id);
      if (at !== undefined) this.task(at.pack).blobs.add(id);
    }
  }

  /** A file to check; `at[i]` is where the index puts chunk i (every chunk must be in the index). */
  addFile(seq: number, e: PlannedEntry, at: readonly Location[]): void {
    if (at.length !== e.chunks.length)
      throw new Error(`read plan: ${e.path}: ${e.chunks.length} chunks, ${at.length} locations`);
    const [first] = e.chunks;
    if (first === undefined && e.kind === 'file') {
      this.emptyFiles++;
      return;
    }
    if (e.chunks.length === 1 && e.kind === 'file') {
      const t = this.task((at[0] as Location).pack);
      t.blobs.add(first as string);
      t.files++;
      t.bytes += e.size;
      return;
    }
    const chunkPacks = at.map((l) => l.pack);
    // its packs take their place in the order now; its blobs are added by finish()
    for (const pack of chunkPacks) this.task(pack);
    this.assemblies.push({ ...e, seq, chunkPacks, rawLengths: at.map((l) => l.rawLength) });
  }

  /**
   * The plan, without the packs in `bad` (missing or too short: reported
   * already) and without the files that need one of them. Call once.
   */
  finish(bad: ReadonlySet<string>): ReadPlan {
    const assemblies = this.assemblies.filter((a) => a.chunkPacks.every((pack) => !bad.has(pack)));
    for (const a of assemblies) {
      a.chunks.forEach((id, i) => {
        const t = this.task(a.chunkPacks[i] as string);
        t.blobs.add(id);
        t.keep.add(id);
      });
    }
    const tasks = [...this.tasks.values()].filter((t) => !bad.has(t.pack) && t.blobs.size > 0);
    return {
      tasks: [...tasks.filter((t) => t.keep.size > 0), ...tasks.filter((t) => t.keep.size === 0)],
      assemblies,
      emptyFiles: this.emptyFiles,
    };
  }
}
