/**
 * Verifying one backup (spec §14): can it be restored, byte for byte?
 *
 *   resolve the backup id; take a shared repository lock
 *   manifest   load the snapshot object (decrypts, validates)      → MISSING_MANIFEST
 *   index      load every index file
 *   tree       walk the tree with readTree, which validates every entry, its
 *              order and its chunk list; every chunk must be in the index;
 *              the snapshot's database list must match the tree. The same
 *              walk renders the first half of manifest.json and plans what
 *              read-data reads (read-plan.ts)
 *   packs      stat every pack the backup needs: present, and long enough for
 *              the blobs the index places in it — without reading data
 *   render     the second half of manifest.json, from a second, cheaper walk
 *              over the already validated tree (reread-tree.ts); its SHA-256
 *              fingerprints it. Runs while read-data reads the packs
 *   read-data  (--read-data) read every pack the backup needs once, in full,
 *              and check its SHA-256 against its name; decrypt and hash every
 *              chunk the backup needs (on worker threads: check-packs.ts);
 *              put every file of several chunks and every database together
 *              in order to check its size and SHA-256, writing each database
 *              to a scratch file in a private temporary directory for
 *              PRAGMA integrity_check (assembly.ts)  → CHECKSUM_MISMATCH,
 *                                                      DB_INTEGRITY_ERROR
 *              (--read-data-subset N%) the same for a deterministic random N% of
 *              the files (subset.ts), reading only their chunks
 *
 * Nothing stops at the first problem: each is recorded (findings.ts) and the
 * walk goes on, so the report names everything wrong, up to the limit. Only an
 * unknown backup id (there is nothing to verify), a lock held by an exclusive
 * operation, and an abort end the run with an error instead of a report. Files
 * whose chunks are already known to be missing are not read again in the
 * read-data pass: they are reported once. Read-data findings are reported in a
 * fixed order whatever order the packs were checked in: damaged packs (in the
 * order the backup needs them), then file-list blobs, then files in tree order.
 */
import { forEachConcurrent } from '../concurrency/for-each.js';
import { createHash, type Hash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FoleBackupError, StopError, throwIfAborted } from '../errors.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import { RepositoryLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import type { Snapshot, SnapshotDatabase, TreeEntry } from '../snapshot/snapshot.js';
import { loadSnapshot, resolveBackupId } from '../snapshot/store.js';
import { readTree } from '../snapshot/tree.js';
import { HashedFile, ScratchDatabase, scratchError, type AssemblyOutcome, type ScratchHost } from './assembly.js';
import { checkPacks, type PackChecks } from './check-packs.js';
import { DEFAULT_MAX_PROBLEMS, Findings, isAbort, verdictFor, type ReportBase } from './findings.js';
import { ManifestText } from '../manifest/manifest-text.js';
import { MIN_PACK_TAIL, short } from './pack-bytes.js';
import { PackPool } from './pack-pool.js';
import { ReadPlanner, type Location, type PlannedEntry, type ReadPlan } from './read-plan.js';
import { rereadTree } from './reread-tree.js';
import { subsetScore } from './subset.js';

export interface VerifyOptions {
  /**
   * Read the data too: `true` for every file, `{ percent, seed }` for a
   * deterministic random share of the files (seed defaults to the backup id).
   * Default: structure only, no data read.
   */
  readData?: boolean | { percent: number; seed?: string };
  /** Problems listed in full (all are counted). Default 20. */
  maxProblems?: number;
  /**
   * Where the private scratch directory for database checks is made (default:
   * OS temp dir). Databases are checked as their packs are read, several at
   * once: it needs room for the databases whose packs are read in the same
   * stretch (at most all of the backup's databases).
   */
  scratchParent?: string;
  /** Take a shared repository lock (default true). Pass false when the caller holds one, or for a read-only repository. */
  lock?: boolean;
  /** Packs read and checked at once (default 4). */
  concurrency?: number;
  /** Worker threads that check packs and databases (default: one per core, at most 4). */
  threads?: number;
  reporter?: ProgressReporter;
  signal?: AbortSignal;
}

export type VerifyLevel = 'manifest' | 'index' | 'tree' | 'packs' | 'render' | 'read-data' | 'read-data-subset';

export interface VerifyCounts {
  dirs: number;
  files: number;
  databases: number;
  /** Content bytes the backup records (files + database snapshots). */
  bytes: number;
  /** Blob references checked against the index (tree blobs and chunks; a deduplicated chunk counts each time). */
  blobs: number;
  /** Distinct packs the backup needs. */
  packs: number;
  /** Files and databases whose content was read and hashed. */
  filesRead: number;
  /** Databases restored to a scratch file and integrity-checked. */
  databasesChecked: number;
  /** Content bytes decrypted and hashed. */
  bytesVerified: number;
  /** Bytes read from the repository (whole packs, or blob ranges for a subset). */
  bytesRead: number;
}

export interface VerifyReport extends ReportBase {
  kind: 'verify';
  backupId: string;
  repository: string;
  readData: 'none' | 'all' | 'subset';
  /** How the subset was chosen (--read-data-subset). */
  subset?: { percent: number; seed: string; selectedFiles: number; selectedBytes: number };
  /** SHA-256 of the rendered spec manifest.json, when it rendered. */
  manifestSha256?: string;
  counts: VerifyCounts;
}

const DB_SCRATCH_PREFIX = 'fole-verify-';

/** What read-data found, reported once the render is done (its level comes first). */
interface ReadResult {
  checks: PackChecks;
  /** Problems of files, in tree order. */
  fileProblems: (() => void)[];
  /** The tree was walked to its end. */
  complete: boolean;
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

function addTo<T>(m: Map<string, T[]>, key: string, value: T): void {
  const list = m.get(key);
  if (list === undefined) m.set(key, [value]);
  else list.push(value);
}

/** Where a pack's needed blobs end, and who needs it (for messages). */
interface PackUse {
  end: number;
  refs: number;
  /** The first file that needs it (none when only the file list does). */
  firstPath: string | undefined;
}

/**
 * Verify one backup. Returns a report (ok or not); throws only when there is
 * no such backup (StopError MISSING_MANIFEST / AMBIGUOUS_INTENT from
 * resolveBackupId), when the repository is locked exclusively, or on abort.
 */
export async function verifyBackup(repo: Repository, ref: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const backupId = await resolveBackupId(repo, ref);
  const run = new Verification(repo, backupId, opts);
  const lock =
    opts.lock === false
      ? undefined
      : await RepositoryLock.acquireForReading(repo, {
          operation: 'verify',
          onUnlocked: (why) => (opts.reporter ?? silentReporter).warn(why),
          onStale: (l) =>
            run.findings.note({
              kind: 'stale-lock',
              object: `locks/${l.name}`,
              message: `ignored stale lock of ${l.operation} by ${l.username}@${l.host} pid ${l.pid}: ${l.stale}`,
            }),
        });
  try {
    await run.run();
  } finally {
    await run.cleanup();
    await lock?.release();
  }
  return run.report();
}

/** The error a verify report amounts to (undefined when ok); see findings.ts. */
export function verifyVerdict(r: VerifyReport): FoleBackupError | undefined {
  return verdictFor(r, {
    subject: `backup ${r.backupId}`,
    damageHint:
      'do not restore from this backup; choose another one (`fole-backup list`) and run `fole-backup check --read-data` to see what else is affected — never edit a backup by hand',
    noSpaceHint:
      "the scratch copies of the databases (checked with integrity_check, then removed) need room for up to all of the backup's databases at once: free space there, or give --scratch-dir a directory on a disk with room, and run it again",
  });
}

class Verification {
  readonly findings: Findings;
  private readonly started = Date.now();
  private readonly startedAt = new Date(this.started).toISOString();
  private readonly reporter: ProgressReporter;
  private readonly signal: AbortSignal | undefined;
  private readonly mode: 'none' | 'all' | 'subset';
  private readonly percent: number;
  private readonly seed: string;
  private readonly levels: VerifyLevel[] = [];
  private readonly counts: VerifyCounts = {
    dirs: 0,
    files: 0,
    databases: 0,
    bytes: 0,
    blobs: 0,
    packs: 0,
    filesRead: 0,
    databasesChecked: 0,
    bytesVerified: 0,
    bytesRead: 0,
  };
  private readonly packs = new Map<string, PackUse>();
  /** Sizes of the packs the backup needs, from their stat. */
  private readonly packSizes = new Map<string, number>();
  /** Packs found missing or too short by stat: files that need them are not read again. */
  private readonly badPacks = new Set<string>();
  private selectedFiles = 0;
  private selectedBytes = 0;
  /** The lowest-scoring file, taken when the subset draw picks nothing. */
  private fallback:
    | {
        path: string;
        score: number;
        size: number;
        seq: number;
        readable: { entry: PlannedEntry; at: Location[] } | undefined;
      }
    | undefined;
  /** Tree entries the first walk validated (a second walk stops there). */
  private walked = 0;
  /** What read-data will read (planned during the first walk). */
  private planner: ReadPlanner | undefined;
  /** manifest.json as it is rendered, and its SHA-256 once done. */
  private manifestText: { text: ManifestText; hash: Hash } | undefined;
  private manifestSha256: string | undefined;
  private scratch: Promise<string> | undefined;
  private dbSeq = 0;

  constructor(
    private readonly repo: Repository,
    private readonly backupId: string,
    private readonly opts: VerifyOptions,
  ) {
    this.reporter = opts.reporter ?? silentReporter;
    this.signal = opts.signal;
    this.findings = new Findings(opts.maxProblems ?? DEFAULT_MAX_PROBLEMS, this.reporter);
    const rd = opts.readData;
    this.mode = rd === undefined || rd === false ? 'none' : rd === true ? 'all' : 'subset';
    this.percent = typeof rd === 'object' ? rd.percent : 100;
    this.seed = typeof rd === 'object' && rd.seed !== undefined ? rd.seed : backupId;
    if (this.mode === 'subset' && !(this.percent > 0 && this.percent <= 100)) {
      throw new FoleBackupError('USAGE', `read-data subset must be a percentage in (0, 100], not ${this.percent}`);
    }
  }

  async run(): Promise<void> {
    this.reporter.phase('verify manifest');
    let snap: Snapshot;
    try {
      snap = await loadSnapshot(this.repo, this.backupId);
    } catch (err) {
      this.findings.fromError('manifest', err, { object: `snapshots/${this.backupId}`, backupId: this.backupId });
      return;
    }
    this.levels.push('manifest');

    this.reporter.phase('load index');
    try {
      await this.repo.loadIndex(this.signal);
    } catch (err) {
      // every blob is found through the index: without all of it, restore cannot run either
      this.findings.fromError('index', err, {
        prefix: 'load the repository index (run `fole-backup check` for details)',
      });
      return;
    }
    this.levels.push('index');

    // the workers start while the tree is walked
    const pool = this.mode === 'none' ? undefined : new PackPool(this.repo.blobCipher(), this.opts.threads);
    try {
      const treeOk = await this.walkTree(snap);
      if (treeOk) this.levels.push('tree');
      await this.statPacks();
      this.levels.push('packs');
      const rendering = treeOk ? this.render(snap) : Promise.resolve(false);
      // awaited below, after the read; an abort may reject it before that, which must not count as unhandled
      rendering.catch(() => undefined);
      if (pool === undefined) {
        if (await rendering) this.levels.push('render');
        return;
      }
      // the render's second walk runs while the packs are read; its findings come first, as its level does
      let read: ReadResult;
      try {
        read = await this.readData(snap, treeOk, pool);
      } finally {
        if (await rendering) this.levels.push('render');
      }
      this.recordRead(snap, read);
    } finally {
      await pool?.close();
    }
  }

  /** Whether `path` is read in the read-data pass. */
  private selected(path: string): boolean {
    if (this.mode === 'all') return true;
    if (this.mode === 'none') return false;
    return subsetScore(this.seed, path) < this.percent / 100 || path === this.fallback?.path;
  }

  private usePack(pack: string, end: number, path: string | undefined): void {
    const u = this.packs.get(pack);
    if (u === undefined) this.packs.set(pack, { end, refs: 1, firstPath: path });
    else {
      u.end = Math.max(u.end, end);
      u.refs++;
      u.firstPath ??= path;
    }
  }

  /**
   * The first walk: the tree is readable and valid, every blob is in the
   * index; renders the first half of manifest.json and plans read-data on the
   * way. Returns whether the whole tree was read.
   */
  private async walkTree(snap: Snapshot): Promise<boolean> {
    this.reporter.phase('verify tree');
    for (const id of snap.tree) {
      this.counts.blobs++;
      const e = this.repo.index.get(id);
      if (e !== undefined) this.usePack(e.pack, e.offset + e.length, undefined);
    }
    const planner = this.mode === 'none' ? undefined : new ReadPlanner((id) => this.repo.index.get(id));
    // the packs holding the file list are part of the backup too
    if (this.mode === 'all') planner?.addBlobs(snap.tree);
    const hash = createHash('sha256');
    const text = new ManifestText(snap, (t) => hash.update(t));
    const dbs = new Map<string, SnapshotDatabase>((snap.databases ?? []).map((d) => [d.path, d]));
    const seenDbs = new Set<string>();
    const subsetPick = this.mode === 'subset';
    let complete = true;
    try {
      for await (const e of readTree(this.repo, snap.tree)) {
        throwIfAborted(this.signal);
        const seq = this.walked++;
        text.project(e);
        if (e.kind === 'dir') {
          this.counts.dirs++;
          continue;
        }
        if (e.kind === 'db') {
          this.counts.databases++;
          seenDbs.add(e.path);
          this.checkDbRecord(e, dbs.get(e.path), snap);
        } else {
          this.counts.files++;
        }
        this.counts.bytes += e.size ?? 0;
        let missing = 0;
        let firstMissing = '';
        const located: Location[] = [];
        for (const id of e.chunks ?? []) {
          this.counts.blobs++;
          const ie = this.repo.index.get(id);
          if (ie === undefined) {
            if (missing++ === 0) firstMissing = id;
          } else {
            this.usePack(ie.pack, ie.offset + ie.length, e.path);
            located.push(ie);
          }
        }
        if (missing > 0) {
          this.findings.problem({
            code: 'CHECKSUM_MISMATCH',
            kind: e.kind === 'db' ? 'database' : 'file',
            path: e.path,
            backupId: this.backupId,
            message: `${e.path}: ${missing} of ${e.chunks?.length ?? 0} chunks are not in the repository index (first ${short(firstMissing)})`,
          });
        }
        // a file with chunks already known to be missing is reported once, here, and not read
        const readable = missing === 0 ? { entry: plannedEntry(e), at: located } : undefined;
        if (subsetPick) {
          const score = subsetScore(this.seed, e.path);
          if (score < this.percent / 100) {
            this.selectedFiles++;
            this.selectedBytes += e.size ?? 0;
            if (readable !== undefined) planner?.addFile(seq, readable.entry, readable.at);
          }
          if (this.fallback === undefined || score < this.fallback.score)
            this.fallback = { path: e.path, score, size: e.size ?? 0, seq, readable };
        } else if (readable !== undefined) {
          planner?.addFile(seq, readable.entry, readable.at);
        }
        this.reporter.progress({
          files: this.counts.files + this.counts.databases,
          bytes: this.counts.bytes,
          current: e.path,
        });
      }
    } catch (err) {
      this.findings.fromError('tree', err, { prefix: `backup ${this.backupId}: file list`, backupId: this.backupId });
      complete = false;
    }
    if (subsetPick) {
      if (this.selectedFiles === 0 && this.fallback !== undefined) {
        this.selectedFiles = 1;
        this.selectedBytes = this.fallback.size;
        if (this.fallback.readable !== undefined)
          planner?.addFile(this.fallback.seq, this.fallback.readable.entry, this.fallback.readable.at);
      } else {
        this.fallback = undefined;
      }
    }
    this.planner = planner;
    if (!complete) return false;
    this.manifestText = { text, hash };
    for (const d of dbs.keys()) {
      if (!seenDbs.has(d)) {
        this.findings.problem({
          code: 'MISSING_MANIFEST',
          kind: 'manifest',
          path: d,
          backupId: this.backupId,
          object: `snapshots/${this.backupId}`,
          message: `${d}: listed among the backup's databases but absent from its file list`,
        });
      }
    }
    return true;
  }

  /** A database entry of the tree must agree with the snapshot's database list and manifest head. */
  private checkDbRecord(e: TreeEntry, d: SnapshotDatabase | undefined, snap: Snapshot): void {
    const problem = (why: string): void =>
      this.findings.problem({
        code: 'MISSING_MANIFEST',
        kind: 'manifest',
        path: e.path,
        backupId: this.backupId,
        object: `snapshots/${this.backupId}`,
        message: `${e.path}: ${why}`,
      });
    if (d === undefined) problem("a database in the file list that the backup's database list does not have");
    else if (d.sha256 !== e.sha256 || d.size !== e.size)
      problem('the database list and the file list disagree about its size or SHA-256');
    if (e.path === 'core/core.db' && snap.manifest.core.coreDb !== `sha256:${e.sha256 ?? ''}`) {
      problem("the manifest's core.coreDb is not the SHA-256 of the stored core database");
    }
  }

  /** Every pack the backup needs exists and is long enough for its blobs. */
  private async statPacks(): Promise<void> {
    this.reporter.phase('verify packs');
    this.counts.packs = this.packs.size;
    let done = 0;
    await forEachConcurrent([...this.packs], 8, async ([name, use]) => {
      throwIfAborted(this.signal);
      const where = {
        object: `data/${name}`,
        backupId: this.backupId,
        ...(use.firstPath === undefined ? {} : { path: use.firstPath }),
      };
      const users = `${use.refs} blob references of this backup are in it (first: ${use.firstPath ?? 'its file list'})`;
      try {
        const { size } = await this.repo.backend.stat({ type: 'data', name });
        this.packSizes.set(name, size);
        if (size < use.end + MIN_PACK_TAIL) {
          this.badPacks.add(name);
          this.findings.problem({
            code: 'CHECKSUM_MISMATCH',
            kind: 'pack',
            ...where,
            message: `pack ${short(name)} is ${size} bytes, too short for the blobs the index places in it (at least ${use.end + MIN_PACK_TAIL}); ${users}`,
          });
        }
      } catch (err) {
        if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') {
          this.badPacks.add(name);
          this.findings.problem({
            code: 'CHECKSUM_MISMATCH',
            kind: 'pack',
            ...where,
            message: `pack ${short(name)} is missing from the repository; ${users}`,
          });
        } else {
          this.findings.fromError('pack', err, { ...where, prefix: `stat pack ${short(name)}` });
        }
      }
      this.reporter.progress({ files: ++done, bytes: 0, totalFiles: this.packs.size });
    });
  }

  /** The second half of manifest.json (the full file list), from a second walk. Returns whether it rendered. */
  private async render(snap: Snapshot): Promise<boolean> {
    const m = this.manifestText;
    if (m === undefined) return false;
    this.reporter.phase('render manifest');
    try {
      m.text.startFileList();
      for await (const e of rereadTree(this.repo, snap.tree)) {
        throwIfAborted(this.signal);
        m.text.listed(e);
      }
      m.text.end();
      this.manifestSha256 = m.hash.digest('hex');
      return true;
    } catch (err) {
      this.findings.fromError('manifest', err, {
        prefix: `render manifest.json of backup ${this.backupId}`,
        backupId: this.backupId,
      });
      return false;
    }
  }

  /**
   * Read and check the planned data: every pack once (check-packs.ts), files
   * of several chunks and databases put together (assembly.ts). Returns what
   * was found, reported by recordRead() once the render is done.
   */
  private async readData(snap: Snapshot, treeOk: boolean, pool: PackPool): Promise<ReadResult> {
    const whole = this.mode === 'all';
    const plan = (this.planner as ReadPlanner).finish(this.badPacks);
    this.planner = undefined;
    this.reporter.phase(whole ? 'read data' : `read data (${this.percent}% subset)`);
    // one database check at a time (the packs go on meanwhile): integrity_check reads the whole
    // file through SQLite's cache or a memory map, so several at once would add up at the peak
    let dbCheck: Promise<unknown> = Promise.resolve();
    const host: ScratchHost = {
      scratchFile: async () => join(await this.scratchDir(), `db-${++this.dbSeq}.sqlite`),
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
    const totalFiles = plan.tasks.length;
    const totalBytes = plan.tasks.reduce((sum, t) => sum + (this.packSizes.get(t.pack) ?? 0), 0);
    let doneFiles = 0;
    let doneBytes = 0;
    let checks: PackChecks;
    let outcomes: AssemblyOutcome[];
    try {
      checks = await checkPacks(plan, {
        repo: this.repo,
        whole,
        pool,
        packSize: (pack) => this.packSizes.get(pack) ?? this.repo.config.packSize,
        maxPacks: this.opts.concurrency,
        files,
        databases,
        signal: this.signal,
        onTask: (t, bytes) => {
          doneBytes += bytes;
          this.reporter.progress({
            files: ++doneFiles,
            bytes: doneBytes,
            totalFiles,
            ...(whole ? { totalBytes } : {}),
            current: short(t.pack),
          });
        },
      });
      outcomes = await Promise.all(assemblies.map((a) => a.done));
    } catch (err) {
      // only an abort gets here: stop the workers before the scratch files go
      await pool.close();
      await Promise.all(assemblies.map((a) => (a instanceof ScratchDatabase ? a.abandon() : undefined)));
      throw err;
    }
    this.counts.bytesRead = checks.bytesRead;
    return this.settle(snap, treeOk, plan, checks, outcomes);
  }

  /**
   * Turn what the pack checks found into per-file results: counts, and the
   * problems of the files they affect (in tree order). A one-chunk file is as
   * good as its chunk, so only when a chunk failed (or opened to another
   * length than the index says) is the tree walked again to find its files.
   */
  private async settle(
    snap: Snapshot,
    treeOk: boolean,
    plan: ReadPlan,
    checks: PackChecks,
    outcomes: AssemblyOutcome[],
  ): Promise<ReadResult> {
    const fileProblems: { seq: number; report: () => void }[] = [];
    this.counts.filesRead += plan.emptyFiles;
    for (const t of plan.tasks) {
      this.counts.filesRead += t.files;
      this.counts.bytesVerified += t.bytes;
    }
    for (const o of outcomes) {
      const { path, kind, seq } = o.plan;
      const thing = kind === 'db' ? 'database' : 'file';
      this.counts.bytesVerified += o.bytesVerified;
      if (o.contentOk) this.counts.filesRead++;
      if (o.checked) this.counts.databasesChecked++;
      if (o.error !== undefined) {
        const err = o.error;
        fileProblems.push({
          seq,
          report: () => this.findings.fromError(thing, err, { prefix: path, path, backupId: this.backupId }),
        });
      } else if (o.integrity !== undefined) {
        const lines = o.integrity;
        fileProblems.push({
          seq,
          report: () =>
            this.findings.problem({
              code: 'DB_INTEGRITY_ERROR',
              kind: 'database',
              path,
              backupId: this.backupId,
              message: `${path}: integrity_check of the restored copy is not ok: ${lines.slice(0, 3).join('; ')}`,
            }),
        });
      }
    }
    let complete = treeOk;
    if (checks.failed.size > 0 || checks.lengths.size > 0) {
      try {
        let seq = 0;
        for await (const e of rereadTree(this.repo, snap.tree, this.walked)) {
          throwIfAborted(this.signal);
          const at = seq++;
          const p = this.oneChunkProblem(e, checks);
          if (p === undefined) continue;
          this.counts.filesRead--;
          this.counts.bytesVerified += p.verified - (e.size ?? 0);
          fileProblems.push({
            seq: at,
            report: () =>
              this.findings.fromError('file', p.error, { prefix: e.path, path: e.path, backupId: this.backupId }),
          });
        }
      } catch (err) {
        if (isAbort(err)) throw err;
        complete = false;
        const report = (): void =>
          this.findings.fromError('tree', err, {
            prefix: `backup ${this.backupId}: file list`,
            backupId: this.backupId,
          });
        fileProblems.push({ seq: Infinity, report });
      }
    }
    fileProblems.sort((a, b) => a.seq - b.seq);
    return { checks, fileProblems: fileProblems.map((p) => p.report), complete };
  }

  /** What is wrong with a planned one-chunk file, given the pack checks; undefined when nothing. */
  private oneChunkProblem(e: TreeEntry, checks: PackChecks): { error: unknown; verified: number } | undefined {
    const id = e.chunks?.[0];
    if (e.kind !== 'file' || e.chunks?.length !== 1 || id === undefined || !this.selected(e.path)) return undefined;
    const ie = this.repo.index.get(id);
    if (ie === undefined || this.badPacks.has(ie.pack)) return undefined;
    const failed = checks.failed.get(id);
    if (failed !== undefined) return { error: failed, verified: 0 };
    const length = checks.lengths.get(id) ?? ie.rawLength;
    if (length !== e.size)
      return {
        error: new StopError('CHECKSUM_MISMATCH', `content is ${length} bytes, the backup recorded ${e.size ?? 0}`),
        verified: length,
      };
    // the tree requires a one-chunk file's SHA-256 to be its chunk's id, which opening the chunk checked
    if (id !== e.sha256)
      return {
        error: new StopError('CHECKSUM_MISMATCH', 'SHA-256 of the content does not match the manifest'),
        verified: length,
      };
    return undefined;
  }

  /** Record what read-data found: damaged packs, then file-list blobs, then files in tree order. */
  private recordRead(snap: Snapshot, read: ReadResult): void {
    for (const p of read.checks.packProblems) {
      const use = this.packs.get(p.pack);
      this.findings.fromError('pack', p.error, {
        object: `data/${p.pack}`,
        backupId: this.backupId,
        ...(use?.firstPath === undefined ? {} : { path: use.firstPath }),
        ...(p.prefix === undefined ? {} : { prefix: p.prefix }),
      });
    }
    for (const id of this.mode === 'all' ? new Set(snap.tree) : []) {
      const err = read.checks.failed.get(id);
      if (err !== undefined)
        this.findings.fromError('tree', err, { prefix: `file list blob ${short(id)}`, backupId: this.backupId });
    }
    for (const report of read.fileProblems) report();
    if (read.complete) this.levels.push(this.mode === 'all' ? 'read-data' : 'read-data-subset');
  }

  /** The private scratch directory, made once (a failure is tried again by the next database). */
  private scratchDir(): Promise<string> {
    this.scratch ??= (async () => {
      const parent = this.opts.scratchParent ?? tmpdir();
      try {
        // mkdtemp makes it 0700: nobody else reads the decrypted copies
        return await mkdtemp(join(parent, DB_SCRATCH_PREFIX));
      } catch (err) {
        this.scratch = undefined;
        throw scratchError('create', join(parent, `${DB_SCRATCH_PREFIX}*`), err);
      }
    })();
    return this.scratch;
  }

  /** Remove the scratch directory. */
  async cleanup(): Promise<void> {
    const dir = await this.scratch?.catch(() => undefined);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }

  report(): VerifyReport {
    const { ok, ...found } = this.findings.summary();
    const r: VerifyReport = {
      kind: 'verify',
      ok,
      backupId: this.backupId,
      repository: this.repo.backend.location,
      readData: this.mode,
      levels: [...this.levels],
      counts: { ...this.counts },
      startedAt: this.startedAt,
      durationMs: Date.now() - this.started,
      ...found,
    };
    if (this.mode === 'subset')
      r.subset = {
        percent: this.percent,
        seed: this.seed,
        selectedFiles: this.selectedFiles,
        selectedBytes: this.selectedBytes,
      };
    if (this.manifestSha256 !== undefined) r.manifestSha256 = this.manifestSha256;
    return r;
  }
}
