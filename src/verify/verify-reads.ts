/**
 * What verify reads, stage by stage: the snapshot and the index; the tree,
 * walked once to validate it, render the first half of manifest.json and plan
 * read-data, and walked again (reread-tree.ts) to render the second half or to
 * find the one-chunk files a damaged chunk affects; the packs' sizes; and,
 * with read-data, the planned packs themselves (check-packs.ts, on the
 * workers of pack-pool.ts) and the files put together from them
 * (assembly.ts).
 *
 * Each stage returns plain data for the next. What a stage finds wrong on the
 * way (judged by verify-checks.ts) goes to the caller's ProblemSink at once,
 * so it is reported as it is found; only an abort is thrown.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Backend } from '../backend/backend.js';
import { forEachConcurrent } from '../concurrency/for-each.js';
import { FoleBackupError, throwIfAborted } from '../errors.js';
import { ManifestText } from '../manifest/manifest-text.js';
import type { BlobReader, SealedObjects } from '../repository/slices.js';
import type { Snapshot, SnapshotDatabase, TreeEntry } from '../snapshot/snapshot.js';
import { loadSnapshot } from '../snapshot/store.js';
import { readTree } from '../snapshot/tree.js';
import { type AssemblyOutcome, HashedFile, ScratchDatabase, type ScratchHost } from './assembly.js';
import { checkPacks, type PackChecks } from './check-packs.js';
import { isAbort, type ProblemSink, problemFromError } from './findings.js';
import type { PackPool } from './pack-pool.js';
import { type Location, type PlannedEntry, type ReadPlan, ReadPlanner } from './read-plan.js';
import { rereadTree } from './reread-tree.js';
import { type DataSelection, SubsetDraw } from './subset.js';
import {
  absentDatabaseProblems,
  databaseRecordProblems,
  judgePackStat,
  missingChunksProblem,
  type PackStat,
  type PackUse,
} from './verify-checks.js';
import type { VerifyCounts, VerifyProgress } from './verify-report.js';

/** What every stage is given: where its problems go, and the run's abort signal. */
export interface StageDeps {
  onProblem: ProblemSink;
  signal?: AbortSignal | undefined;
}

/** The backup's snapshot object (decrypted, validated); undefined when it does not load. */
export async function readSnapshot(
  repo: SealedObjects,
  backupId: string,
  deps: StageDeps,
): Promise<Snapshot | undefined> {
  try {
    return await loadSnapshot(repo, backupId);
  } catch (err) {
    deps.onProblem(problemFromError('manifest', err, { object: `snapshots/${backupId}`, backupId }));
    return undefined;
  }
}

/** Load every index file into the repository's index; false when that fails. */
export async function readIndex(repo: BlobReader, deps: StageDeps): Promise<boolean> {
  try {
    await repo.loadIndex(deps.signal);
    return true;
  } catch (err) {
    // every blob is found through the index: without all of it, restore cannot run either
    deps.onProblem(
      problemFromError('index', err, { prefix: 'load the repository index (run `fole-backup check` for details)' }),
    );
    return false;
  }
}

/** manifest.json with its first half rendered (by the first walk), and the hash of what was written so far. */
export interface HalfManifest {
  text: ManifestText;
  hash: Hash;
}

/** What the first walk over the tree found. */
export interface TreeWalk {
  /** The whole tree was read, and is valid. */
  complete: boolean;
  /** Entries read (a second walk over a damaged tree stops there). */
  entries: number;
  counts: Pick<VerifyCounts, 'dirs' | 'files' | 'databases' | 'bytes' | 'blobs'>;
  /** The packs the backup needs, in the order it first needs them. */
  packs: Map<string, PackUse>;
  /** What read-data will read (undefined without read-data). */
  planner: ReadPlanner | undefined;
  /** What the subset draw picked (--read-data-subset); `fallbackPath` when it picked nothing and took that file. */
  drawn?: { files: number; bytes: number; fallbackPath?: string };
  /** manifest.json, half rendered, when the walk was complete. */
  manifest: HalfManifest | undefined;
}

/** A file or database entry as the read plan takes it. */
function plannedEntry(e: TreeEntry): PlannedEntry {
  return {
    path: e.path,
    kind: e.kind === 'db' ? 'db' : 'file',
    size: e.size ?? 0,
    sha256: e.sha256 ?? '',
    chunks: e.chunks ?? [],
  };
}

/** A file the read-data pass can read: where its chunks are. */
interface Readable {
  entry: PlannedEntry;
  at: Location[];
}

/**
 * The first walk: the tree is readable and valid (readTree validates every
 * entry), every blob it needs is in the index, and its databases agree with
 * the snapshot's list; renders the first half of manifest.json and plans
 * read-data on the way.
 */
export async function walkTree(
  repo: BlobReader,
  backupId: string,
  snap: Snapshot,
  selection: DataSelection,
  deps: StageDeps & { progress: Pick<VerifyProgress, 'walked'> },
): Promise<TreeWalk> {
  const counts = { dirs: 0, files: 0, databases: 0, bytes: 0, blobs: 0 };
  const packs = new Map<string, PackUse>();
  const usePack = (pack: string, end: number, path: string | undefined): void => {
    const u = packs.get(pack);
    if (u === undefined) packs.set(pack, { end, refs: 1, firstPath: path });
    else {
      u.end = Math.max(u.end, end);
      u.refs++;
      u.firstPath ??= path;
    }
  };
  for (const id of snap.tree) {
    counts.blobs++;
    const e = repo.index.get(id);
    if (e !== undefined) usePack(e.pack, e.offset + e.length, undefined);
  }
  const planner = selection.mode === 'none' ? undefined : new ReadPlanner((id) => repo.index.get(id));
  // the packs holding the file list are part of the backup too
  if (selection.mode === 'all') planner?.addBlobs(snap.tree);
  const draw =
    selection.mode === 'subset'
      ? new SubsetDraw<{ seq: number; readable: Readable | undefined }>(selection)
      : undefined;
  const hash = createHash('sha256');
  const text = new ManifestText(snap, (t) => hash.update(t));
  const dbs = new Map<string, SnapshotDatabase>((snap.databases ?? []).map((d) => [d.path, d]));
  const seenDbs = new Set<string>();
  let entries = 0;
  let complete = true;
  try {
    for await (const e of readTree(repo, snap.tree)) {
      throwIfAborted(deps.signal);
      const seq = entries++;
      text.project(e);
      if (e.kind === 'dir') {
        counts.dirs++;
        continue;
      }
      // a database is one of the files, as backup and list count them
      counts.files++;
      if (e.kind === 'db') {
        counts.databases++;
        seenDbs.add(e.path);
        for (const p of databaseRecordProblems(e, dbs.get(e.path), snap, backupId)) deps.onProblem(p);
      }
      counts.bytes += e.size ?? 0;
      let missing = 0;
      let firstMissing = '';
      const located: Location[] = [];
      for (const id of e.chunks ?? []) {
        counts.blobs++;
        const ie = repo.index.get(id);
        if (ie === undefined) {
          if (missing++ === 0) firstMissing = id;
        } else {
          usePack(ie.pack, ie.offset + ie.length, e.path);
          located.push(ie);
        }
      }
      if (missing > 0) {
        deps.onProblem(missingChunksProblem(e, missing, firstMissing, backupId, repo.whyMissing(firstMissing)));
      }
      // a file with chunks already known to be missing is reported once, here, and not read
      const readable = missing === 0 ? { entry: plannedEntry(e), at: located } : undefined;
      const picked = draw === undefined || draw.draw(e.path, e.size ?? 0, { seq, readable });
      if (picked && readable !== undefined) planner?.addFile(seq, readable.entry, readable.at);
      deps.progress.walked(counts.files, counts.bytes, e.path);
    }
  } catch (err) {
    deps.onProblem(problemFromError('tree', err, { prefix: `backup ${backupId}: file list`, backupId }));
    complete = false;
  }
  let drawn: TreeWalk['drawn'];
  if (draw !== undefined) {
    const fallback = draw.fallback();
    const readable = fallback?.item.readable;
    if (fallback !== undefined && readable !== undefined)
      planner?.addFile(fallback.item.seq, readable.entry, readable.at);
    drawn = {
      files: draw.selectedFiles,
      bytes: draw.selectedBytes,
      ...(fallback === undefined ? {} : { fallbackPath: fallback.path }),
    };
  }
  const walk: TreeWalk = { complete, entries, counts, packs, planner, manifest: undefined };
  if (drawn !== undefined) walk.drawn = drawn;
  if (!complete) return walk;
  for (const p of absentDatabaseProblems(dbs.keys(), seenDbs, backupId)) deps.onProblem(p);
  return { ...walk, manifest: { text, hash } };
}

/** The packs of a backup as the repository has them: their sizes, and those missing or too short. */
export interface PackStats {
  sizes: Map<string, number>;
  bad: Set<string>;
  /** Of `bad`, those that are not there at all. */
  missing: Set<string>;
}

/** Every pack the backup needs exists and is long enough for its blobs: looked at, not read. */
export async function statPacks(
  backend: Backend,
  packs: ReadonlyMap<string, PackUse>,
  backupId: string,
  deps: StageDeps & { progress: Pick<VerifyProgress, 'statted'> },
): Promise<PackStats> {
  const stats: PackStats = { sizes: new Map(), bad: new Set(), missing: new Set() };
  let done = 0;
  await forEachConcurrent([...packs], 8, async ([name, use]) => {
    throwIfAborted(deps.signal);
    let stat: PackStat;
    try {
      const { size } = await backend.stat({ type: 'data', name });
      stats.sizes.set(name, size);
      stat = { size };
    } catch (err) {
      stat = err instanceof FoleBackupError && err.code === 'NOT_FOUND' ? { missing: true } : { error: err };
    }
    const judged = judgePackStat(name, use, stat, backupId);
    if (judged.bad) stats.bad.add(name);
    if ('missing' in stat) stats.missing.add(name);
    if (judged.problem !== undefined) deps.onProblem(judged.problem);
    deps.progress.statted(++done, packs.size);
  });
  return stats;
}

/**
 * The second half of manifest.json (the full file list), from a second walk
 * over the tree the first walk validated. Returns the SHA-256 of the whole
 * manifest.json, or undefined when it did not render.
 */
export async function renderFileList(
  repo: BlobReader,
  backupId: string,
  snap: Snapshot,
  manifest: HalfManifest,
  deps: StageDeps,
): Promise<string | undefined> {
  try {
    manifest.text.startFileList();
    for await (const e of rereadTree(repo, snap.tree)) {
      throwIfAborted(deps.signal);
      manifest.text.listed(e);
    }
    manifest.text.end();
    return manifest.hash.digest('hex');
  } catch (err) {
    deps.onProblem(
      problemFromError('manifest', err, { prefix: `render manifest.json of backup ${backupId}`, backupId }),
    );
    return undefined;
  }
}

function addTo<T>(m: Map<string, T[]>, key: string, value: T): void {
  const list = m.get(key);
  if (list === undefined) m.set(key, [value]);
  else list.push(value);
}

/** What the read-data pass read: the pack checks, and the outcome of every file checked as a whole. */
export interface DataRead {
  checks: PackChecks;
  outcomes: AssemblyOutcome[];
}

/**
 * Read and check the planned data: every pack once (check-packs.ts), files
 * of several chunks and databases put together (assembly.ts). Nothing found
 * wrong is thrown: it is in what this returns. An abort stops the workers
 * (`pool` is closed) and removes the scratch databases before it is thrown.
 */
export async function readData(
  repo: BlobReader,
  plan: ReadPlan,
  deps: {
    pool: PackPool;
    /** Whole packs (read-data) or only the planned blobs' ranges (a subset). */
    whole: boolean;
    /** Pack sizes from their stat (the memory budget; the progress total). */
    packSizes: ReadonlyMap<string, number>;
    /** Packs read and checked at once (default: check-packs.ts). */
    maxPacks?: number | undefined;
    /** A new file in the private scratch directory (scratch-dir.ts). */
    scratchFile: () => Promise<string>;
    signal?: AbortSignal | undefined;
    progress: Pick<VerifyProgress, 'read'>;
  },
): Promise<DataRead> {
  const { pool } = deps;
  // one database check at a time (the packs go on meanwhile): integrity_check reads the whole
  // file through SQLite's cache or a memory map, so several at once would add up at the peak
  let dbCheck: Promise<unknown> = Promise.resolve();
  const host: ScratchHost = {
    scratchFile: deps.scratchFile,
    checkDatabase: (file, expect) => {
      const next = dbCheck.then(() => pool.checkDatabase(file, expect));
      dbCheck = next.catch(() => undefined);
      return next;
    },
  };
  const files = new Map<string, HashedFile[]>();
  const databases = new Map<string, ScratchDatabase[]>();
  const assemblies: (HashedFile | ScratchDatabase)[] = [];
  for (const a of plan.assemblies) {
    const one = a.kind === 'db' ? new ScratchDatabase(a, host) : new HashedFile(a);
    assemblies.push(one);
    for (const id of new Set(a.chunks)) {
      if (one instanceof ScratchDatabase) addTo(databases, id, one);
      else addTo(files, id, one);
    }
  }
  const total = plan.tasks.length;
  const totalBytes = plan.tasks.reduce((sum, t) => sum + (deps.packSizes.get(t.pack) ?? 0), 0);
  let done = 0;
  let bytes = 0;
  try {
    const checks = await checkPacks(plan, {
      repo,
      whole: deps.whole,
      pool,
      packSize: (pack) => deps.packSizes.get(pack) ?? repo.config.packSize,
      maxPacks: deps.maxPacks,
      files,
      databases,
      signal: deps.signal,
      onTask: (t, read) => {
        bytes += read;
        deps.progress.read({ done: ++done, total, bytes, totalBytes, pack: t.pack });
      },
    });
    return { checks, outcomes: await Promise.all(assemblies.map((a) => a.done)) };
  } catch (err) {
    // only an abort gets here: stop the workers before the scratch files go
    await pool.close();
    await Promise.all(assemblies.map((a) => (a instanceof ScratchDatabase ? a.abandon() : undefined)));
    throw err;
  }
}

/**
 * Walk a validated tree again, up to `limit` entries, and return the entries
 * `judge` finds something wrong with, with their position in the tree. A
 * damaged file list ends the walk early: `failure` says why.
 */
export async function walkAgain<R>(
  repo: BlobReader,
  tree: readonly string[],
  limit: number,
  judge: (e: TreeEntry) => R | undefined,
  signal: AbortSignal | undefined,
): Promise<{ found: { seq: number; entry: TreeEntry; result: R }[]; failure?: { error: unknown } }> {
  const found: { seq: number; entry: TreeEntry; result: R }[] = [];
  try {
    let seq = 0;
    for await (const entry of rereadTree(repo, tree, limit)) {
      throwIfAborted(signal);
      const at = seq++;
      const result = judge(entry);
      if (result !== undefined) found.push({ seq: at, entry, result });
    }
    return { found };
  } catch (err) {
    if (isAbort(err)) throw err;
    return { found, failure: { error: err } };
  }
}
