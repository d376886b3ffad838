/**
 * Verifying one backup (spec §14): can it be restored, byte for byte?
 *
 *   resolve the backup id; take a shared repository lock
 *   manifest   load the snapshot object (decrypts, validates)      → MISSING_MANIFEST
 *   index      load every index file
 *   tree       walk the tree with readTree, which validates every entry, its
 *              order and its chunk list; every chunk must be in the index;
 *              the snapshot's database list must match the tree
 *   packs      stat every pack the backup needs: present, and long enough for
 *              the blobs the index places in it — without reading data
 *   render     render the spec manifest.json once into a hash (it renders, and
 *              its SHA-256 fingerprints it)
 *   read-data  (--read-data) read every pack the backup needs in full and check
 *              its SHA-256 against its name; decrypt and hash every chunk, then
 *              every file's size and SHA-256; write every database to a scratch
 *              file in a private temporary directory and run
 *              PRAGMA integrity_check on it                     → CHECKSUM_MISMATCH,
 *                                                                 DB_INTEGRITY_ERROR
 *              (--read-data-subset N%) the same for a deterministic random N% of
 *              the files (subset.ts), reading only their chunks
 *
 * Nothing stops at the first problem: each is recorded (findings.ts) and the
 * walk goes on, so the report names everything wrong, up to the limit. Only an
 * unknown backup id (there is nothing to verify), a lock held by an exclusive
 * operation, and an abort end the run with an error instead of a report. Files
 * whose chunks are already known to be missing are not read again in the
 * read-data pass: they are reported once.
 */
import { forEachConcurrent } from '../concurrency/for-each.js';
import { createHash } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FoleBackupError, StopError, fsError, throwIfAborted } from '../errors.js';
import { renderManifest } from '../manifest/manifest.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import { RepositoryLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import type { Snapshot, SnapshotDatabase, TreeEntry } from '../snapshot/snapshot.js';
import { loadSnapshot, resolveBackupId } from '../snapshot/store.js';
import { readTree } from '../snapshot/tree.js';
import { checkDatabaseFile, sideFilesOf } from '../sqlite/integrity.js';
import { BlobReader, MIN_PACK_TAIL, short } from './blob-reader.js';
import { DEFAULT_MAX_PROBLEMS, Findings, isAbort, verdictFor, type ReportBase } from './findings.js';
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
  /** Where the private scratch directory for database checks is made (default: OS temp dir). Needs room for the largest database. */
  scratchParent?: string;
  /** Take a shared repository lock (default true). Pass false when the caller holds one, or for a read-only repository. */
  lock?: boolean;
  /** Files read at once (default 4). Databases are checked one at a time. */
  concurrency?: number;
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
      : await RepositoryLock.acquire(repo, {
          exclusive: false,
          operation: 'verify',
          onStale: (l) => run.findings.note({ kind: 'stale-lock', object: `locks/${l.name}`, message: `ignored stale lock of ${l.operation} by ${l.username}@${l.host} pid ${l.pid}: ${l.stale}` }),
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
    dirs: 0, files: 0, databases: 0, bytes: 0, blobs: 0, packs: 0,
    filesRead: 0, databasesChecked: 0, bytesVerified: 0, bytesRead: 0,
  };
  private readonly packs = new Map<string, PackUse>();
  /** Packs found missing or too short by stat: files that need them are not read again. */
  private readonly badPacks = new Set<string>();
  private selectedFiles = 0;
  private selectedBytes = 0;
  /** The lowest-scoring file, taken when the subset draw picks nothing. */
  private fallback: { path: string; score: number; size: number } | undefined;
  private manifestSha256: string | undefined;
  private scratch: string | undefined;
  private dbQueue: Promise<void> = Promise.resolve();
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
      this.findings.fromError('index', err, { prefix: 'load the repository index (run `fole-backup check` for details)' });
      return;
    }
    this.levels.push('index');

    const treeOk = await this.walkTree(snap);
    if (treeOk) this.levels.push('tree');
    await this.statPacks();
    this.levels.push('packs');
    if (treeOk) await this.render(snap);
    if (this.mode !== 'none') await this.readData(snap, treeOk);
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

  /** Pass 1: the tree is readable and valid, every blob is in the index. Returns whether the whole tree was read. */
  private async walkTree(snap: Snapshot): Promise<boolean> {
    this.reporter.phase('verify tree');
    for (const id of snap.tree) {
      this.counts.blobs++;
      const e = this.repo.index.get(id);
      if (e !== undefined) this.usePack(e.pack, e.offset + e.length, undefined);
    }
    const dbs = new Map<string, SnapshotDatabase>((snap.databases ?? []).map((d) => [d.path, d]));
    const seenDbs = new Set<string>();
    const subsetPick = this.mode === 'subset';
    let complete = true;
    try {
      for await (const e of readTree(this.repo, snap.tree)) {
        throwIfAborted(this.signal);
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
        for (const id of e.chunks ?? []) {
          this.counts.blobs++;
          const ie = this.repo.index.get(id);
          if (ie === undefined) {
            if (missing++ === 0) firstMissing = id;
          } else {
            this.usePack(ie.pack, ie.offset + ie.length, e.path);
          }
        }
        if (missing > 0) {
          this.findings.problem({
            code: 'CHECKSUM_MISMATCH', kind: e.kind === 'db' ? 'database' : 'file', path: e.path, backupId: this.backupId,
            message: `${e.path}: ${missing} of ${e.chunks?.length ?? 0} chunks are not in the repository index (first ${short(firstMissing)})`,
          });
        }
        if (subsetPick) {
          const score = subsetScore(this.seed, e.path);
          if (score < this.percent / 100) {
            this.selectedFiles++;
            this.selectedBytes += e.size ?? 0;
          }
          if (this.fallback === undefined || score < this.fallback.score) this.fallback = { path: e.path, score, size: e.size ?? 0 };
        }
        this.reporter.progress({ files: this.counts.files + this.counts.databases, bytes: this.counts.bytes, current: e.path });
      }
    } catch (err) {
      this.findings.fromError('tree', err, { prefix: `backup ${this.backupId}: file list`, backupId: this.backupId });
      complete = false;
    }
    if (subsetPick) {
      if (this.selectedFiles === 0 && this.fallback !== undefined) {
        this.selectedFiles = 1;
        this.selectedBytes = this.fallback.size;
      } else {
        this.fallback = undefined;
      }
    }
    if (!complete) return false;
    for (const d of dbs.keys()) {
      if (!seenDbs.has(d)) {
        this.findings.problem({
          code: 'MISSING_MANIFEST', kind: 'manifest', path: d, backupId: this.backupId, object: `snapshots/${this.backupId}`,
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
        code: 'MISSING_MANIFEST', kind: 'manifest', path: e.path, backupId: this.backupId, object: `snapshots/${this.backupId}`,
        message: `${e.path}: ${why}`,
      });
    if (d === undefined) problem('a database in the file list that the backup\'s database list does not have');
    else if (d.sha256 !== e.sha256 || d.size !== e.size) problem('the database list and the file list disagree about its size or SHA-256');
    if (e.path === 'core/core.db' && snap.manifest.core.coreDb !== `sha256:${e.sha256 ?? ''}`) {
      problem('the manifest\'s core.coreDb is not the SHA-256 of the stored core database');
    }
  }

  /** Every pack the backup needs exists and is long enough for its blobs. */
  private async statPacks(): Promise<void> {
    this.reporter.phase('verify packs');
    this.counts.packs = this.packs.size;
    let done = 0;
    await forEachConcurrent([...this.packs], 8, async ([name, use]) => {
      throwIfAborted(this.signal);
      const where = { object: `data/${name}`, backupId: this.backupId, ...(use.firstPath === undefined ? {} : { path: use.firstPath }) };
      const users = `${use.refs} blob references of this backup are in it (first: ${use.firstPath ?? 'its file list'})`;
      try {
        const { size } = await this.repo.backend.stat({ type: 'data', name });
        if (size < use.end + MIN_PACK_TAIL) {
          this.badPacks.add(name);
          this.findings.problem({
            code: 'CHECKSUM_MISMATCH', kind: 'pack', ...where,
            message: `pack ${short(name)} is ${size} bytes, too short for the blobs the index places in it (at least ${use.end + MIN_PACK_TAIL}); ${users}`,
          });
        }
      } catch (err) {
        if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') {
          this.badPacks.add(name);
          this.findings.problem({
            code: 'CHECKSUM_MISMATCH', kind: 'pack', ...where,
            message: `pack ${short(name)} is missing from the repository; ${users}`,
          });
        } else {
          this.findings.fromError('pack', err, { ...where, prefix: `stat pack ${short(name)}` });
        }
      }
      this.reporter.progress({ files: ++done, bytes: 0, totalFiles: this.packs.size });
    });
  }

  /** Render the spec manifest.json once, into a hash. */
  private async render(snap: Snapshot): Promise<void> {
    this.reporter.phase('render manifest');
    const hash = createHash('sha256');
    try {
      await renderManifest(this.repo, snap, (text) => {
        throwIfAborted(this.signal);
        hash.update(text);
      });
      this.manifestSha256 = hash.digest('hex');
      this.levels.push('render');
    } catch (err) {
      this.findings.fromError('manifest', err, { prefix: `render manifest.json of backup ${this.backupId}`, backupId: this.backupId });
    }
  }

  /** Pass 2: read, decrypt and hash the selected files; integrity-check the selected databases. */
  private async readData(snap: Snapshot, treeOk: boolean): Promise<void> {
    const whole = this.mode === 'all';
    const reportedPacks = new Set(this.badPacks);
    const reader = new BlobReader(this.repo, {
      wholePacks: whole,
      onPack: (name, damage) => {
        if (damage === undefined || reportedPacks.has(name)) return;
        reportedPacks.add(name);
        const use = this.packs.get(name);
        this.findings.fromError('pack', damage, {
          object: `data/${name}`, backupId: this.backupId,
          ...(use?.firstPath === undefined ? {} : { path: use.firstPath }),
        });
      },
    });
    this.reporter.phase(whole ? 'read data' : `read data (${this.percent}% subset)`);
    const totalFiles = whole ? this.counts.files + this.counts.databases : this.selectedFiles;
    const totalBytes = whole ? this.counts.bytes : this.selectedBytes;
    let doneFiles = 0;
    let doneBytes = 0;
    const onBytes = (n: number, path: string): void => {
      doneBytes += n;
      this.reporter.progress({ files: doneFiles, bytes: doneBytes, totalFiles, totalBytes, current: path });
    };

    if (whole) {
      // the packs holding the file list are part of the backup too
      for (const id of snap.tree) {
        const ie = this.repo.index.get(id);
        if (ie === undefined || this.badPacks.has(ie.pack)) continue;
        try {
          await reader.blob(id);
        } catch (err) {
          this.findings.fromError('tree', err, { prefix: `file list blob ${short(id)}`, backupId: this.backupId });
        }
      }
    }

    const readable = (e: TreeEntry): boolean =>
      (e.chunks ?? []).every((id) => {
        const ie = this.repo.index.get(id);
        return ie !== undefined && !this.badPacks.has(ie.pack);
      });
    const work = async (e: TreeEntry): Promise<void> => {
      throwIfAborted(this.signal);
      if (e.kind === 'dir' || !this.selected(e.path)) return;
      // already reported in pass 1: reading would only say it again
      if (!readable(e)) return;
      if (e.kind === 'db') await this.serialDb(() => this.verifyDatabase(reader, e, onBytes));
      else if (await this.verifyContent(reader, e, undefined, onBytes)) this.counts.filesRead++;
      doneFiles++;
    };
    try {
      await forEachConcurrent(readTree(this.repo, snap.tree), this.opts.concurrency ?? 4, work);
      this.levels.push(whole ? 'read-data' : 'read-data-subset');
    } catch (err) {
      if (isAbort(err)) throw err;
      // a tree that failed in pass 1 fails here at the same place: already reported
      if (treeOk) this.findings.fromError('tree', err, { prefix: `backup ${this.backupId}: file list`, backupId: this.backupId });
    }
    this.counts.bytesRead = reader.bytesRead;
  }

  /**
   * Read a file's chunks (verified one by one), then check its size and
   * SHA-256; with `out`, also write the content there. Records a problem and
   * returns false when anything disagrees.
   */
  private async verifyContent(
    reader: BlobReader,
    e: TreeEntry,
    out: { write(b: Buffer): Promise<unknown> } | undefined,
    onBytes: (n: number, path: string) => void,
  ): Promise<boolean> {
    const hash = createHash('sha256');
    let size = 0;
    const kind = e.kind === 'db' ? 'database' : 'file';
    try {
      for (const id of e.chunks ?? []) {
        throwIfAborted(this.signal);
        const data = await reader.blob(id);
        hash.update(data);
        size += data.length;
        if (out !== undefined) await out.write(data);
        this.counts.bytesVerified += data.length;
        onBytes(data.length, e.path);
      }
      if (size !== e.size) throw new StopError('CHECKSUM_MISMATCH', `content is ${size} bytes, the backup recorded ${e.size ?? 0}`);
      if (hash.digest('hex') !== e.sha256) throw new StopError('CHECKSUM_MISMATCH', 'SHA-256 of the content does not match the manifest');
      return true;
    } catch (err) {
      this.findings.fromError(kind, err, { prefix: e.path, path: e.path, backupId: this.backupId });
      return false;
    }
  }

  /** Databases one at a time: the scratch directory then needs room for one (the largest) only. */
  private serialDb(fn: () => Promise<void>): Promise<void> {
    const next = this.dbQueue.then(fn);
    this.dbQueue = next.catch(() => undefined);
    return next;
  }

  private async scratchDir(): Promise<string> {
    if (this.scratch === undefined) {
      const parent = this.opts.scratchParent ?? tmpdir();
      try {
        // mkdtemp makes it 0700: nobody else reads the decrypted copies
        this.scratch = await mkdtemp(join(parent, DB_SCRATCH_PREFIX));
      } catch (err) {
        throw fsError('create', join(parent, DB_SCRATCH_PREFIX + '*'), err);
      }
    }
    return this.scratch;
  }

  /** Restore a database to a scratch file, verifying its content, then PRAGMA integrity_check it. */
  private async verifyDatabase(reader: BlobReader, e: TreeEntry, onBytes: (n: number, path: string) => void): Promise<void> {
    let file: string;
    try {
      file = join(await this.scratchDir(), `db-${++this.dbSeq}.sqlite`);
    } catch (err) {
      this.findings.fromError('database', err, { prefix: e.path, path: e.path, backupId: this.backupId });
      return;
    }
    try {
      let fh;
      try {
        fh = await open(file, 'wx', 0o600);
      } catch (err) {
        throw fsError('write', file, err);
      }
      let ok: boolean;
      try {
        ok = await this.verifyContent(reader, e, {
          write: async (b) => {
            try {
              return await fh.write(b);
            } catch (err) {
              throw fsError('write', file, err);
            }
          },
        }, onBytes);
      } finally {
        await fh.close();
      }
      if (!ok) return;
      this.counts.filesRead++;
      const result = checkDatabaseFile(file);
      this.counts.databasesChecked++;
      if (!result.ok) {
        this.findings.problem({
          code: 'DB_INTEGRITY_ERROR', kind: 'database', path: e.path, backupId: this.backupId,
          message: `${e.path}: integrity_check of the restored copy is not ok: ${result.problems.slice(0, 3).join('; ')}`,
        });
      }
    } catch (err) {
      this.findings.fromError('database', err, { prefix: e.path, path: e.path, backupId: this.backupId });
    } finally {
      await Promise.all([file, ...sideFilesOf(file)].map((f) => rm(f, { force: true })));
    }
  }

  /** Remove the scratch directory. */
  async cleanup(): Promise<void> {
    await this.dbQueue;
    if (this.scratch !== undefined) await rm(this.scratch, { recursive: true, force: true });
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
    if (this.mode === 'subset') r.subset = { percent: this.percent, seed: this.seed, selectedFiles: this.selectedFiles, selectedBytes: this.selectedBytes };
    if (this.manifestSha256 !== undefined) r.manifestSha256 = this.manifestSha256;
    return r;
  }
}
