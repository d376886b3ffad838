/**
 * A repository handle: the config, the master key, the index and the pack
 * writer over one Backend. Everything but `config` and `keys/*` is sealed with
 * the master key (src/crypto/aead.ts). See docs/REPOSITORY_FORMAT.md.
 *
 * Write ordering is what makes a crash harmless: packs first, then the index
 * files that describe them, then (by the caller) the snapshot. A crash leaves
 * only unreferenced packs, which the next backup ignores and prune removes.
 */
import { randomUUID } from 'node:crypto';
import type { Backend, ObjectInfo, ObjectType } from '../backend/backend.js';
import { open, seal } from '../crypto/aead.js';
import { nativeModule } from '../native/module.js';
import { sha256Hex } from '../crypto/hash.js';
import {
  DEFAULT_KDF,
  generateMasterKey,
  parseKeyFile,
  unwrapMasterKey,
  wrapMasterKey,
  MAX_KEY_FILE_BYTES,
  type KdfParams,
  type KeyFileData,
  type MasterKey,
  type Unwrapped,
} from '../crypto/keys.js';
import { FoleBackupError, StopError, errnoCode } from '../errors.js';
import { compressAlways, decompressAny, maybeCompress } from './compress.js';
import {
  AAD,
  DEFAULT_DB_CHUNK,
  DEFAULT_FILE_CHUNK,
  DEFAULT_PACK_SIZE,
  FORMAT_VERSION,
  type BlobType,
  type RepositoryConfig,
} from './format.js';
import { decodeIndexFile, encodeIndexFile, MasterIndex, parseIndexJson } from './master-index.js';
import { BlobCipher } from './blob-cipher.js';
import { DamageBook, describeNote } from './damage-book.js';
import { loadDamageRecords } from './damage.js';
import { openBlob } from './open-blob.js';
import type { PackReaders } from './pack-readers.js';
import { OpenPack } from './open-pack.js';
import type { SealedBlobArgs } from './slices.js';
import { parsePackHeader, type PackedBlob } from './pack.js';
import { forEachConcurrent } from '../concurrency/for-each.js';
import type { ProgressReporter } from '../progress/reporter.js';

/** How a repository is opened: where damaged key files are reported, and which key file to try first. */
export interface OpenOptions {
  /** Told about key files that were skipped as damaged. */
  reporter?: Pick<ProgressReporter, 'warn'>;
  /** A prefix of the name of the key file to try first (restic's --key-hint). */
  keyHint?: string;
}

/**
 * The most key files a password is tried against (one scrypt derivation each,
 * ~0.1 s and 32 MiB): anyone who can write to keys/ could otherwise make every
 * command cost seconds with planted key files. A repository with more keys is
 * opened with a key hint.
 */
export const MAX_KEY_TRIES = 20;

/** How a new repository is made: the key derivation's cost and the pack and chunk sizes. */
export interface InitOptions {
  kdf?: KdfParams;
  packSize?: number;
  fileChunkSize?: number;
  dbChunkSize?: number;
}

/** Index files are written every this many new blobs, so a long backup that dies keeps most of its work. */
const INDEX_FLUSH_BLOBS = 50_000;
/** Pack uploads in flight at once. */
export const MAX_UPLOADS = 2;

/** An open repository: its config, its master key (which never leaves this object), the index and the pack
 * writer over one Backend. Open it with openRepository; consumers below the entry points take a slice of it
 * (src/repository/slices.ts). */
export class Repository {
  readonly index = new MasterIndex();
  private pack: OpenPack;
  /** Blob ids in the open pack or in packs being uploaded: not yet in the index. */
  private readonly pending = new Set<string>();
  /** Claimed by a worker, not yet delivered (a subset of pending). */
  private readonly claimed = new Set<string>();
  private readonly uploads = new Set<Promise<void>>();
  private unindexed: { name: string; blobs: PackedBlob[] }[] = [];
  private unindexedBlobs = 0;
  /** Packs written since trackWrittenPacks() (prune's new index); not kept otherwise. */
  private written: { name: string; blobs: PackedBlob[] }[] | undefined;
  private uploadError: unknown;
  /** Bytes written to the backend by this handle (packs + index files). */
  addedBytes = 0;
  /** Pack uploads this handle lets run at once (each holds its pack in memory where the backend takes no drafts). */
  private maxUploads = MAX_UPLOADS;

  private constructor(
    readonly backend: Backend,
    readonly config: RepositoryConfig,
    private readonly key: MasterKey,
    /** The key file this handle was opened with. */
    readonly keyName: string,
  ) {
    this.pack = new OpenPack(backend);
  }

  /** Create a new repository on an empty backend location. */
  static async init(backend: Backend, password: string, opts: InitOptions = {}): Promise<Repository> {
    nativeModule();
    const config: RepositoryConfig = {
      formatVersion: FORMAT_VERSION,
      id: randomUUID(),
      createdAt: new Date().toISOString(),
      packSize: opts.packSize ?? DEFAULT_PACK_SIZE,
      fileChunkSize: opts.fileChunkSize ?? DEFAULT_FILE_CHUNK,
      dbChunkSize: opts.dbChunkSize ?? DEFAULT_DB_CHUNK,
    };
    const master = generateMasterKey(config.id);
    const keyFile = await wrapMasterKey(master, password, opts.kdf ?? DEFAULT_KDF);
    await backend.create();
    // key first, config last: a location with a config is a usable repository
    const keyName = sha256Hex(Buffer.from(keyFile.data));
    await backend.save({ type: 'keys', name: keyName }, Buffer.from(JSON.stringify(keyFile, null, 2)));
    await backend.save({ type: 'config', name: 'config' }, Buffer.from(`${JSON.stringify(config, null, 2)}\n`));
    return new Repository(backend, config, master, keyName);
  }

  /**
   * Open an existing repository with a password: every key file is tried in
   * name order until one opens. Throws REPO_NOT_FOUND if there is no
   * repository, REPO_FORMAT_UNSUPPORTED for a format this build does not know,
   * StopError PERMISSION_DENIED if no key file opens with the password, and
   * StopError CHECKSUM_MISMATCH when no password could open it (no key files,
   * every key file damaged) or the password opens a key file made for another
   * repository id than the config's (the config was replaced or edited).
   *
   * A key file that cannot be read or is not one this build writes (anyone who
   * can write to keys/ can put one there) is skipped, never derived with, and
   * reported through `opts.reporter`: one bad file must not lock everyone out.
   */
  static async open(backend: Backend, password: string, opts: OpenOptions = {}): Promise<Repository> {
    // an install without the cipher module fails here, saying so, not as key files that will not open
    nativeModule();
    const config = await readConfig(backend);
    const where = `open repository ${backend.location}`;
    const listed: ObjectInfo[] = [];
    for await (const k of backend.list('keys')) listed.push(k);
    const hinted = (n: string): boolean =>
      opts.keyHint !== undefined && opts.keyHint !== '' && n.startsWith(opts.keyHint);
    // name order, the hinted key files first
    listed.sort((a, b) =>
      hinted(a.name) !== hinted(b.name) ? (hinted(a.name) ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    if (listed.length === 0) {
      throw new StopError(
        'CHECKSUM_MISMATCH',
        `${where}: the repository has no key files (keys/ is empty or missing): no password can open it`,
        {
          hint:
            'restore keys/ from a copy of this repository (a key file is useless without its password); ' +
            'nothing was read or changed',
        },
      );
    }
    const damaged: string[] = [];
    let otherRepository: { key: string; id: string } | undefined;
    let tried = 0;
    for (const info of listed) {
      if (tried === MAX_KEY_TRIES) {
        throw new StopError(
          'PERMISSION_DENIED',
          `${where}: no key file opened with this password among the ${MAX_KEY_TRIES} tried; the repository has ` +
            `${listed.length} key files`,
          {
            hint:
              `name your key file with --key-hint <the first characters of its name> (or ` +
              `FOLE_BACKUP_KEY_HINT); key files beyond ${MAX_KEY_TRIES} are not tried, so planted ones cannot ` +
              `make every command slow. Check the password too; nothing was read or changed`,
          },
        );
      }
      let r: Unwrapped;
      try {
        r = await unwrapMasterKey(await readKeyFile(backend, info), password, config.id);
      } catch (err) {
        // a fault of this program (INTERNAL) says nothing of the key file
        if (!(err instanceof FoleBackupError) || err.code === 'INTERNAL') throw err;
        damaged.push(info.name);
        opts.reporter?.warn(
          `key file ${info.name.slice(0, 16)} is damaged and was skipped: ${keyFileProblem(err, info.name)}` +
            `; \`fole-backup key list\` shows it, \`fole-backup key remove\` removes it`,
          `keys/${info.name}`,
        );
        continue;
      }
      tried++;
      if (r.kind === 'opened') return new Repository(backend, config, r.master, info.name);
      if (r.kind === 'other-repository') otherRepository ??= { key: info.name, id: r.repositoryId };
    }
    if (otherRepository !== undefined) {
      throw new StopError(
        'CHECKSUM_MISMATCH',
        `${where}: the config and the key files disagree: the password opens key file ` +
          `${otherRepository.key.slice(0, 16)}, made for repository ${otherRepository.id}, but the config says ` +
          `${config.id}`,
        {
          hint:
            `either the config was replaced (restore the config of repository ${otherRepository.id}` +
            ` from a copy) or keys/ were copied from repository ${otherRepository.id}` +
            ` (restore this repository's keys/ from a copy); nothing was read or changed`,
        },
      );
    }
    if (damaged.length === listed.length) {
      throw new StopError(
        'CHECKSUM_MISMATCH',
        `${where}: every key file is damaged (${damaged.length}): no password can open it`,
        {
          hint: 'restore keys/ from a copy of this repository; nothing was read or changed',
        },
      );
    }
    const skipped =
      damaged.length === 0
        ? ''
        : `; ${damaged.length} damaged key file${damaged.length === 1 ? ' was' : 's were'}` +
          ` skipped: ${damaged.map((n) => n.slice(0, 16)).join(', ')}`;
    throw new StopError(
      'PERMISSION_DENIED',
      `${where}: wrong password or key file: no key file opens with this password${skipped}`,
      {
        hint: 'check FOLE_BACKUP_PASSWORD / --password-file; nothing was read or changed',
      },
    );
  }

  /** Add another key file (a second person or machine) for the same master key. */
  async addKey(password: string, kdf: KdfParams = DEFAULT_KDF, label?: string): Promise<string> {
    const keyFile = await wrapMasterKey(this.key, password, kdf, label);
    const name = sha256Hex(Buffer.from(keyFile.data));
    await this.backend.save({ type: 'keys', name }, Buffer.from(JSON.stringify(keyFile, null, 2)));
    return name;
  }

  // ---- sealed JSON objects (index, snapshots, locks) ----

  /** Seal a JSON value and save it. Returns the object's name (given, or SHA-256 of the stored bytes). */
  async saveJson(type: ObjectType, value: unknown, aad: Uint8Array, name?: string): Promise<string> {
    const stored = seal(this.key.encrypt, compressAlways(Buffer.from(JSON.stringify(value))), aad);
    const objectName = name ?? sha256Hex(stored);
    await this.backend.save({ type, name: objectName }, stored);
    this.addedBytes += stored.length;
    return objectName;
  }

  /** Like saveJson under a given name, but only if no object has it: ALREADY_EXISTS otherwise (Backend.saveNew). */
  async createJson(type: ObjectType, name: string, value: unknown, aad: Uint8Array): Promise<void> {
    const stored = seal(this.key.encrypt, compressAlways(Buffer.from(JSON.stringify(value))), aad);
    await this.backend.saveNew({ type, name }, stored);
    this.addedBytes += stored.length;
  }

  async loadJson(type: ObjectType, name: string, aad: Uint8Array): Promise<unknown> {
    const plain = await this.loadPlain(type, name, aad);
    try {
      return JSON.parse(plain.toString('utf8'));
    } catch (err) {
      throw new FoleBackupError('REPO_CORRUPT', `${type}/${name}: not valid JSON`, { cause: err });
    }
  }

  /** An object's plaintext: loaded, opened with the master key and decompressed. */
  private async loadPlain(type: ObjectType, name: string, aad: Uint8Array): Promise<Buffer> {
    const stored = await this.backend.load({ type, name });
    return decompressAny(open(this.key.encrypt, stored, `${type}/${name}`, aad), `${type}/${name}`);
  }

  /** Seal/open raw bytes with the master key (for callers with their own object layouts). */
  sealBytes(plain: Uint8Array, aad: Uint8Array): Buffer {
    return seal(this.key.encrypt, plain, aad);
  }

  openBytes(sealed: Uint8Array, what: string, aad: Uint8Array): Buffer {
    return open(this.key.encrypt, sealed, what, aad);
  }

  // ---- index ----

  private indexLoad: Promise<void> | undefined;
  private damageLoad: Promise<DamageBook> | undefined;
  private damageBook = new DamageBook();

  /** The repository's damage records (damage.ts), as loaded by loadIndex or loadDamage. */
  get damage(): DamageBook {
    return this.damageBook;
  }

  /**
   * Load the damage records, once per handle, and leave the locations they name out of the index from now on.
   * A record that does not decrypt or validate is a STOP like a damaged index file.
   */
  loadDamage(): Promise<DamageBook> {
    this.damageLoad ??= loadDamageRecords(this).then(
      (records) => {
        this.damageBook = new DamageBook(records);
        this.index.setDamage(this.damageBook);
        return this.damageBook;
      },
      (err: unknown) => {
        this.damageLoad = undefined;
        throw damagedObjectStop(err, 'damage', 'a damage record');
      },
    );
    return this.damageLoad;
  }

  /**
   * Use exactly these packs as the index, ignoring index files and damage records: repair builds the index from
   * the packs themselves.
   */
  adoptIndex(packs: Iterable<{ name: string; blobs: readonly PackedBlob[] }>): void {
    if (this.indexLoad !== undefined) throw new FoleBackupError('INTERNAL', 'adoptIndex after the index was loaded');
    for (const p of packs) this.index.addPack(p.name, p.blobs);
    this.indexLoad = Promise.resolve();
  }

  /**
   * Load every index file into memory, once per handle (later calls wait for
   * the first). Every method that reads blobs calls it.
   */
  loadIndex(signal?: AbortSignal): Promise<void> {
    this.indexLoad ??= this.readIndexFiles(signal).catch((err: unknown) => {
      this.indexLoad = undefined;
      throw err;
    });
    return this.indexLoad;
  }

  private async readIndexFiles(signal?: AbortSignal): Promise<void> {
    await this.loadDamage();
    await forEachConcurrent(await this.listIndexFiles(), 8, async (name) => {
      signal?.throwIfAborted();
      await this.loadIndexFile(name, (bytes) => this.index.addIndexBytes(bytes, name));
    });
  }

  /**
   * Load one index file and hand its plaintext to `use` (which parses and validates it). An
   * index file that does not decrypt, decompress, parse or validate is damage to the
   * repository, a STOP like a damaged pack or snapshot: CHECKSUM_MISMATCH naming the file.
   * Read errors (I/O, permissions) stay what they are.
   */
  private async loadIndexFile<T>(name: string, use: (plain: Buffer) => T): Promise<T> {
    try {
      return use(await this.loadPlain('index', name, AAD.index));
    } catch (err) {
      throw damagedObjectStop(err, `index/${name}`, 'the repository index');
    }
  }

  /** Names of all index files. */
  async listIndexFiles(): Promise<string[]> {
    const names: string[] = [];
    for await (const o of this.backend.list('index')) names.push(o.name);
    return names.sort();
  }

  // ---- blobs ----

  /** Whether a blob is stored (or being stored by this handle). */
  hasBlob(id: string): boolean {
    if (this.pending.has(id)) return true;
    // a blob whose only copy is in a pack a damage record names is stored again, elsewhere
    const pack = this.index.soundPack(id);
    if (pack === undefined) return false;
    this.reused?.add(pack);
    return true;
  }

  /** Packs of the blobs found stored (hasBlob) since trackReusedPacks(); undefined when not tracking. */
  private reused: Set<string> | undefined;

  /**
   * Note, from now on, the pack of every stored blob this handle finds already
   * there (and so does not store again). A backup relies on those packs; it
   * checks they still exist before it writes its snapshot (see reusedPacks).
   */
  trackReusedPacks(): void {
    this.reused ??= new Set();
  }

  /** The packs noted since trackReusedPacks(). */
  reusedPacks(): ReadonlySet<string> {
    return this.reused ?? new Set();
  }

  /**
   * Store a blob unless the repository already has it. `id` must be the SHA-256 of
   * `plain` (callers usually computed it already; it is not recomputed here).
   * Returns the number of new bytes it will add (0 when deduplicated).
   * The caller must not modify `plain` until the returned promise settles.
   */
  async saveBlob(
    type: BlobType,
    id: string,
    plain: Uint8Array,
    opts: { evenIfIndexed?: boolean } = {},
  ): Promise<number> {
    if (this.uploadError !== undefined) throw this.uploadError;
    // dedup needs the index; only the first call can actually wait here
    if (this.indexLoad === undefined) await this.loadIndex();
    // prune repacks blobs the index knows (in packs about to go): it must write them again
    if (opts.evenIfIndexed ? this.pending.has(id) : this.hasBlob(id)) return 0;
    const { bytes, compression } = maybeCompress(plain);
    const sealed = seal(this.key.encrypt, bytes, AAD.blob(type, Buffer.from(id, 'hex')));
    this.pack.add(id, type, sealed, plain.length, compression);
    this.pending.add(id);
    await this.added();
    return sealed.length;
  }

  /**
   * Claim a blob for storing by someone else (a worker thread that seals it):
   * true when the repository has neither stored nor claimed it. A claimed blob
   * counts as present for dedup, so the claimer MUST deliver it with
   * addSealedBlob before flush() — flush refuses to finish otherwise, rather
   * than leave a backup pointing at data that was never written.
   */
  claimBlob(id: string): boolean {
    if (this.hasBlob(id)) return false;
    this.pending.add(id);
    this.claimed.add(id);
    return true;
  }

  /** Add a blob sealed elsewhere with this repository's key (see claimBlob). */
  async addSealedBlob(...[type, id, sealed, rawLength, compression, shared]: SealedBlobArgs): Promise<number> {
    if (this.uploadError !== undefined) throw this.uploadError;
    this.claimed.delete(id);
    // its length before the await: with `shared`, its buffer may be handed on (and detached) meanwhile
    const length = sealed.length;
    this.pack.add(id, type, sealed, rawLength, compression, shared);
    await this.added();
    return length;
  }

  /** After a blob is added to the open pack: finish it when full, else let it write what it holds. */
  private async added(): Promise<void> {
    if (this.pack.size >= this.config.packSize) await this.finishPack();
    else await this.pack.settle();
  }

  /**
   * Sealing and opening blobs, for threads that do it away from this handle:
   * the key stays inside the BlobCipher (a worker gets it through toWorker()).
   */
  blobCipher(): BlobCipher {
    return new BlobCipher(this.key.encrypt);
  }

  /**
   * Load a blob's plaintext and verify it against its id (CHECKSUM_MISMATCH
   * otherwise). With `readers`, its pack is read through them (several blobs of
   * one pack loaded together share one open).
   */
  async loadBlob(id: string, readers?: PackReaders): Promise<Buffer> {
    await this.loadIndex();
    const e = this.index.get(id);
    if (e === undefined) {
      throw new StopError('CHECKSUM_MISMATCH', `load blob ${id.slice(0, 12)}: ${this.whyMissing(id)}`, {
        hint: this.missingHint(id),
      });
    }
    let stored: Buffer;
    try {
      const range = { offset: e.offset, length: e.length };
      stored = await (readers !== undefined
        ? readers.read(e.pack, range)
        : this.backend.load({ type: 'data', name: e.pack }, range));
    } catch (err) {
      if (err instanceof FoleBackupError && (err.code === 'NOT_FOUND' || err.code === 'REPO_CORRUPT')) {
        throw new StopError(
          'CHECKSUM_MISMATCH',
          `load blob ${id.slice(0, 12)} from pack ${e.pack.slice(0, 12)}: ${err.message}`,
          {
            cause: err,
            hint: 'a pack is missing or truncated; run `fole-backup check --read-data`',
          },
        );
      }
      throw err;
    }
    return this.openBlob(e, e.pack, stored);
  }

  /** Why a blob is not in the index: lost (repair), recorded as damaged (check, verify), or simply absent. */
  whyMissing(id: string): string {
    const lost = this.damage.lost(id);
    if (lost !== undefined) return `lost: repair found no sound copy of it (${describeNote(lost)})`;
    const leftOut = this.index.leftOutBy(id);
    if (leftOut !== undefined) return `its only copy is recorded as damaged (${describeNote(leftOut)})`;
    return 'not in the repository index';
  }

  /** What to do about a blob whyMissing explains. */
  missingHint(id: string): string {
    return this.damage.lost(id) !== undefined || this.index.leftOutBy(id) !== undefined
      ? 'a backup of the same content stores it again (and this backup is whole again); `fole-backup check` lists ' +
          'the backups that need it, `fole-backup repair` moves damaged packs aside'
      : 'the repository is missing data this backup needs; run `fole-backup check`';
  }

  /**
   * Decrypt, decompress and verify one blob from its stored bytes (`stored` is
   * exactly the blob's sealed bytes). CHECKSUM_MISMATCH when the AEAD tag or the
   * SHA-256 of the plaintext does not match the id.
   */
  openBlob(b: PackedBlob, packName: string, stored: Uint8Array): Buffer {
    return openBlob(this.key.encrypt, b, packName, stored);
  }

  /** Parse the header of a whole pack's bytes (see src/repository/pack.ts). */
  readPackHeader(pack: Buffer, name: string): PackedBlob[] {
    return parsePackHeader(this.key.encrypt, pack, pack.length, name);
  }

  /**
   * Finish the open pack, wait for every upload, and write an index file for
   * every pack not yet indexed. After flush() resolves, every blob saved so far
   * is durable and findable by a new handle.
   */
  async flush(): Promise<void> {
    if (this.claimed.size > 0) {
      throw new FoleBackupError(
        'INTERNAL',
        `${this.claimed.size} claimed blobs were never delivered; refusing to write an index for them`,
      );
    }
    if (this.pack.count > 0) await this.finishPack();
    while (this.uploads.size > 0) await Promise.race(this.uploads);
    if (this.uploadError !== undefined) throw this.uploadError;
    await this.writeIndex();
  }

  /**
   * Write an index file for the packs uploaded so far, leaving the open pack open: a long copy calls it now and
   * then, so one that dies keeps what it uploaded findable by the next run.
   */
  async indexUploaded(): Promise<void> {
    if (this.uploadError !== undefined) throw this.uploadError;
    await this.writeIndex();
  }

  private async finishPack(): Promise<void> {
    const open = this.pack;
    this.pack = new OpenPack(this.backend);
    const pack = open.finish(this.key.encrypt);
    const upload = (async () => {
      try {
        await pack.store();
        this.addedBytes += pack.size;
        this.unindexed.push({ name: pack.name, blobs: pack.blobs });
        this.written?.push({ name: pack.name, blobs: pack.blobs });
        this.unindexedBlobs += pack.blobs.length;
        this.index.addPack(pack.name, pack.blobs);
        for (const b of pack.blobs) this.pending.delete(b.id);
      } catch (err) {
        this.uploadError ??= err;
      }
    })();
    this.uploads.add(upload);
    void upload.finally(() => this.uploads.delete(upload));
    while (this.uploads.size >= this.maxUploads) await Promise.race(this.uploads);
    if (this.uploadError !== undefined) throw this.uploadError;
    if (this.unindexedBlobs >= INDEX_FLUSH_BLOBS) await this.writeIndex();
  }

  private async writeIndex(): Promise<void> {
    if (this.unindexed.length === 0) return;
    const packs = this.unindexed;
    this.unindexed = [];
    this.unindexedBlobs = 0;
    await this.writeIndexFile(packs);
  }

  /** Write one index file describing `packs` (which must already be durable). Returns its name. */
  async writeIndexFile(packs: readonly { name: string; blobs: readonly PackedBlob[] }[]): Promise<string> {
    return this.saveJson('index', encodeIndexFile(packs), AAD.index);
  }

  /** Read one index file as written (every pack and blob it lists, duplicates included). */
  async readIndexFile(name: string): Promise<{ name: string; blobs: PackedBlob[] }[]> {
    return this.loadIndexFile(name, (bytes) => decodeIndexFile(parseIndexJson(bytes, name), name));
  }

  /**
   * Let up to `n` pack uploads run at once (at least one), for a writer whose data arrives faster than one
   * connection takes it (a copy to a distant repository). Each upload in flight holds a whole pack in memory:
   * the caller bounds `n` by bytes (n × packSize).
   */
  setMaxUploads(n: number): void {
    this.maxUploads = Math.max(1, Math.floor(n));
  }

  /**
   * Keep a list of the packs written from now on, for takeWrittenPacks (prune's
   * new index). Off by default: a backup would hold every new blob's entry twice.
   */
  trackWrittenPacks(): void {
    this.written ??= [];
  }

  /** Packs written since trackWrittenPacks() or the last call. */
  takeWrittenPacks(): { name: string; blobs: PackedBlob[] }[] {
    if (this.written === undefined) throw new FoleBackupError('INTERNAL', 'takeWrittenPacks without trackWrittenPacks');
    const out = this.written;
    this.written = [];
    return out;
  }

  /** Forget blobs that were added but not flushed (after a failed backup). */
  discardPending(): void {
    void this.pack.discard();
    this.pack = new OpenPack(this.backend);
    this.pending.clear();
    this.claimed.clear();
    this.uploadError = undefined;
  }

  async close(): Promise<void> {
    // a pack left open (a backup that failed) is not kept half written
    await this.pack.discard();
    await this.backend.close();
  }
}

/**
 * A sealed object that does not decrypt, decompress, parse or validate (`object`, e.g. "index/NAME") as the STOP
 * it is: damage to the repository, CHECKSUM_MISMATCH naming it. Read errors (I/O, permissions) stay what they are.
 */
function damagedObjectStop(err: unknown, object: string, what: string): unknown {
  if (!(err instanceof FoleBackupError && (err.code === 'REPO_CORRUPT' || err.code === 'CHECKSUM_MISMATCH'))) {
    return err;
  }
  return new StopError('CHECKSUM_MISMATCH', err.message.includes(object) ? err.message : `${object}: ${err.message}`, {
    cause: err,
    hint:
      `${what} is damaged: run \`fole-backup check\` to see which backups are affected, and keep the repository ` +
      'as it is; nothing was changed',
  });
}

/** The largest config accepted (one written by init is about 200 bytes). */
const MAX_CONFIG_BYTES = 64 * 1024;

/**
 * Read and parse one key file as listed (REPO_CORRUPT or a read error naming
 * it otherwise). One larger than any key file is refused by its listed size,
 * and no more than that size is ever read.
 */
export async function readKeyFile(backend: Backend, info: ObjectInfo): Promise<KeyFileData> {
  if (info.size > MAX_KEY_FILE_BYTES) {
    throw new FoleBackupError('REPO_CORRUPT', `key file ${info.name}: ${info.size} bytes, more than a key file can be`);
  }
  return parseKeyFile(
    await backend.load({ type: 'keys', name: info.name }, { offset: 0, length: info.size }),
    info.name,
  );
}

/** What is wrong with a key file, from readKeyFile's error (without its "key file NAME: " prefix). */
export function keyFileProblem(err: FoleBackupError, name: string): string {
  const prefix = `key file ${name}: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/** Read and validate the plaintext config. */
export async function readConfig(backend: Backend): Promise<RepositoryConfig> {
  let bytes: Buffer;
  try {
    // read before any key: bounded, so a planted multi-gigabyte config cannot exhaust memory
    const { size } = await backend.stat({ type: 'config', name: 'config' });
    if (size > MAX_CONFIG_BYTES) {
      throw new FoleBackupError(
        'REPO_CORRUPT',
        `repository config at ${backend.location} is ${size} bytes, far more than a config holds`,
        {
          hint: 'the config was replaced or damaged; restore it from a copy of the repository',
        },
      );
    }
    bytes = await backend.load({ type: 'config', name: 'config' });
  } catch (err) {
    if ((err instanceof FoleBackupError && err.code === 'NOT_FOUND') || errnoCode(err) === 'ENOENT') {
      // a lost config is not "no repository": inviting an init there would be the wrong advice
      const orphaned = await holdsObjects(backend);
      throw new FoleBackupError(
        'REPO_NOT_FOUND',
        orphaned
          ? `${backend.location} holds a repository's ${orphaned} but no config: the config was deleted or lost`
          : `no repository at ${backend.location}`,
        {
          cause: err,
          hint: orphaned
            ? 'restore the file `config` from a copy of this repository (it names the repository and its chunk ' +
              'sizes; nothing can be read without it); do not run init here'
            : 'check --repo / FOLE_BACKUP_REPO, or create one with `fole-backup init`',
        },
      );
    }
    throw err;
  }
  const damaged = (what: string): FoleBackupError =>
    new FoleBackupError('REPO_CORRUPT', `repository config at ${backend.location} ${what}`, {
      hint:
        'the config was damaged or edited: restore the file `config` from a copy of this repository (it ' +
        'names the repository and its chunk sizes); nothing was read or changed',
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw Object.assign(damaged('is not JSON'), { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw damaged('is not a JSON object');
  }
  const v = parsed as Partial<RepositoryConfig>;
  if (typeof v.formatVersion !== 'number') {
    throw damaged('has no formatVersion');
  }
  if (v.formatVersion !== FORMAT_VERSION) {
    throw new FoleBackupError(
      'REPO_FORMAT_UNSUPPORTED',
      `repository at ${backend.location} has format version ${v.formatVersion}; this fole-backup reads version ` +
        `${FORMAT_VERSION}`,
      {
        hint:
          v.formatVersion > FORMAT_VERSION
            ? 'upgrade fole-backup to a release that knows this format'
            : 'use an older fole-backup release to read this repository',
      },
    );
  }
  const okInt = (n: unknown, min: number, max: number): n is number =>
    Number.isSafeInteger(n) && (n as number) >= min && (n as number) <= max;
  if (
    typeof v.id !== 'string' ||
    !okInt(v.packSize, 4096, 1 << 30) ||
    !okInt(v.fileChunkSize, 4096, 64 << 20) ||
    !okInt(v.dbChunkSize, 512, 64 << 20) ||
    v.dbChunkSize % 512 !== 0
  ) {
    throw damaged('is damaged (its id or chunk sizes are not valid)');
  }
  return v as RepositoryConfig;
}

/** Which kinds of repository objects a location without a config still holds ('key files', 'data'), or undefined. */
async function holdsObjects(backend: Backend): Promise<string | undefined> {
  const found: string[] = [];
  for (const [type, name] of [
    ['keys', 'key files'],
    ['data', 'data'],
    ['snapshots', 'snapshots'],
  ] as const) {
    try {
      for await (const _ of backend.list(type)) {
        found.push(name);
        break;
      }
    } catch {
      // an absent type is simply not there
    }
  }
  return found.length === 0 ? undefined : found.join(', ');
}
