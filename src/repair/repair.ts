/**
 * Repair (restic `repair index|packs`, Borg `check --repair`): make the repository consistent again from what
 * its packs really hold, moving damaged data aside and rewriting nothing that is sound (the rules: plan.ts).
 *
 *   1. scan: every index file read; every pack read in full and checked on the verify workers (its hash against
 *      its name, its header, every blob opened against its id); then every backup's file list walked to find
 *      which files need a blob of which no sound copy will remain, and whether the next backup can store it again
 *   2. a dry run stops here, having written nothing (a shared lock: it can run beside a backup)
 *   3. under the exclusive lock, in this order, so a SIGKILL at any instant leaves a repository every command can
 *      use and a second repair completes:
 *        a. a damage record (src/repository/damage.ts) naming the damaged and missing packs and the lost blobs:
 *           from here on no command reads those packs, whatever index file still names them
 *        b. the salvaged blobs written into new packs, and an index file for them
 *        c. new index files for the sound packs no kept index file describes
 *        d. unreadable index files copied aside; the index files being replaced removed
 *        e. damaged packs copied aside (quarantine/data.NAME), then removed from data/
 *        f. older damage records removed: this repair's record says all that is still true
 *
 * The backups themselves are never rewritten: a file that needs a lost blob stays in its backup, which check
 * then reports as known damage; a backup of the same content stores the blob again and heals it.
 */
import { lstatSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ObjectHandle } from '../backend/backend.js';
import { forEachConcurrent } from '../concurrency/for-each.js';
import { FoleBackupError, errorFromData, throwIfAborted } from '../errors.js';
import { fsPath } from '../fs/byte-names.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import type { DamageRecord } from '../repository/damage-book.js';
import { loadDamageRecords, saveDamageRecord } from '../repository/damage.js';
import { HEX64 } from '../crypto/hash.js';
import { RepositoryLock } from '../repository/lock.js';
import type { PackedBlob } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import type { Snapshot, TreeEntry } from '../snapshot/snapshot.js';
import { scanSnapshots } from '../snapshot/store.js';
import { readTree } from '../snapshot/tree.js';
import { short } from '../verify/pack-bytes.js';
import { PackPool } from '../verify/pack-pool.js';
import { planChanges, planRepair, type RepairPlan, type ScannedIndexFile, type ScannedPack } from './plan.js';

/** How a repair runs: dry run, how many affected files it lists per backup, progress and cancellation. */
export interface RepairOptions {
  dryRun?: boolean;
  /** Files listed per affected backup (all are counted). Default 20. */
  maxFiles?: number;
  reporter?: ProgressReporter;
  signal?: AbortSignal;
}

/** Whether the next backup is likely to store a lost file's content again. */
export type Heal = 'likely' | 'unlikely' | 'unknown';

/** A backup that needs data of which no sound copy remains. */
export interface AffectedBackup {
  backupId: string;
  createdAt: string;
  /** Its file list itself is lost: it can be neither listed nor restored. */
  fileListLost: boolean;
  /** Files that need a lost blob. */
  files: number;
  /** The first of them, with whether the next backup is likely to heal each. */
  examples: { path: string; heal: Heal }[];
  /** Of `files`, those the next backup likely heals (the file is unchanged in the STORAGE_ROOT). */
  likelyHealed: number;
}

/** What a repair found and did (with dryRun: would do). */
export interface RepairReport {
  kind: 'repair';
  dryRun: boolean;
  repository: string;
  /** Nothing needed doing (nothing was written). */
  nothingToDo: boolean;
  packs: { scanned: number; sound: number; damaged: number; missing: number; bytesRead: number };
  indexFiles: { scanned: number; kept: number; removed: number; unreadable: number; written: number };
  /** Sound blobs copied out of damaged packs (with dryRun: that would be). */
  salvagedBlobs: number;
  /** Damaged packs moved aside to quarantine/ (with dryRun: that would be). */
  movedAside: string[];
  missingPacks: string[];
  /** Blobs backups need of which no sound copy remains. */
  lostBlobs: number;
  affected: AffectedBackup[];
  /** Backups whose manifest cannot be read (repair does not deal with them: check names them). */
  unreadableBackups: string[];
  /** Damage records this repair replaced (or would). */
  recordsRemoved: number;
  /** The damage record it wrote. */
  record?: string;
  durationMs: number;
}

/** Index file entries per new index file (as prune writes them). */
const BLOBS_PER_INDEX_FILE = 50_000;

/** Repair the repository (or, with dryRun, say what a repair would do, writing nothing). */
export async function repair(repo: Repository, opts: RepairOptions = {}): Promise<RepairReport> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  const dryRun = opts.dryRun === true;
  const lock = await RepositoryLock.acquire(repo, {
    exclusive: !dryRun,
    operation: 'repair',
    onStale: (l) => reporter.warn(`ignoring stale repository lock ${l.name.slice(0, 12)} (${l.stale})`),
  });
  try {
    const records = await listDamageRecords(repo);
    reporter.phase('read index files');
    const indexFiles = await scanIndexFiles(repo, opts.signal);
    reporter.phase('read packs');
    const { packs, bytesRead } = await scanPacks(repo, indexFiles, reporter, opts.signal);
    const plan = planRepair(packs, indexFiles);

    reporter.phase('check backups');
    // the index as it will be: sound packs first, then what salvage will copy, where it is now
    repo.adoptIndex([
      ...packs.filter((p) => p.sound).map((p) => ({ name: p.name, blobs: p.good })),
      ...plan.salvage.map((s) => ({ name: s.pack, blobs: s.blobs })),
    ]);
    const walked = await walkBackups(repo, plan.available, opts.maxFiles ?? 20, opts.signal);

    const lost = [...walked.lost].sort();
    // a repair run again, with nothing new: its own record still says exactly what is true
    const present = new Set([
      ...packs.map((p) => p.name),
      ...indexFiles.flatMap((f) => (f.packs ?? []).map((p) => p.name)),
    ]);
    const only = records.length === 1 ? records[0] : undefined;
    const recordStands =
      only?.record?.source === 'repair' &&
      sameList(only.record.lost, lost) &&
      only.record.packs.every((p) => !present.has(p)) &&
      only.record.blobs.length === 0 &&
      only.record.damagedPacks.length === 0;
    const nothingToDo = !planChanges(plan) && (records.length === 0 ? lost.length === 0 : recordStands);
    const report: RepairReport = {
      kind: 'repair',
      dryRun,
      repository: repo.backend.location,
      nothingToDo,
      packs: {
        scanned: packs.length,
        sound: packs.filter((p) => p.sound).length,
        damaged: plan.moveAside.length,
        missing: plan.missing.length,
        bytesRead,
      },
      indexFiles: {
        scanned: indexFiles.length,
        kept: plan.keepIndexFiles.length,
        removed: plan.removeIndexFiles.length,
        unreadable: plan.quarantineIndexFiles.length,
        written: 0,
      },
      salvagedBlobs: plan.salvage.reduce((n, s) => n + s.blobs.length, 0),
      movedAside: plan.moveAside,
      missingPacks: plan.missing,
      lostBlobs: lost.length,
      affected: walked.affected,
      unreadableBackups: walked.unreadable,
      recordsRemoved: nothingToDo ? 0 : records.length,
      durationMs: 0,
    };
    if (!dryRun && !nothingToDo) {
      const done = await execute(repo, lock, plan, records, lost, reporter, opts.signal);
      if (done.record !== undefined) report.record = done.record;
      report.indexFiles.written = done.indexFilesWritten;
    }
    report.durationMs = Date.now() - started;
    return report;
  } finally {
    await lock.release().catch(() => {});
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((x, i) => x === b[i]);
}

/** The damage records there are, by name, with what those that can be read say (an unreadable one is replaced too). */
async function listDamageRecords(repo: Repository): Promise<{ name: string; record?: DamageRecord }[]> {
  const unreadable: string[] = [];
  const records = await loadDamageRecords(repo, (name) => unreadable.push(name));
  return [...[...records].map(([name, record]) => ({ name, record })), ...unreadable.map((name) => ({ name }))];
}

async function scanIndexFiles(repo: Repository, signal?: AbortSignal): Promise<ScannedIndexFile[]> {
  const out: ScannedIndexFile[] = [];
  for (const name of await repo.listIndexFiles()) {
    throwIfAborted(signal);
    try {
      out.push({ name, packs: await repo.readIndexFile(name) });
    } catch (err) {
      if (!(err instanceof FoleBackupError) || err.code !== 'CHECKSUM_MISMATCH') throw err;
      out.push({ name, why: err.message });
    }
  }
  return out;
}

/**
 * Read every pack in full and check it on the verify workers. A pack that cannot be read for another reason than
 * damage (I/O, permissions, network) ends the repair: nothing may be moved aside on a guess.
 */
async function scanPacks(
  repo: Repository,
  indexFiles: readonly ScannedIndexFile[],
  reporter: ProgressReporter,
  signal?: AbortSignal,
): Promise<{ packs: ScannedPack[]; bytesRead: number }> {
  const listed: { name: string; size: number }[] = [];
  for await (const o of repo.backend.list('data')) if (HEX64.test(o.name)) listed.push(o);
  listed.sort((a, b) => (a.name < b.name ? -1 : 1));
  // where an index places a pack's blobs, for a pack whose own header is unusable
  const indexView = new Map<string, PackedBlob[]>();
  for (const f of indexFiles) for (const p of f.packs ?? []) if (!indexView.has(p.name)) indexView.set(p.name, p.blobs);
  const totalBytes = listed.reduce((n, p) => n + p.size, 0);
  const packs: ScannedPack[] = [];
  let bytesRead = 0;
  let done = 0;
  const pool = new PackPool(repo.blobCipher());
  try {
    await forEachConcurrent(listed, 2, async ({ name }) => {
      throwIfAborted(signal);
      let bytes: Buffer;
      try {
        bytes = await repo.backend.load({ type: 'data', name });
      } catch (err) {
        // removed since it was listed: nothing to scan
        if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return;
        throw new FoleBackupError(
          err instanceof FoleBackupError ? err.code : 'READ_ERROR',
          `repair: pack ${short(name)} could not be read: ${err instanceof Error ? err.message : String(err)}`,
          {
            cause: err,
            hint: 'repair changes nothing unless it could read every pack: fix the cause and run it again',
          },
        );
      }
      const size = bytes.length;
      let header: PackedBlob[] | undefined;
      let headerWhy: string | undefined;
      try {
        header = repo.readPackHeader(bytes, name);
      } catch (err) {
        headerWhy = err instanceof Error ? err.message : String(err);
      }
      const view = header ?? indexView.get(name) ?? [];
      const answer = await pool.checkPack(
        name,
        bytes,
        true,
        [],
        view.map((b) => ({ ...b, keep: false })),
      );
      const failed = new Map(answer.failed.map((f) => [f.id, f.error]));
      const good = view.filter((b) => !failed.has(b.id));
      const bad = view.filter((b) => failed.has(b.id));
      const why =
        answer.sha256 !== name
          ? 'its bytes do not hash to its name'
          : headerWhy !== undefined
            ? `its header cannot be read (${headerWhy})`
            : undefined;
      const firstBad = answer.failed[0];
      const blobWhy =
        firstBad === undefined
          ? undefined
          : `${bad.length} of ${view.length} blobs do not open (first: ${errorFromData(firstBad.error).message})`;
      const reasons = [why, blobWhy].filter((x): x is string => x !== undefined);
      packs.push({
        name,
        size,
        sound: reasons.length === 0,
        good,
        bad,
        ...(reasons.length > 0 ? { why: reasons.join('; ') } : {}),
      });
      bytesRead += size;
      reporter.progress({
        files: ++done,
        bytes: bytesRead,
        totalFiles: listed.length,
        totalBytes,
        current: short(name),
      });
    });
  } finally {
    await pool.close();
  }
  packs.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const p of packs) if (!p.sound) reporter.warn(`pack ${short(p.name)} is damaged: ${p.why ?? ''}`);
  return { packs, bytesRead };
}

/** Every backup's file list, against what will be available: which files need a lost blob. */
async function walkBackups(
  repo: Repository,
  available: ReadonlySet<string>,
  maxFiles: number,
  signal?: AbortSignal,
): Promise<{ affected: AffectedBackup[]; lost: Set<string>; unreadable: string[] }> {
  const scan = await scanSnapshots(repo);
  const lost = new Set<string>();
  const affected: AffectedBackup[] = [];
  const local = hostname();
  for (const snap of scan.snapshots) {
    const a: AffectedBackup = {
      backupId: snap.backupId,
      createdAt: snap.createdAt,
      fileListLost: false,
      files: 0,
      examples: [],
      likelyHealed: 0,
    };
    const lostTree = snap.tree.filter((t) => !available.has(t));
    if (lostTree.length > 0) {
      for (const t of lostTree) lost.add(t);
      a.fileListLost = true;
    } else {
      for await (const e of readTree(repo, snap.tree)) {
        throwIfAborted(signal);
        const gone = (e.chunks ?? []).filter((c) => !available.has(c));
        if (gone.length === 0) continue;
        for (const c of gone) lost.add(c);
        a.files++;
        const heal = snap.host === local ? healOf(snap, e) : 'unknown';
        if (heal === 'likely') a.likelyHealed++;
        if (a.examples.length < maxFiles) a.examples.push({ path: e.path, heal });
      }
    }
    if (a.fileListLost || a.files > 0) affected.push(a);
  }
  return { affected, lost, unreadable: scan.damaged.map((d) => d.backupId) };
}

/**
 * Whether the next backup will likely store a lost file's content again: the file is still in the STORAGE_ROOT
 * with the size and modification time it had (it is read again, since its chunks are not in the repository). A
 * database is captured anew, so whether it heals depends on whether it changed, which the file cannot tell.
 */
function healOf(snap: Snapshot, e: TreeEntry): Heal {
  if (e.kind === 'db') return 'unknown';
  try {
    const st = lstatSync(fsPath(join(snap.storageRoot, e.path)));
    return st.isFile() && st.size === e.size && st.mtimeMs === e.mtimeMs ? 'likely' : 'unlikely';
  } catch {
    return 'unlikely';
  }
}

/** Steps a–f of the module comment. */
async function execute(
  repo: Repository,
  lock: RepositoryLock,
  plan: RepairPlan,
  records: readonly { name: string }[],
  lost: string[],
  reporter: ProgressReporter,
  signal?: AbortSignal,
): Promise<{ record?: string; indexFilesWritten: number }> {
  const packs = [...plan.moveAside, ...plan.missing].sort();
  // nothing damaged and nothing lost: the older records only go
  const record =
    packs.length === 0 && lost.length === 0
      ? undefined
      : await saveDamageRecord(repo, {
          createdAt: new Date().toISOString(),
          source: 'repair',
          packs,
          damagedPacks: [],
          blobs: [],
          lost,
        });

  reporter.phase('salvage');
  throwIfAborted(signal);
  repo.trackWrittenPacks();
  for (const s of plan.salvage) {
    throwIfAborted(signal);
    const bytes = await repo.backend.load({ type: 'data', name: s.pack });
    for (const b of s.blobs) {
      const sealed = bytes.subarray(b.offset, b.offset + b.length);
      // opened again: what is copied must be what the scan found sound
      repo.openBlob(b, s.pack, sealed);
      await repo.addSealedBlob(b.type, b.id, Buffer.from(sealed), b.rawLength, b.compression);
    }
  }
  await repo.flush();
  let indexFilesWritten = repo.takeWrittenPacks().length > 0 ? 1 : 0;

  reporter.phase('write index');
  throwIfAborted(signal);
  let batch: { name: string; blobs: PackedBlob[] }[] = [];
  let inBatch = 0;
  for (const p of plan.newIndex) {
    if (inBatch > 0 && inBatch + p.blobs.length > BLOBS_PER_INDEX_FILE) {
      await repo.writeIndexFile(batch);
      indexFilesWritten++;
      batch = [];
      inBatch = 0;
    }
    batch.push(p);
    inBatch += p.blobs.length;
  }
  if (batch.length > 0) {
    await repo.writeIndexFile(batch);
    indexFilesWritten++;
  }

  reporter.phase('move damaged data aside');
  throwIfAborted(signal);
  // suspended past its lease, this repair may have been judged stale and a backup may have written since
  await lock.verify();
  for (const name of plan.quarantineIndexFiles) await moveAside(repo, { type: 'index', name }, false);
  for (const name of plan.removeIndexFiles) await repo.backend.remove({ type: 'index', name });
  for (const name of plan.moveAside) await moveAside(repo, { type: 'data', name }, true);
  for (const r of records) if (r.name !== record) await repo.backend.remove({ type: 'damage', name: r.name });
  return { record, indexFilesWritten };
}

/**
 * Copy an object to quarantine/TYPE.NAME, durably, and then (when `remove`) remove it. Killed in between, both
 * copies exist and the next repair copies it again: a save replaces an object whole.
 */
async function moveAside(repo: Repository, h: ObjectHandle, remove: boolean): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await repo.backend.load(h);
  } catch (err) {
    // gone already (a repair killed after removing it): its copy is in quarantine
    if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return;
    throw err;
  }
  await repo.backend.save({ type: 'quarantine', name: `${h.type}.${h.name}` }, bytes);
  if (remove) await repo.backend.remove(h);
}
