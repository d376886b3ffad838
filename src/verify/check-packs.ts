/**
 * Carrying out a read plan (read-plan.ts): every pack of the plan is read and
 * checked once, a few at a time.
 *
 *   whole packs   (verify --read-data) the pack is read in full on the main
 *                 thread (several reads in flight: the disk serves parallel
 *                 readers faster) and handed to a worker (pack-pool.ts),
 *                 which hashes all of it against its name and opens every
 *                 blob the plan names — so damage anywhere in the pack is
 *                 found, not only in the bytes a file needs
 *   blob ranges   (--read-data-subset) only the planned blobs' own bytes are
 *                 read (sampling must not read every pack), and a worker
 *                 opens them the same way
 *
 * The worker writes database chunks into their scratch files and sends back
 * only the plaintexts that a file of several chunks needs (assembly.ts).
 * Memory stays bounded: at most MAX_PACKS packs and MAX_BYTES bytes are read
 * or being checked at once.
 *
 * Nothing here throws but an abort: a pack that cannot be read or does not
 * hash to its name is a pack problem, a blob that does not open is a failed
 * blob; the caller turns them into findings (and works out which files they
 * affect).
 */
import { forEachConcurrent } from '../concurrency/for-each.js';
import { FoleBackupError, StopError, errorFromData, throwIfAborted } from '../errors.js';
import type { IndexEntry } from '../repository/master-index.js';
import type { HashedFile, ScratchDatabase } from './assembly.js';
import { isAbort } from './findings.js';
import { loadPack, packHashError, short } from './pack-bytes.js';
import type { PackPool } from './pack-pool.js';
import type { BlobToOpen, PackAnswer } from './pack-worker.js';
import type { PackTask, ReadPlan } from './read-plan.js';
import { Budget } from '../concurrency/budget.js';
import type { BlobReader } from '../repository/slices.js';

/**
 * Packs read or being checked at once: enough to keep the workers busy while
 * the next packs are read (measured on two cores: 4 is as fast as 6, and
 * smaller).
 */
const MAX_PACKS = 4;
/** Blob ranges read at once for one pack (--read-data-subset). */
const RANGE_READS = 8;
/** Bytes of packs read or being checked at once (one pack is always allowed). */
const MAX_BYTES = 64 * 1024 * 1024;

export interface PackChecksDeps {
  repo: BlobReader;
  /** Whole packs (hashed against their names) or only the planned blobs' ranges. */
  whole: boolean;
  pool: PackPool;
  /** Expected size of a pack (from its stat), for the memory budget. */
  packSize: (pack: string) => number;
  /** Packs read or being checked at once (default MAX_PACKS). */
  maxPacks?: number | undefined;
  /** Files of several chunks, by the blob ids they need. */
  files: ReadonlyMap<string, readonly HashedFile[]>;
  /** Databases, by the blob ids they need. */
  databases: ReadonlyMap<string, readonly ScratchDatabase[]>;
  /** A pack task is done; `bytes` read for it. */
  onTask?: (task: PackTask, bytes: number) => void;
  signal?: AbortSignal | undefined;
}

interface PackProblem {
  pack: string;
  error: unknown;
  /** Prefix for the message (the error says what failed otherwise). */
  prefix?: string;
}

export interface PackChecks {
  /** What is wrong with packs as a whole, in plan order. */
  packProblems: PackProblem[];
  /** Blobs that did not open (or could not be read), with why. */
  failed: Map<string, unknown>;
  /** Blobs whose plaintext is not as long as the index says. */
  lengths: Map<string, number>;
  bytesRead: number;
}

/** One blob's sealed bytes, read alone; failing as Repository.loadBlob does. */
async function loadBlobBytes(repo: BlobReader, id: string, e: IndexEntry): Promise<Buffer> {
  try {
    return await repo.backend.load({ type: 'data', name: e.pack }, { offset: e.offset, length: e.length });
  } catch (err) {
    if (err instanceof FoleBackupError && (err.code === 'NOT_FOUND' || err.code === 'REPO_CORRUPT')) {
      throw new StopError('CHECKSUM_MISMATCH', `load blob ${short(id)} from pack ${short(e.pack)}: ${err.message}`, {
        cause: err,
        hint: 'a pack is missing or truncated; run `fole-backup check --read-data`',
      });
    }
    throw err;
  }
}

/** Read and check every pack of `plan`; files and databases are fed as the packs are checked. */
export async function checkPacks(plan: ReadPlan, deps: PackChecksDeps): Promise<PackChecks> {
  const { repo, files, databases } = deps;
  const out: PackChecks = { packProblems: [], failed: new Map(), lengths: new Map(), bytesRead: 0 };
  const problems = new Map<string, PackProblem>();
  const budget = new Budget(MAX_BYTES);

  const failBlob = (id: string, err: unknown): void => {
    if (!out.failed.has(id)) out.failed.set(id, err);
    for (const f of files.get(id) ?? []) f.fail(id, err);
    for (const d of databases.get(id) ?? []) d.fail(id, err);
  };
  /** The databases that need something from this pack. */
  const databasesOf = (task: PackTask): Set<ScratchDatabase> => {
    const dbs = new Set<ScratchDatabase>();
    for (const id of task.keep) for (const d of databases.get(id) ?? []) dbs.add(d);
    return dbs;
  };
  const packFailed = (task: PackTask, err: unknown, prefix?: string): void => {
    problems.set(task.pack, { pack: task.pack, error: err, ...(prefix === undefined ? {} : { prefix }) });
    for (const id of task.blobs) failBlob(id, err);
  };

  /** What the worker is asked: every needed blob, where it is in `at`, and where it goes. */
  const request = async (
    task: PackTask,
    at: (e: IndexEntry) => number | undefined,
  ): Promise<{ files: string[]; blobs: BlobToOpen[] }> => {
    const fileIndex = new Map<ScratchDatabase, number>();
    const paths: string[] = [];
    for (const d of databasesOf(task)) {
      const file = await d.prepare();
      if (file === undefined) continue; // it has failed already: nothing to write
      fileIndex.set(d, paths.length);
      paths.push(file);
    }
    const blobs: BlobToOpen[] = [];
    for (const id of task.blobs) {
      const e = repo.index.get(id);
      const offset = e === undefined ? undefined : at(e);
      if (e === undefined || offset === undefined) continue;
      const b: BlobToOpen = {
        id,
        type: e.type,
        offset,
        length: e.length,
        rawLength: e.rawLength,
        compression: e.compression,
        keep: (files.get(id)?.length ?? 0) > 0,
      };
      for (const d of databases.get(id) ?? []) {
        const i = fileIndex.get(d);
        if (i === undefined) continue;
        b.writes ??= [];
        for (const o of d.offsetsOf(id)) b.writes.push([i, o]);
      }
      blobs.push(b);
    }
    blobs.sort((x, y) => x.offset - y.offset);
    return { files: paths, blobs };
  };

  /** Let the worker check `data`; take in its answer. */
  const check = async (
    task: PackTask,
    data: Buffer,
    whole: boolean,
    req: { files: string[]; blobs: BlobToOpen[] },
  ): Promise<void> => {
    const size = data.length; // before the worker takes the buffer (its length reads 0 after)
    let answer: PackAnswer;
    try {
      answer = await deps.pool.checkPack(task.pack, data, whole, req.files, req.blobs);
    } catch (err) {
      if (isAbort(err)) throw err;
      packFailed(task, err, `check pack ${short(task.pack)}`);
      return;
    }
    if (whole && answer.sha256 !== task.pack)
      problems.set(task.pack, { pack: task.pack, error: packHashError(task.pack, size) });
    for (const f of answer.failed) failBlob(f.id, errorFromData(f.error));
    for (const l of answer.lengths) {
      out.lengths.set(l.id, l.length);
      for (const d of databases.get(l.id) ?? []) d.oddLength(l.id, l.length);
    }
    if (answer.writeFailed.length > 0) {
      const byFile = new Map<string, ScratchDatabase>();
      for (const d of databasesOf(task)) {
        const file = await d.prepare();
        if (file !== undefined) byFile.set(file, d);
      }
      for (const w of answer.writeFailed) byFile.get(req.files[w.file] as string)?.writeFailed(errorFromData(w.error));
    }
    const kept = Buffer.from(answer.kept.buffer, answer.kept.byteOffset, answer.kept.byteLength);
    for (const k of answer.keptAt) {
      const plain = kept.subarray(k.offset, k.offset + k.length);
      for (const f of files.get(k.id) ?? []) f.deliver(k.id, plain);
    }
  };

  const whole = async (task: PackTask): Promise<number> => {
    let data: Buffer;
    try {
      data = await loadPack(repo.backend, task.pack);
    } catch (err) {
      if (isAbort(err)) throw err;
      packFailed(task, err);
      return 0;
    }
    out.bytesRead += data.length;
    const size = data.length;
    await check(task, data, true, await request(task, (e) => e.offset));
    return size;
  };

  const ranges = async (task: PackTask): Promise<number> => {
    // read each blob alone (a few at a time), and hand them over back to back
    const got = new Map<string, Buffer>();
    await forEachConcurrent(task.blobs, RANGE_READS, async (id) => {
      throwIfAborted(deps.signal);
      const e = repo.index.get(id);
      if (e === undefined) return;
      try {
        got.set(id, await loadBlobBytes(repo, id, e));
      } catch (err) {
        if (isAbort(err)) throw err;
        failBlob(id, err);
      }
    });
    const at = new Map<string, number>();
    let read = 0;
    for (const [id, bytes] of got) {
      at.set(id, read);
      read += bytes.length;
    }
    out.bytesRead += read;
    const data = Buffer.allocUnsafeSlow(read);
    for (const [id, bytes] of got) bytes.copy(data, at.get(id));
    await check(task, data, false, await request(task, (e) => at.get(e.id)));
    return read;
  };

  await forEachConcurrent(plan.tasks, deps.maxPacks ?? MAX_PACKS, async (task) => {
    throwIfAborted(deps.signal);
    const estimate = deps.whole ? deps.packSize(task.pack) : 0;
    await budget.take(estimate);
    try {
      throwIfAborted(deps.signal);
      const bytes = await (deps.whole ? whole(task) : ranges(task));
      for (const d of databasesOf(task)) d.packDone(task.pack);
      deps.onTask?.(task, bytes);
    } finally {
      budget.give(estimate);
    }
  });
  // in plan order, whatever order the packs finished in
  for (const t of plan.tasks) {
    const p = problems.get(t.pack);
    if (p !== undefined) out.packProblems.push(p);
  }
  return out;
}
