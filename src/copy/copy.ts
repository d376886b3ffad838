/**
 * Copying backups from one repository to another (an offsite copy): the
 * snapshots asked for, and exactly the blobs they need that the target lacks.
 * Blob ids are the SHA-256 of the plaintext, so a blob is decrypted with the
 * source's key (and checked against its id) and sealed again with the target's,
 * and trees need no rewriting.
 *
 * The write order is a backup's: packs, then the index files that describe
 * them (flush), then the snapshots. A copy that dies at any instant leaves the
 * target valid (at worst packs no index names, which prune removes), and the
 * next run finds the blobs already indexed and does not copy them again.
 *
 * The source's actor registry and audit log travel too, as evidence kept under
 * the source's id (src/trust/carried-trail.ts): checked before anything is
 * written, carried after the snapshots, never read by the target's gate.
 */
import { sha256Hex } from '../crypto/hash.js';
import { FoleBackupError, StopError } from '../errors.js';
import { RepositoryLock } from '../repository/lock.js';
import { loadedInOrder } from '../concurrency/in-order.js';
import type { Repository } from '../repository/repository.js';
import { silentReporter, type ProgressReporter } from '../progress/reporter.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { loadSnapshot, resolveBackupId, saveSnapshot, scanSnapshots } from '../snapshot/store.js';
import { readTree } from '../snapshot/tree.js';
import { carryTrail, prepareCarry } from '../trust/carried-trail.js';
import { blobBytesIn, loadPack, packHashError } from '../verify/pack-bytes.js';
import { CopyPool } from './copy-pool.js';
import type { ResealedBlob } from './copy-worker.js';
import { missingBlobs, planCopy, planSpans, type NeededBlob, type PackSpan } from './plan.js';

/** How `copyBackups` runs: which backups, whether to re-read what it wrote, where progress goes. */
export interface CopyOptions {
  /** Backups to copy: whole ids, unique prefixes or `latest`; all of the source's when absent or empty. */
  backupIds?: readonly string[];
  /** After the copy, read back every pack it wrote and decrypt and hash every blob in it. */
  readData?: boolean;
  reporter?: ProgressReporter;
  signal?: AbortSignal;
}

/** One backup a copy wrote. */
interface CopiedBackup {
  backupId: string;
  createdAt: string;
  /** Blobs (tree and content) this backup needed that the target lacked, and their plaintext bytes. */
  blobs: number;
  bytes: number;
}

/** What `copyBackups` did: per backup, the blobs and bytes it moved, and what it verified. */
export interface CopyReport {
  from: { repository: string; id: string };
  to: { repository: string; id: string };
  copied: CopiedBackup[];
  /** Backups asked for that the target already held. */
  skipped: string[];
  /** Backups of the source that cannot be read, left out of a copy of all. */
  damaged: string[];
  /** Blobs the copied backups need in all, and how many of those the target already had. */
  blobsNeeded: number;
  blobsPresent: number;
  blobsCopied: number;
  /** Plaintext bytes of the blobs copied, and the bytes written to the target (packs and index files). */
  bytesCopied: number;
  bytesWritten: number;
  packsWritten: number;
  verified: { backups: number; blobs: number; packsRead: number; blobsRead: number };
  /**
   * The source's trail carried into the target (src/trust/carried-trail.ts): its repository id, and per chain the
   * entries this copy added and how many the target now holds.
   */
  trail: {
    origin: string;
    registryEntries: { carried: number; total: number };
    auditEntries: { carried: number; total: number };
  };
  durationMs: number;
}

/**
 * The source is read a span of a pack at a time (planSpans): at most SPAN_BYTES each, a gap of at most SPAN_GAP
 * read through rather than paid for with another request, and at most SPANS_AHEAD spans and LOADED_BYTES read
 * ahead of the blob being stored (one span alone may be larger): read, being opened and sealed on a worker, or
 * sealed and waiting to be packed.
 */
const SPAN_BYTES = 16 * 1024 * 1024;
const SPAN_GAP = 1024 * 1024;
const SPANS_AHEAD = 8;
const LOADED_BYTES = 64 * 1024 * 1024;
/**
 * Finished packs uploaded to the target at once, by the bytes they hold: a distant target (S3, SFTP) takes one
 * connection's worth at a time, so several packs go at once; each upload holds its pack in memory until stored.
 *
 * Together these bound the copy's buffers by design, whatever its size: LOADED_BYTES + SPAN_BYTES ahead, and the
 * open pack and the packs uploading (UPLOAD_BYTES / packSize of them, at least 2, at most MAX_UPLOADS), each
 * keeping alive the sealed spans its blobs are views of — its own bytes and at most the rest of one span at either
 * end: (uploads + 1) × (packSize + 2 × SPAN_BYTES). For 16 MiB packs: 80 + 5 × 48 = 320 MiB at worst.
 */
const UPLOAD_BYTES = 64 * 1024 * 1024;
const MAX_UPLOADS = 4;
/**
 * The packs uploaded are indexed at most this often (and after the first pack): a copy cut off keeps what was
 * indexed, while one index file per pack would bloat a large copy's index.
 */
const INDEX_EVERY_MS = 10_000;

/**
 * Copy backups from `from` to `to` (both open; the caller closes them). Refuses, writing nothing, when they are
 * the same repository or a backup asked for is not in the source. Holds a shared lock on each while it runs (on
 * the source only when it can be written).
 */
export async function copyBackups(from: Repository, to: Repository, opts: CopyOptions = {}): Promise<CopyReport> {
  const started = Date.now();
  const reporter = opts.reporter ?? silentReporter;
  refuseSameRepository(from, to);
  const onStale = (l: { name: string; stale: false | string }): void =>
    reporter.warn(
      `ignoring stale repository lock ${l.name.slice(0, 12)} (${l.stale}); \`fole-backup unlock\` removes it`,
    );
  // a source that cannot be written (a read-only mount, an append-only copy) is copied from without a lock
  const fromLock = await RepositoryLock.acquireForReading(from, {
    operation: 'copy-from',
    onStale,
    onUnlocked: (why) => reporter.warn(why),
  });
  try {
    reporter.phase('copy: choose backups');
    const scan = await scanSnapshots(from);
    const wanted =
      opts.backupIds === undefined || opts.backupIds.length === 0
        ? undefined
        : await Promise.all(opts.backupIds.map((ref) => resolveBackupId(from, ref)));
    const damagedIds = scan.damaged.map((d) => d.backupId);
    const plan = planCopy(
      [...scan.snapshots.map((s) => s.backupId), ...(wanted === undefined ? [] : damagedIds)],
      wanted,
      await snapshotNames(to),
    );
    const toLock = await RepositoryLock.acquire(to, { exclusive: false, operation: 'copy-to', onStale });
    try {
      // a source whose trail was cut back or rewritten is a STOP before anything reaches the target
      reporter.phase('copy: read audit trail');
      const carry = await prepareCarry(from, to);
      const report = await copyPlanned(from, to, plan.copy, { ...opts, reporter }, toLock);
      reporter.phase('copy: carry audit trail');
      const carried = await carryTrail(to, carry.plan, carry.source, opts.signal);
      return {
        ...report,
        from: { repository: from.backend.location, id: from.config.id },
        to: { repository: to.backend.location, id: to.config.id },
        skipped: plan.skip,
        damaged: wanted === undefined ? damagedIds : [],
        trail: {
          origin: carry.plan.origin,
          registryEntries: { carried: carried.registryEntries, total: carry.plan.registry.to },
          auditEntries: { carried: carried.auditEntries, total: carry.plan.audit.to },
        },
        durationMs: Date.now() - started,
      };
    } finally {
      await toLock.release().catch((err: unknown) => reporter.warn(`release the target's lock: ${String(err)}`));
    }
  } finally {
    await fromLock?.release().catch((err: unknown) => reporter.warn(`release the source's lock: ${String(err)}`));
  }
}

function refuseSameRepository(from: Repository, to: Repository): void {
  if (from.config.id === to.config.id && from.backend.location === to.backend.location) {
    throw new FoleBackupError(
      'USAGE',
      `the source and the target are the same repository (${to.backend.location}, id ${to.config.id})`,
      { hint: 'copy to a second repository on other storage (make one with `fole-backup init --from-repo`)' },
    );
  }
}

async function snapshotNames(repo: Repository): Promise<Set<string>> {
  const names = new Set<string>();
  for await (const o of repo.backend.list('snapshots')) names.add(o.name);
  return names;
}

type Planned = Pick<
  CopyReport,
  | 'copied'
  | 'blobsNeeded'
  | 'blobsPresent'
  | 'blobsCopied'
  | 'bytesCopied'
  | 'bytesWritten'
  | 'packsWritten'
  | 'verified'
>;

async function copyPlanned(
  from: Repository,
  to: Repository,
  ids: readonly string[],
  opts: CopyOptions & { reporter: ProgressReporter },
  toLock: RepositoryLock,
): Promise<Planned> {
  const { reporter, signal } = opts;
  await Promise.all([from.loadIndex(signal), to.loadIndex(signal)]);
  reporter.phase('copy: read file lists');
  const snapshots: Snapshot[] = [];
  const needed = new Map<string, NeededBlob>();
  const firstNeededBy = new Map<string, string>();
  for (const id of ids) {
    const snap = await loadSnapshot(from, id);
    snapshots.push(snap);
    for (const blob of await blobsOf(from, snap, signal)) {
      if (needed.has(blob)) continue;
      const e = from.index.get(blob);
      if (e === undefined) throw new FoleBackupError('INTERNAL', `blob ${blob.slice(0, 12)} left the index`);
      needed.set(blob, { id: blob, rawLength: e.rawLength, pack: e.pack, offset: e.offset, length: e.length });
      firstNeededBy.set(blob, id);
    }
  }
  const missing = missingBlobs(needed.values(), (id) => to.hasBlob(id));
  const per = new Map(ids.map((id) => [id, { blobs: 0, bytes: 0 }]));
  for (const b of missing) {
    const p = per.get(firstNeededBy.get(b.id) as string) as { blobs: number; bytes: number };
    p.blobs++;
    p.bytes += b.rawLength;
  }
  const totalBytes = missing.reduce((n, b) => n + b.rawLength, 0);
  reporter.phase('copy data');
  to.trackWrittenPacks();
  const before = to.addedBytes;
  let bytesCopied = 0;
  try {
    let blobsDone = 0;
    await moveBlobs(from, to, missing, signal, (b) => {
      bytesCopied += b.rawLength;
      blobsDone++;
      reporter.progress({
        files: blobsDone,
        totalFiles: missing.length,
        bytes: bytesCopied,
        totalBytes,
        current: b.id.slice(0, 12),
      });
    });
    await to.flush();
  } catch (err) {
    to.discardPending();
    throw err;
  }
  const written = to.takeWrittenPacks();
  signal?.throwIfAborted();
  // the snapshots come last, once their data and index are durable and the lock still ours
  await toLock.verify();
  reporter.phase('copy: write backups');
  for (const snap of snapshots) {
    const { auditHead: _sourceLog, ...copy } = snap;
    await saveSnapshot(to, copy);
  }
  reporter.phase('copy: verify');
  const verified = await verifyCopy(to, ids, opts.readData === true ? written : []);
  return {
    copied: snapshots.map((s) => ({
      backupId: s.backupId,
      createdAt: s.createdAt,
      ...per.get(s.backupId),
    })) as CopiedBackup[],
    blobsNeeded: needed.size,
    blobsPresent: needed.size - missing.length,
    blobsCopied: missing.length,
    bytesCopied,
    bytesWritten: to.addedBytes - before,
    packsWritten: written.length,
    verified,
  };
}

/** Every blob a backup needs: its tree blobs and the chunks its entries name, each once. */
async function blobsOf(repo: Repository, snap: Snapshot, signal: AbortSignal | undefined): Promise<Set<string>> {
  const ids = new Set<string>(snap.tree);
  for await (const e of readTree(repo, snap.tree)) {
    signal?.throwIfAborted();
    for (const c of e.chunks ?? []) ids.add(c);
  }
  return ids;
}

/**
 * Load each blob from the source (decrypted, checked against its id) and store it sealed with the target's key.
 * The source is read a span of a pack at a time, ahead of the stores (bounded in count and bytes), and finished
 * packs upload several at once (bounded in bytes); the target's index names a pack only once its upload is done.
 */
async function moveBlobs(
  from: Repository,
  to: Repository,
  blobs: readonly NeededBlob[],
  signal: AbortSignal | undefined,
  done: (b: NeededBlob) => void,
): Promise<void> {
  to.setMaxUploads(Math.min(MAX_UPLOADS, Math.max(2, Math.floor(UPLOAD_BYTES / to.config.packSize))));
  const spans = planSpans(blobs, SPAN_BYTES, SPAN_GAP);
  const span = (i: number): PackSpan => spans[i] as PackSpan;
  // the source's blobs are opened (decrypted, decompressed, checked against their ids), compressed and sealed
  // with the target's key on worker threads, span by span, while the main thread packs those done before
  const pool = new CopyPool(from.blobCipher(), to.blobCipher());
  try {
    const resealed = loadedInOrder(spans.length, (i) => resealSpan(from, pool, span(i)), SPANS_AHEAD, {
      sizeOf: (i) => span(i).length,
      max: LOADED_BYTES,
    });
    let uploaded = to.addedBytes;
    let indexedAt = 0;
    let i = 0;
    for await (const r of resealed) {
      const s = span(i++);
      for (const [j, b] of s.blobs.entries()) {
        signal?.throwIfAborted();
        const sealed = r.blobs[j];
        if (sealed?.id !== b.id)
          throw new FoleBackupError('INTERNAL', `blob ${b.id.slice(0, 12)} came back out of order`);
        if (to.claimBlob(b.id)) {
          const bytes = r.data.subarray(sealed.offset, sealed.offset + sealed.length);
          await to.addSealedBlob(sealed.type, b.id, bytes, sealed.rawLength, sealed.compression);
        }
        done(b);
        if (to.addedBytes !== uploaded && Date.now() - indexedAt >= INDEX_EVERY_MS) {
          await to.indexUploaded();
          uploaded = to.addedBytes;
          indexedAt = Date.now();
        }
      }
    }
  } finally {
    await pool.close();
  }
}

/**
 * Read one span of a source pack and have a worker open its blobs and seal them for the target. A blob that does
 * not open is the STOP it would be on the main thread (CHECKSUM_MISMATCH for a bad tag, content or length).
 */
async function resealSpan(
  from: Repository,
  pool: CopyPool,
  s: PackSpan,
): Promise<{ data: Buffer; blobs: ResealedBlob[] }> {
  const bytes = await readSpan(from, s);
  const blobs = s.blobs.map((b) => {
    const e = from.index.get(b.id);
    if (e === undefined) throw new FoleBackupError('INTERNAL', `blob ${b.id.slice(0, 12)} left the index`);
    // where the blob is in the span's bytes; a span shorter than the index says fails here, as a pack would
    const at = { ...e, offset: b.offset - s.offset };
    blobBytesIn(bytes, s.pack, at);
    return at;
  });
  return pool.reseal(s.pack, bytes, blobs);
}

/** One span of a source pack; a pack that is missing or shorter than the index says is CHECKSUM_MISMATCH. */
async function readSpan(from: Repository, s: PackSpan): Promise<Buffer> {
  try {
    return await from.backend.load({ type: 'data', name: s.pack }, { offset: s.offset, length: s.length });
  } catch (err) {
    if (err instanceof FoleBackupError && (err.code === 'NOT_FOUND' || err.code === 'REPO_CORRUPT')) {
      throw new StopError('CHECKSUM_MISMATCH', `source pack ${s.pack.slice(0, 12)}: ${err.message}`, {
        cause: err,
        hint: 'the source is missing data its backups need; run `fole-backup check --read-data` on it',
      });
    }
    throw err;
  }
}

/**
 * What the copy wrote, as a new reader would find it: each copied snapshot opens with the target's key, its trees
 * read back, and every blob they name is in the target's index files as stored (read again, not the in-memory
 * index). With `packs`, each is read whole, hashed against its name, and every blob in it decrypted and hashed.
 */
async function verifyCopy(
  to: Repository,
  ids: readonly string[],
  packs: readonly { name: string }[],
): Promise<CopyReport['verified']> {
  const indexed = new Set<string>();
  for (const name of await to.listIndexFiles()) {
    for (const p of await to.readIndexFile(name)) for (const b of p.blobs) indexed.add(b.id);
  }
  let blobs = 0;
  for (const id of ids) {
    const snap = await loadSnapshot(to, id);
    for (const blob of await blobsOf(to, snap, undefined)) {
      if (!indexed.has(blob)) {
        throw new FoleBackupError(
          'INTERNAL',
          `copy verification: backup ${id} needs blob ${blob.slice(0, 12)}, which no index file of the target names`,
          { hint: 'run `fole-backup copy` again, then `fole-backup check` on the target' },
        );
      }
      blobs++;
    }
  }
  let blobsRead = 0;
  for (const { name } of packs) {
    const bytes = await loadPack(to.backend, name);
    if (sha256Hex(bytes) !== name) throw packHashError(name, bytes.length);
    for (const b of to.readPackHeader(bytes, name)) {
      to.openBlob(b, name, blobBytesIn(bytes, name, b));
      blobsRead++;
    }
  }
  return { backups: ids.length, blobs, packsRead: packs.length, blobsRead };
}
