/**
 * Checking a whole repository (restic `check`): is every object there, whole,
 * and consistent with the others?
 *
 *   config     readable, and still the config the repository was opened with
 *   keys       every key file parses and is named by the SHA-256 of its data
 *   locks      listed (info); stale ones flagged; then a shared lock is taken
 *   index      every index file is named by the SHA-256 of its bytes,
 *              decrypts and decodes; each pack's blobs are contiguous; a pack
 *              described twice must be described the same way; blobs stored in
 *              more than one pack are counted (info: after an interrupted
 *              backup was retried; prune removes the extra copies)
 *   packs      every pack an index describes exists with exactly the size the
 *              index implies (blobs + sealed header + trailer), from one
 *              listing; packs no index describes are orphans (info: what a
 *              crash leaves; prune removes them)
 *   (temp)     leftover temporary files of interrupted writes are counted
 *              (info: harmless; prune removes them once an hour old)
 *   read-data  (--read-data) every indexed pack read in full: its header
 *              decrypted and parsed (pack.ts) and compared with what the index
 *              says; then, on the workers verify uses (pack-pool.ts), its
 *              SHA-256 against its name and every blob decrypted and hashed
 *              against its id
 *   snapshots  every snapshot decrypts and validates; every blob its file list
 *              needs is in the index (missing → problem), and not in a pack
 *              found missing or damaged above (→ problem naming the backup);
 *              a blob that repair recorded as lost is known damage (info:
 *              the backup is incomplete until a backup of the same content
 *              stores it again), not a new problem
 *   (record)   what was found missing or damaged is recorded in the
 *              repository (src/repository/damage.ts), so the next backup
 *              stores those blobs again and nothing reads them meanwhile
 *
 * As in verify, every problem is recorded and the check goes on (findings.ts).
 * Objects written by a backup running meanwhile (a shared lock allows it) can
 * show up as orphans; they are info, never problems.
 */
import { forEachConcurrent } from '../concurrency/for-each.js';
import { SEAL_OVERHEAD } from '../crypto/aead.js';
import { HEX64, sha256Hex } from '../crypto/hash.js';
import { FoleBackupError, errorFromData, throwIfAborted } from '../errors.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import { decompressAny } from '../repository/compress.js';
import { AAD } from '../repository/format.js';
import { listLocks, RepositoryLock } from '../repository/lock.js';
import { describeNote } from '../repository/damage-book.js';
import { recordNewDamage } from '../repository/damage.js';
import { decodeIndexFile } from '../repository/master-index.js';
import { HEADER_ENTRY_BYTES, layoutDigest, type PackedBlob } from '../repository/pack.js';
import { readConfig, readKeyFile, type Repository } from '../repository/repository.js';
import type { ObjectInfo, TemporaryFile } from '../backend/backend.js';
import { listTemporaryFiles } from '../prune/temporary-files.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { isBackupId, loadSnapshot } from '../snapshot/store.js';
import { readTree } from '../snapshot/tree.js';
import { DEFAULT_MAX_PROBLEMS, Findings, isAbort, verdictFor, type ReportBase } from './findings.js';
import { loadPack, short } from './pack-bytes.js';
import { PackPool } from './pack-pool.js';
import { SubsetDraw } from './subset.js';
import type { PackAnswer } from './pack-worker.js';

/** How far `checkRepository` goes: the structure of the whole repository, and optionally every pack's bytes. */
export interface CheckOptions {
  /** Read every pack in full and decrypt every blob (default: structure only). */
  readData?: boolean;
  /**
   * Read only a share of the packs, drawn pack by pack from `seed` (src/verify/subset.ts): the same seed reads
   * the same packs, a new one others, so a check run every night with a new seed covers the repository over time.
   */
  readDataSubset?: { percent: number; seed: string };
  /** Problems listed in full (all are counted). Default 20. */
  maxProblems?: number;
  /** Take a shared repository lock (default true). */
  lock?: boolean;
  /** Packs read at once with readData (default 2). */
  concurrency?: number;
  reporter?: ProgressReporter;
  signal?: AbortSignal;
}

/** The parts of a repository a check went through, in order. */
export type CheckLevel = 'config' | 'keys' | 'locks' | 'index' | 'packs' | 'read-data' | 'snapshots';

/** What a check looked at: key files, locks, index files, packs, blobs and snapshots. */
export interface CheckCounts {
  keys: number;
  locks: number;
  indexFiles: number;
  /** Packs described by the index. */
  packs: number;
  /** Blob entries in the index files (a blob stored twice counts twice). */
  blobs: number;
  /** Extra copies of blobs stored in more than one pack. */
  duplicateBlobs: number;
  orphanPacks: number;
  orphanBytes: number;
  snapshots: number;
  /** Entries of every backup's file list. */
  treeEntries: number;
  /** Chunk references of every backup checked against the index. */
  blobRefs: number;
  packsRead: number;
  blobsRead: number;
  bytesRead: number;
  /** Leftover temporary files of interrupted writes (info: prune removes them). */
  tempFiles: number;
  tempBytes: number;
  /** Backups that need blobs repair recorded as lost (known damage: info, healed by a backup of the same data). */
  knownDamageBackups: number;
  /** Files of those backups that need a lost blob. */
  knownDamageFiles: number;
}

/** A check's findings: the levels reached, the counts, the problems and the information found. */
export interface CheckReport extends ReportBase {
  kind: 'check';
  repository: string;
  repositoryId: string;
  readData: boolean;
  /** With readDataSubset: the draw and what it read. */
  subset?: { percent: number; seed: string; packs: number; bytes: number };
  counts: CheckCounts;
  /** The damage record this check added (damage/NAME), when it found damage not recorded before. */
  recorded?: string;
}

/** What one index file says about one pack. */
interface PackClaim {
  indexFile: string;
  count: number;
  /** End of the last blob: the pack's data section. */
  dataBytes: number;
  /** Digest of the blob layout, to compare with the header and with other index files. */
  layout: string;
}

/** The packs a subset reads: each drawn on its own from the seed; never none of a repository that has packs. */
function drawPacks(names: readonly string[], sub: { percent: number; seed: string }): string[] {
  const draw = new SubsetDraw<string>({ mode: 'subset', ...sub });
  const drawn = names.filter((n) => draw.draw(n, 0, n));
  const fallback = draw.fallback();
  return fallback === undefined ? drawn : [fallback.item];
}

/** "1 file needs", "3 files need". */
const filesNeed = (n: number): string => (n === 1 ? '1 file needs' : `${n} files need`);

/** Check the whole repository. Returns a report; throws only if the repository is locked exclusively, or on abort. */
export async function checkRepository(repo: Repository, opts: CheckOptions = {}): Promise<CheckReport> {
  const run = new Check(repo, opts);
  await run.run();
  return run.report();
}

/** The error a check report amounts to (undefined when ok); see findings.ts. */
export function checkVerdict(r: CheckReport): FoleBackupError | undefined {
  // damage confined to key files leaves every backup intact: say how to deal with the key, not with backups
  const onlyKeys =
    r.problems.length > 0 && r.problems.length === r.problemCount && r.problems.every((p) => p.kind === 'key');
  return verdictFor(r, {
    subject: `repository ${r.repository}`,
    ...(r.recorded === undefined ? {} : { changed: `the damage found, recorded in damage/${r.recorded.slice(0, 12)}` }),
    damageHint: onlyKeys
      ? 'only key files are damaged; the backups are not affected. `fole-backup key list` marks the damaged ' +
        'ones (!); once another key opens the repository, `fole-backup key remove <name>` removes a damaged one ' +
        '(or restore keys/ from a copy of the repository)'
      : 'backups named in the problems (backupId) cannot be trusted: restore from one that is not named, and never ' +
        'edit the repository by hand. `fole-backup verify <id> --read-data` checks one backup in detail; ' +
        '`fole-backup repair --dry-run` shows what a repair would move aside and which backups it would leave ' +
        'incomplete (keep a copy of the repository first if the damage needs investigating)',
  });
}

class Check {
  private readonly findings: Findings;
  private readonly started = Date.now();
  private readonly startedAt = new Date(this.started).toISOString();
  private readonly reporter: ProgressReporter;
  private readonly signal: AbortSignal | undefined;
  private readonly levels: CheckLevel[] = [];
  private readonly counts: CheckCounts = {
    keys: 0,
    locks: 0,
    indexFiles: 0,
    packs: 0,
    blobs: 0,
    duplicateBlobs: 0,
    orphanPacks: 0,
    orphanBytes: 0,
    snapshots: 0,
    treeEntries: 0,
    blobRefs: 0,
    packsRead: 0,
    blobsRead: 0,
    bytesRead: 0,
    tempFiles: 0,
    tempBytes: 0,
    knownDamageBackups: 0,
    knownDamageFiles: 0,
  };
  private readonly claims = new Map<string, PackClaim>();
  /** Packs in data/, with their sizes. */
  private readonly listed = new Map<string, number>();
  /** Packs missing, of the wrong size, or damaged. */
  private readonly badPacks = new Set<string>();
  private readonly wrongSize = new Set<string>();
  /** Blobs that failed to decrypt or hash (read-data). */
  private readonly damagedBlobs = new Set<string>();
  /** Where they are: pack → blob ids (what is recorded). */
  private readonly damagedIn = new Map<string, Set<string>>();
  /** Packs found missing, or whose bytes could not be used at all (what is recorded whole). */
  private readonly lostPacks = new Set<string>();
  /** Packs proved damaged (size, hash, header or a blob): what no backup may rely on any more. */
  private readonly damagedPacks = new Set<string>();
  private recorded: string | undefined;
  /**
   * Packs whose every blob was opened (read-data): in them exactly the blobs in damagedBlobs are bad, so a flipped
   * byte blames the files that use that blob, not every file with data in the pack.
   */
  private readonly openedBlobByBlob = new Set<string>();
  private indexDamaged = false;
  /** Whether `listed` holds the listing of data/ (it could be read). */
  private packsListed = false;
  private subset: CheckReport['subset'];

  constructor(
    private readonly repo: Repository,
    private readonly opts: CheckOptions,
  ) {
    this.reporter = opts.reporter ?? silentReporter;
    this.signal = opts.signal;
    this.findings = new Findings(opts.maxProblems ?? DEFAULT_MAX_PROBLEMS, this.reporter);
  }

  async run(): Promise<void> {
    this.reporter.phase('check config and keys');
    await this.checkConfig();
    await this.checkKeys();
    await this.checkLocks();
    const lock =
      this.opts.lock === false
        ? undefined
        : await RepositoryLock.acquireForReading(this.repo, {
            operation: 'check',
            onUnlocked: (why) => this.reporter.warn(why),
          });
    try {
      await this.scanIndex();
      await this.checkPacks();
      await this.checkTemporaryFiles();
      if (this.opts.readData === true || this.opts.readDataSubset !== undefined) await this.readPacks();
      await this.checkSnapshots();
      await this.recordDamage();
    } finally {
      await lock?.release();
    }
  }

  private async checkConfig(): Promise<void> {
    try {
      const c = await readConfig(this.repo.backend);
      const o = this.repo.config;
      if (
        c.id !== o.id ||
        c.packSize !== o.packSize ||
        c.fileChunkSize !== o.fileChunkSize ||
        c.dbChunkSize !== o.dbChunkSize
      ) {
        this.findings.problem({
          code: 'REPO_CORRUPT',
          kind: 'config',
          object: 'config',
          message: 'the repository config changed since the repository was opened',
        });
      }
      this.levels.push('config');
    } catch (err) {
      this.findings.fromError('config', err, { object: 'config' });
    }
  }

  private async checkKeys(): Promise<void> {
    const listed: ObjectInfo[] = [];
    try {
      for await (const o of this.repo.backend.list('keys')) listed.push(o);
    } catch (err) {
      this.findings.fromError('key', err, { prefix: 'list key files' });
      return;
    }
    for (const info of listed.sort((a, b) => a.name.localeCompare(b.name))) {
      const name = info.name;
      const object = `keys/${name}`;
      try {
        const kf = await readKeyFile(this.repo.backend, info);
        if (sha256Hex(Buffer.from(kf.data)) !== name) {
          this.findings.problem({
            code: 'REPO_CORRUPT',
            kind: 'key',
            object,
            message: `key file ${short(name)}: its name is not the SHA-256 of its sealed key`,
          });
        }
        this.counts.keys++;
      } catch (err) {
        this.findings.fromError('key', err, { object });
      }
    }
    if (listed.length === 0) {
      this.findings.problem({
        code: 'REPO_CORRUPT',
        kind: 'key',
        message: 'no key files: nobody can open this repository again once this process ends',
      });
    }
    this.levels.push('keys');
  }

  private async checkLocks(): Promise<void> {
    try {
      for (const l of await listLocks(this.repo)) {
        this.counts.locks++;
        const who =
          `${l.exclusive ? 'exclusive' : 'shared'} lock of ${l.operation} ` +
          `by ${l.username}@${l.host} pid ${l.pid} since ${l.createdAt}`;
        if (l.stale !== false) {
          this.findings.note({
            kind: 'stale-lock',
            object: `locks/${l.name}`,
            message: `stale ${who}: ${l.stale}; \`fole-backup unlock\` removes it`,
          });
        } else {
          this.findings.note({ kind: 'lock', object: `locks/${l.name}`, message: `live ${who}` });
        }
      }
      this.levels.push('locks');
    } catch (err) {
      this.findings.fromError('config', err, { prefix: 'list locks' });
    }
  }

  private async scanIndex(): Promise<void> {
    this.reporter.phase('check index');
    try {
      // before any index file: the locations recorded as damaged are left out as every other command does
      await this.repo.loadDamage();
    } catch (err) {
      this.findings.fromError('index', err, { prefix: 'read the damage records' });
    }
    const names: string[] = [];
    try {
      for await (const o of this.repo.backend.list('index')) names.push(o.name);
    } catch (err) {
      this.indexDamaged = true;
      this.findings.fromError('index', err, { prefix: 'list index files' });
      return;
    }
    names.sort();
    this.counts.indexFiles = names.length;
    let done = 0;
    await forEachConcurrent(names, 4, async (name) => {
      throwIfAborted(this.signal);
      const object = `index/${name}`;
      let packs: { name: string; blobs: PackedBlob[] }[];
      try {
        const stored = await this.repo.backend.load({ type: 'index', name });
        this.counts.bytesRead += stored.length;
        if (sha256Hex(stored) !== name) {
          this.findings.problem({
            code: 'CHECKSUM_MISMATCH',
            kind: 'index',
            object,
            message: `index ${short(name)}: its bytes do not hash to its name`,
          });
        }
        const plain = decompressAny(this.repo.openBytes(stored, object, AAD.index), object);
        let v: unknown;
        try {
          v = JSON.parse(plain.toString('utf8'));
        } catch (err) {
          throw new FoleBackupError('REPO_CORRUPT', `${object}: not valid JSON`, { cause: err });
        }
        packs = decodeIndexFile(v, name);
      } catch (err) {
        this.indexDamaged = true;
        this.findings.fromError('index', err, { object });
        return;
      }
      for (const p of packs) this.addClaim(name, p);
      this.reporter.progress({ files: ++done, bytes: 0, totalFiles: names.length });
    });
    this.counts.packs = this.claims.size;
    if (this.counts.duplicateBlobs > 0) {
      this.findings.note({
        kind: 'duplicate-blobs',
        message:
          `${this.counts.duplicateBlobs} blobs are stored in more than one ` +
          `pack (normal after an interrupted backup was retried; prune removes the extra copies)`,
      });
    }
    if (!this.indexDamaged) this.levels.push('index');
  }

  private addClaim(indexFile: string, p: { name: string; blobs: PackedBlob[] }): void {
    const object = `index/${indexFile}`;
    let end = 0;
    let contiguous = true;
    for (const b of [...p.blobs].sort((x, y) => x.offset - y.offset)) {
      if (b.offset !== end) contiguous = false;
      end = Math.max(end, b.offset + b.length);
    }
    if (!contiguous) {
      this.findings.problem({
        code: 'REPO_CORRUPT',
        kind: 'index',
        object,
        message: `index ${short(indexFile)}: the blobs it places in pack ${short(p.name)} overlap or leave gaps`,
      });
    }
    const claim: PackClaim = { indexFile, count: p.blobs.length, dataBytes: end, layout: layoutDigest(p.blobs) };
    const prev = this.claims.get(p.name);
    if (prev !== undefined) {
      if (prev.layout === claim.layout) {
        this.findings.note({
          kind: 'pack-indexed-twice',
          object: `data/${p.name}`,
          message: `pack ${short(p.name)} is described by index ${short(prev.indexFile)} and ${short(indexFile)} alike`,
        });
      } else {
        this.findings.problem({
          code: 'REPO_CORRUPT',
          kind: 'index',
          object,
          message: `index ${short(prev.indexFile)} and ${short(indexFile)} describe pack ${short(p.name)} differently`,
        });
      }
    } else {
      this.claims.set(p.name, claim);
    }
    for (const b of p.blobs) {
      const known = this.repo.index.get(b.id);
      if (known !== undefined && known.pack !== p.name) this.counts.duplicateBlobs++;
    }
    this.counts.blobs += p.blobs.length;
    this.repo.index.addPack(p.name, p.blobs);
  }

  private async checkPacks(): Promise<void> {
    this.reporter.phase('check packs');
    try {
      for await (const o of this.repo.backend.list('data')) {
        if (HEX64.test(o.name)) this.listed.set(o.name, o.size);
        else
          this.findings.note({
            kind: 'unknown-object',
            object: `data/${o.name}`,
            message: `data/${o.name} is not named like a pack; fole-backup ignores it`,
          });
      }
    } catch (err) {
      this.findings.fromError('pack', err, { prefix: 'list packs' });
      return;
    }
    this.packsListed = true;
    for (const [name, claim] of this.claims) {
      const size = this.listed.get(name);
      if (size === undefined) {
        this.lostPacks.add(name);
        this.packProblem(
          name,
          `pack ${short(name)} is missing: index ${short(claim.indexFile)} places ${claim.count} blobs in it`,
        );
        continue;
      }
      const expected = claim.dataBytes + SEAL_OVERHEAD + HEADER_ENTRY_BYTES * claim.count + 4;
      if (size !== expected) {
        this.wrongSize.add(name);
        this.damagedPacks.add(name);
        this.packProblem(
          name,
          `pack ${short(name)} is ${size} bytes; index ${short(claim.indexFile)} ` +
            `describes ${expected} (${size < expected ? 'truncated' : 'extra bytes'})`,
        );
      }
    }
    for (const [name, size] of this.listed) {
      if (this.claims.has(name)) continue;
      this.counts.orphanPacks++;
      this.counts.orphanBytes += size;
      this.findings.note({
        kind: 'orphan-pack',
        object: `data/${name}`,
        message:
          `pack ${short(name)} (${size} bytes) is in no index: left by an ` +
          `interrupted backup (or one still running); prune removes it`,
      });
    }
    this.levels.push('packs');
  }

  /** A pack found missing or damaged: a problem naming it. */
  private packProblem(name: string, message: string): void {
    this.badPacks.add(name);
    this.findings.problem({ code: 'CHECKSUM_MISMATCH', kind: 'pack', object: `data/${name}`, message });
  }

  private async checkTemporaryFiles(): Promise<void> {
    let temps: TemporaryFile[];
    try {
      temps = await listTemporaryFiles(this.repo.backend);
    } catch (err) {
      this.findings.fromError('config', err, { prefix: 'list temporary files' });
      return;
    }
    if (temps.length === 0) return;
    this.counts.tempFiles = temps.length;
    this.counts.tempBytes = temps.reduce((n, t) => n + t.size, 0);
    const examples = temps
      .slice(0, 3)
      .map((t) => t.path)
      .join(', ');
    this.findings.note({
      kind: 'temp-files',
      message:
        `${temps.length} leftover temporary files (${this.counts.tempBytes} ` +
        `bytes, e.g. ${examples}) of interrupted writes: harmless; \`fole-backup ` +
        `prune\` removes those older than an hour`,
    });
  }

  /** Blobs the index places in `pack` (first locations), for a pack whose header cannot be used. */
  private indexedBlobsOf(pack: string): PackedBlob[] {
    const out: PackedBlob[] = [];
    for (const e of this.repo.index.entries()) if (e.pack === pack) out.push(e);
    return out;
  }

  /**
   * Every indexed pack read in full and checked on the verify workers (pack-pool.ts), as verify checks the
   * packs of one backup: hashed against its name and every blob opened. Only the header is read here, before
   * the bytes go to a worker: it says which blobs to open.
   */
  private async readPacks(): Promise<void> {
    this.reporter.phase('read packs');
    const all = [...this.claims.keys()].filter((n) => this.listed.has(n)).sort();
    const sub = this.opts.readDataSubset;
    const names = sub === undefined ? all : drawPacks(all, sub);
    const totalBytes = names.reduce((s, n) => s + (this.listed.get(n) ?? 0), 0);
    if (sub !== undefined) this.subset = { ...sub, packs: names.length, bytes: totalBytes };
    let doneBytes = 0;
    let done = 0;
    const pool = new PackPool(this.repo.blobCipher());
    try {
      await forEachConcurrent(names, this.opts.concurrency ?? 2, async (name) => {
        throwIfAborted(this.signal);
        const bytes = await this.readPack(name, pool);
        if (bytes === undefined) return;
        doneBytes += bytes;
        this.reporter.progress({
          files: ++done,
          bytes: doneBytes,
          totalFiles: names.length,
          totalBytes,
          current: short(name),
        });
      });
    } finally {
      await pool.close();
    }
    this.levels.push('read-data');
  }

  /** Read and check one pack; returns its size, or undefined when it could not be read. */
  private async readPack(name: string, pool: PackPool): Promise<number | undefined> {
    const object = `data/${name}`;
    const claim = this.claims.get(name) as PackClaim;
    let bytes: Buffer;
    try {
      bytes = await loadPack(this.repo.backend, name);
    } catch (err) {
      this.badPacks.add(name);
      // a pack that is gone is damage; a read error (I/O, permissions) proves nothing about its bytes
      if (err instanceof FoleBackupError && err.code === 'CHECKSUM_MISMATCH') this.lostPacks.add(name);
      this.findings.fromError('pack', err, { object });
      return undefined;
    }
    // before the worker takes the buffer (its length reads 0 after)
    const size = bytes.length;
    this.counts.bytesRead += size;
    this.counts.packsRead++;
    let blobs: PackedBlob[] | undefined;
    let headerProblem: (() => void) | undefined;
    try {
      const header = this.repo.readPackHeader(bytes, name);
      if (layoutDigest(header) === claim.layout) blobs = header;
      else
        headerProblem = () =>
          this.findings.problem({
            code: 'REPO_CORRUPT',
            kind: 'pack',
            object,
            message: `pack ${short(name)}: its header disagrees with index ${short(claim.indexFile)} about its blobs`,
          });
    } catch (err) {
      headerProblem = () => this.findings.fromError('pack', err, { object });
    }
    // what restore would read: the index's view when the header cannot be trusted
    const toOpen = blobs ?? this.indexedBlobsOf(name);
    let answer: PackAnswer | undefined;
    try {
      answer = await pool.checkPack(
        name,
        bytes,
        true,
        [],
        toOpen.map((b) => ({ ...b, keep: false })),
      );
    } catch (err) {
      if (isAbort(err)) throw err;
      this.badPacks.add(name);
      for (const b of toOpen) this.damagedBlobs.add(b.id);
      this.findings.fromError('pack', err, { object, prefix: `check pack ${short(name)}` });
    }
    if (answer !== undefined && answer.sha256 !== name) {
      this.badPacks.add(name);
      this.damagedPacks.add(name);
      // a wrong size was reported already and implies this
      if (!this.wrongSize.has(name)) {
        this.findings.problem({
          code: 'CHECKSUM_MISMATCH',
          kind: 'pack',
          object,
          message: `pack ${short(name)}: its bytes do not hash to its name (the pack is damaged)`,
        });
      }
    }
    if (headerProblem !== undefined) {
      this.badPacks.add(name);
      this.damagedPacks.add(name);
      headerProblem();
    }
    if (answer === undefined) return size;
    this.openedBlobByBlob.add(name);
    this.counts.blobsRead += toOpen.length - answer.failed.length;
    for (const f of answer.failed) {
      this.damagedBlobs.add(f.id);
      const set = this.damagedIn.get(name) ?? new Set<string>();
      set.add(f.id);
      this.damagedIn.set(name, set);
    }
    const first = answer.failed[0];
    // one problem per pack, so one bad pack cannot crowd every other finding out of the list
    if (first !== undefined) {
      this.badPacks.add(name);
      this.damagedPacks.add(name);
      this.findings.fromError('blob', errorFromData(first.error), {
        object,
        prefix: `pack ${short(name)}: ${answer.failed.length} of ${toOpen.length} blobs damaged; first`,
      });
    }
    return size;
  }

  private async checkSnapshots(): Promise<void> {
    this.reporter.phase('check snapshots');
    const ids: string[] = [];
    try {
      for await (const o of this.repo.backend.list('snapshots')) {
        if (isBackupId(o.name)) ids.push(o.name);
        else
          this.findings.note({
            kind: 'unknown-object',
            object: `snapshots/${o.name}`,
            message: `snapshots/${o.name} is not named like a backup; fole-backup ignores it`,
          });
      }
    } catch (err) {
      this.findings.fromError('snapshot', err, { prefix: 'list snapshots' });
      return;
    }
    ids.sort();
    this.counts.snapshots = ids.length;
    if (this.indexDamaged) {
      this.findings.note({
        kind: 'not-checked',
        message:
          "the backups' file lists were not checked: part of the index is " +
          'unreadable, and no backup can be restored until it is repaired',
      });
    } else {
      try {
        // what restore sees (also picks up index files a backup running meanwhile has written)
        await this.repo.loadIndex(this.signal);
      } catch (err) {
        this.findings.fromError('index', err, { prefix: 'load the repository index' });
        return;
      }
    }
    let done = 0;
    for (const id of ids) {
      throwIfAborted(this.signal);
      const object = `snapshots/${id}`;
      let snap: Snapshot;
      try {
        snap = await loadSnapshot(this.repo, id);
      } catch (err) {
        this.findings.fromError('snapshot', err, { object, backupId: id });
        continue;
      }
      if (!this.indexDamaged) await this.checkTree(id, snap.tree);
      this.reporter.progress({ files: ++done, bytes: 0, totalFiles: ids.length, current: id });
    }
    this.levels.push('snapshots');
  }

  /** Every blob a backup's file list needs is indexed and not in a pack known to be bad. */
  private async checkTree(id: string, tree: readonly string[]): Promise<void> {
    const object = `snapshots/${id}`;
    const unindexed = tree.filter((t) => !this.repo.index.has(t));
    for (const t of unindexed) {
      const lost = this.repo.damage.lost(t);
      if (lost === undefined) continue;
      this.counts.knownDamageBackups++;
      this.findings.note({
        kind: 'known-damage',
        object,
        message:
          `backup ${id}: its file list is lost (blob ${short(t)}, ${describeNote(lost)}): it can be neither listed ` +
          `nor restored; \`fole-backup forget ${id}\` removes it`,
      });
      return;
    }
    const gone = this.packsListed ? tree.filter((t) => !this.listed.has(this.repo.index.get(t)?.pack ?? '')) : [];
    const [unusable, where] = unindexed.length > 0 ? [unindexed, 'not in the index'] : [gone, 'in missing packs'];
    if (unusable.length > 0) {
      this.findings.problem({
        code: 'CHECKSUM_MISMATCH',
        kind: 'tree',
        object,
        backupId: id,
        message:
          `backup ${id}: ${unusable.length} of ${tree.length} file-list blobs are ${where} ` +
          `(first ${short(unusable[0] ?? '')}); its files cannot be listed`,
      });
      return;
    }
    // a blob is bad when it failed to open, or when its pack is bad and its blobs could not be opened one by one
    const bad = (blob: string): boolean => {
      const e = this.repo.index.get(blob);
      if (e === undefined) return false;
      return this.damagedBlobs.has(blob) || (this.badPacks.has(e.pack) && !this.openedBlobByBlob.has(e.pack));
    };
    if (tree.some(bad)) {
      this.findings.problem({
        code: 'CHECKSUM_MISMATCH',
        kind: 'tree',
        object,
        backupId: id,
        message: `backup ${id}: its file list is stored in damaged data`,
      });
    }
    let missing = 0;
    let firstMissing = '';
    let damaged = 0;
    let firstDamaged = '';
    let recorded = 0;
    let firstRecorded = '';
    let lost = 0;
    let firstLost = '';
    try {
      for await (const e of readTree(this.repo, tree)) {
        throwIfAborted(this.signal);
        this.counts.treeEntries++;
        // the worst of a file's chunks: missing, recorded damaged (not repaired yet), damaged, lost (known)
        let worst = 0;
        for (const c of e.chunks ?? []) {
          this.counts.blobRefs++;
          const rank = this.repo.index.has(c)
            ? bad(c)
              ? 2
              : 0
            : this.repo.damage.lost(c) !== undefined
              ? 1
              : this.repo.index.leftOutBy(c) !== undefined
                ? 3
                : 4;
          worst = Math.max(worst, rank);
        }
        if (worst === 4) {
          if (missing++ === 0) firstMissing = e.path;
        } else if (worst === 3) {
          if (recorded++ === 0) firstRecorded = e.path;
        } else if (worst === 2) {
          if (damaged++ === 0) firstDamaged = e.path;
        } else if (worst === 1) {
          if (lost++ === 0) firstLost = e.path;
        }
      }
    } catch (err) {
      this.findings.fromError('tree', err, { object, backupId: id, prefix: `backup ${id}: file list` });
    }
    if (recorded > 0) {
      this.findings.problem({
        code: 'CHECKSUM_MISMATCH',
        kind: 'snapshot',
        object,
        backupId: id,
        path: firstRecorded,
        message:
          `backup ${id}: ${filesNeed(recorded)} data recorded as damaged (first: ${firstRecorded}); ` +
          '`fole-backup repair` moves the damaged packs aside, and a backup of the same files stores that data again',
      });
    }
    if (lost > 0) {
      this.counts.knownDamageBackups++;
      this.counts.knownDamageFiles += lost;
      this.findings.note({
        kind: 'known-damage',
        object,
        message:
          `backup ${id}: ${filesNeed(lost)} data that repair found lost (first: ${firstLost}); they cannot be ` +
          'restored from this backup until a backup stores the same content again (files that have not changed ' +
          'since are healed by the next backup); its other files restore',
      });
    }
    if (missing > 0) {
      this.findings.problem({
        code: 'CHECKSUM_MISMATCH',
        kind: 'snapshot',
        object,
        backupId: id,
        path: firstMissing,
        message: `backup ${id}: ${filesNeed(missing)} blobs that are not in the index (first: ${firstMissing})`,
      });
    }
    if (damaged > 0) {
      this.findings.problem({
        code: 'CHECKSUM_MISMATCH',
        kind: 'snapshot',
        object,
        backupId: id,
        path: firstDamaged,
        message: `backup ${id}: ${filesNeed(damaged)} damaged data (first: ${firstDamaged})`,
      });
    }
  }

  /**
   * Record what this check found missing or damaged and no record names yet (damage.ts). A check that cannot
   * write (a read-only repository, a server that refuses) says so and still reports what it found.
   */
  private async recordDamage(): Promise<void> {
    const blobs: [string, string][] = [];
    for (const [pack, ids] of this.damagedIn) for (const b of ids) blobs.push([pack, b]);
    try {
      this.recorded = await recordNewDamage(
        this.repo,
        this.repo.damage,
        { packs: this.lostPacks, damagedPacks: this.damagedPacks, blobs },
        'check',
      );
    } catch (err) {
      if (isAbort(err)) throw err;
      this.reporter.warn(
        `the damage found could not be recorded in the repository (${err instanceof Error ? err.message : err}): ` +
          'a backup may still reuse the damaged data; run the check again with write access',
      );
    }
  }

  report(): CheckReport {
    const { ok, ...found } = this.findings.summary();
    return {
      kind: 'check',
      ok,
      repository: this.repo.backend.location,
      repositoryId: this.repo.config.id,
      readData: this.opts.readData === true || this.opts.readDataSubset !== undefined,
      ...(this.subset === undefined ? {} : { subset: this.subset }),
      levels: [...this.levels],
      counts: { ...this.counts },
      ...(this.recorded === undefined ? {} : { recorded: this.recorded }),
      startedAt: this.startedAt,
      durationMs: Date.now() - this.started,
      ...found,
    };
  }
}
