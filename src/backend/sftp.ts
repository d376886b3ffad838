/**
 * A repository on an SSH server, over SFTP:
 *
 *   sftp://USER@HOST[:PORT]/ABSOLUTE/PATH
 *
 * The layout is the local backend's (config, keys/<name>, data/<xx>/<name>, …), so a local repository copied
 * there with scp is a valid SFTP repository and the other way round.
 *
 * Trust: the server's host key must be in known_hosts (--ssh-known-hosts, default ~/.ssh/known_hosts); an
 * unknown, changed or revoked key is refused before anything is sent (known-hosts.ts). The key that logs in is
 * --ssh-key FILE, else the ssh-agent at $SSH_AUTH_SOCK.
 *
 * Writes, as the local backend makes them: a temporary `.tmp-*` file in the object's folder, fsync@openssh.com
 * where the server offers it (where it does not, a warning says the durability is unverified), then a rename:
 * posix-rename@openssh.com to replace (save), the protocol's own RENAME to create only (saveNew; OpenSSH's
 * server makes it a link(), which fails when the name is taken, so of two writers exactly one wins). A writer
 * killed mid-upload leaves only a `.tmp-*` file, which listTemporary shows and prune removes.
 *
 * Speed: SFTP is request/response, so one request at a time crawls (a 64 KiB write waits a round trip). Reads
 * here keep many requests of CHUNK bytes in flight on one channel, writes WRITE_WINDOW bytes in requests as
 * large as the server takes.
 *
 * We use ssh2 directly rather than ssh2-sftp-client: we need the OpenSSH extensions (fsync, posix-rename)
 * and positioned, pipelined reads into one buffer, which the wrapper does not expose.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import { Client, type ConnectConfig, type FileEntry, type SFTPWrapper, type Stats } from 'ssh2';
import { errnoCode, FoleBackupError } from '../errors.js';
import { type SftpLocation, sftpLocationName } from './sftp-location.js';
import {
  beyondEnd,
  checkHandle,
  checkRange,
  LATER_TYPES,
  OBJECT_TYPES,
  type Backend,
  type ByteRange,
  type Bytes,
  type ObjectHandle,
  type ObjectReader,
} from './backend.js';
import { FolderBackend, type FileFacts, type FolderAccess, type FolderEntry } from './folders.js';
import { checkHostKey, hostEntryName } from './known-hosts.js';

/** Bytes per read or write request; OpenSSH serves up to 256 KiB, every server at least 32 KiB. */
const CHUNK = 32 * 1024;
/** Requests in flight at once on one file: CHUNK × this is the window a round trip carries. */
const IN_FLIGHT = 64;
/**
 * Bytes of writes in flight on one file. A write request is as large as the server takes (OpenSSH: 255 KiB,
 * eight times fewer requests than CHUNK, which both ends pay for per request), so fewer of them fill the window.
 */
const WRITE_WINDOW = CHUNK * IN_FLIGHT;
/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;

/** How to reach and trust the server. */
export interface SftpOptions {
  /** Private key file (--ssh-key); else the ssh-agent at $SSH_AUTH_SOCK. */
  sshKey?: string;
  /** known_hosts file (--ssh-known-hosts); default ~/.ssh/known_hosts. */
  knownHosts?: string;
  /** Warnings (a server without fsync@openssh.com); none shown without it. */
  warn?: (message: string) => void;
}

interface Session {
  client: Client;
  sftp: Channel;
}

/**
 * The SFTP channel, whose every request also fails when the connection is lost: ssh2 leaves requests that wait
 * for window space pending forever when the server goes away mid-upload.
 */
class Channel {
  constructor(
    private readonly raw: SFTPWrapper,
    private readonly lost: Promise<never>,
  ) {}

  do<T = void>(fn: (sftp: SFTPWrapper, cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    return Promise.race([call<T>((cb) => fn(this.raw, cb)), this.lost]);
  }

  /**
   * The largest write one request carries: what ssh2 learnt from the server (OpenSSH's limits@openssh.com;
   * not a public field, so CHUNK when it is absent). A larger write ssh2 would split into requests one at a time.
   */
  maxWrite(): number {
    const n = (this.raw as unknown as { _maxWriteLen?: unknown })._maxWriteLen;
    return typeof n === 'number' && n > 0 ? Math.min(n, WRITE_WINDOW) : CHUNK;
  }
}

/** An SFTP status error's code (2 = no such file, …), or undefined. */
function sftpCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
}

/** Call an ssh2 callback-style method as a promise. */
function call<T = void>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

export class SftpBackend extends FolderBackend implements Backend {
  readonly location: string;
  private session: Promise<Session> | undefined;
  /** Whether the server offers fsync@openssh.com / posix-rename@openssh.com (known after the first use). */
  private fsyncOffered: boolean | undefined;
  private warnedNoFsync = false;

  constructor(
    private readonly where: SftpLocation,
    private readonly opts: SftpOptions = {},
  ) {
    super();
    this.location = sftpLocationName(where);
  }

  async create(): Promise<void> {
    const { sftp } = await this.connect();
    const root = this.where.path;
    try {
      await sftp.do((s, cb) => s.mkdir(root, { mode: 0o700 }, cb));
    } catch (err) {
      if (sftpCode(err) === NO_SUCH_FILE) {
        throw new FoleBackupError(
          'NOT_FOUND',
          `create repository ${this.location}: the parent folder ${posix.dirname(root)} does not exist`,
          { hint: 'create it on the server first (only the final folder is created), or check the path' },
        );
      }
      // it exists: acceptable only as an empty folder
      const entries = await this.readdir(root).catch((e: unknown) => {
        throw this.error('create', root, e);
      });
      if (entries.length > 0) {
        throw new FoleBackupError('REPO_NOT_EMPTY', `create repository ${this.location}: the folder is not empty`, {
          hint: 'choose an empty folder or a new path',
        });
      }
    }
    const folders = OBJECT_TYPES.filter((t) => t !== 'config').map((t) => `${root}/${t}`);
    await Promise.all(folders.map((f) => this.mkdir(f)));
    const prefixes = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
    await Promise.all(prefixes.map((p) => this.mkdir(`${root}/data/${p}`)));
  }

  async isRepository(): Promise<boolean> {
    try {
      const st = await this.statPath(this.pathOf({ type: 'config', name: 'config' }));
      return st.isFile();
    } catch (err) {
      if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return false;
      throw err;
    }
  }

  save(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.write(h, data, false);
  }

  saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    return this.write(h, data, true);
  }

  private async write(h: ObjectHandle, data: Bytes, createOnly: boolean): Promise<void> {
    checkHandle(h);
    const { sftp } = await this.connect();
    const path = this.pathOf(h);
    const dir = posix.dirname(path);
    if (h.type === 'data' || LATER_TYPES.includes(h.type)) await this.mkdir(dir);
    const tmp = `${dir}/.tmp-${randomBytes(12).toString('hex')}`;
    try {
      await this.writeFile(sftp, tmp, data, h.type === 'config' ? 0o644 : 0o600);
      if (createOnly) await this.renameNew(sftp, tmp, path);
      else await sftp.do((s, cb) => s.ext_openssh_rename(tmp, path, cb));
    } catch (err) {
      await sftp.do((s, cb) => s.unlink(tmp, cb)).catch(() => undefined);
      if (err instanceof FoleBackupError) throw err;
      throw this.error('write', path, err);
    }
  }

  /** RENAME without replacing (OpenSSH links, then unlinks the temp): ALREADY_EXISTS when the name is taken. */
  private async renameNew(sftp: Channel, tmp: string, path: string): Promise<void> {
    try {
      await sftp.do((s, cb) => s.rename(tmp, path, cb));
    } catch (err) {
      const taken = await this.statPath(path).then(
        () => true,
        () => false,
      );
      if (!taken) throw err;
      throw new FoleBackupError(
        'ALREADY_EXISTS',
        `write ${this.location}${path.slice(this.where.path.length)}: it already exists`,
      );
    }
  }

  /** Write `data` to a new file at `path` with many requests in flight, fsync it where offered, close it. */
  private async writeFile(sftp: Channel, path: string, data: Bytes, mode: number): Promise<void> {
    const handle = await sftp.do<Buffer>((s, cb) => s.open(path, 'wx', { mode }, cb));
    try {
      const parts = data instanceof Uint8Array ? [data] : data;
      const size = sftp.maxWrite();
      const chunks: { buf: Uint8Array; at: number }[] = [];
      let at = 0;
      for (const part of parts) {
        for (let off = 0; off < part.length; off += size) {
          chunks.push({ buf: part.subarray(off, Math.min(off + size, part.length)), at: at + off });
        }
        at += part.length;
      }
      await pipelined(chunks.length, Math.ceil(WRITE_WINDOW / size), (i) => {
        const c = chunks[i] as { buf: Uint8Array; at: number };
        const buf = Buffer.from(c.buf.buffer, c.buf.byteOffset, c.buf.byteLength);
        return sftp.do((s, cb) => s.write(handle, buf, 0, buf.length, c.at, cb));
      });
      await this.fsync(sftp, handle);
    } finally {
      await sftp.do((s, cb) => s.close(handle, cb)).catch(() => undefined);
    }
  }

  private async fsync(sftp: Channel, handle: Buffer): Promise<void> {
    if (this.fsyncOffered !== false) {
      try {
        await sftp.do((s, cb) => s.ext_openssh_fsync(handle, cb));
        this.fsyncOffered = true;
        return;
      } catch (err) {
        // ssh2 throws at once when the server did not offer the extension; a server's error comes back async
        if (this.fsyncOffered === true || !/not support/i.test((err as Error).message)) throw err;
        this.fsyncOffered = false;
      }
    }
    if (!this.warnedNoFsync) {
      this.warnedNoFsync = true;
      this.opts.warn?.(
        `${this.location}: the server does not offer fsync@openssh.com; that what it stored survives its crash ` +
          'is unverified',
      );
    }
  }

  async load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    const reader = await this.openReader(h);
    try {
      return await reader.read(range ?? { offset: 0, length: reader.size });
    } finally {
      await reader.close();
    }
  }

  async openReader(h: ObjectHandle): Promise<ObjectReader> {
    checkHandle(h);
    const { sftp } = await this.connect();
    const path = this.pathOf(h);
    let handle: Buffer;
    let size: number;
    try {
      handle = await sftp.do<Buffer>((s, cb) => s.open(path, 'r', cb));
    } catch (err) {
      throw this.error('read', path, err);
    }
    try {
      size = (await sftp.do<Stats>((s, cb) => s.fstat(handle, cb))).size;
    } catch (err) {
      await sftp.do((s, cb) => s.close(handle, cb)).catch(() => undefined);
      throw this.error('read', path, err);
    }
    let closing: Promise<void> | undefined;
    return {
      size,
      read: async (range) => {
        const where = `${this.location}${path.slice(this.where.path.length)}`;
        checkRange(where, range);
        if (closing !== undefined) throw new FoleBackupError('INTERNAL', `read ${where}: the reader is closed`);
        if (range.offset + range.length > size) throw beyondEnd(where, range, size);
        try {
          return await readRange(sftp, handle, range, () => beyondEnd(where, range, size));
        } catch (err) {
          if (err instanceof FoleBackupError) throw err;
          throw this.error('read', path, err);
        }
      },
      close: () => (closing ??= sftp.do((s, cb) => s.close(handle, cb)).catch(() => undefined)),
    };
  }

  protected async statFile(path: string): Promise<FileFacts> {
    const st = await this.statPath(path);
    return { size: st.size, mtimeMs: st.mtime * 1000 };
  }

  protected removeFile(path: string): Promise<void> {
    return this.unlink(path);
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s === undefined) return;
    const session = await s.catch(() => undefined);
    session?.client.end();
  }

  /** The server's folder as the shared walks see it (folders.ts); a listing carries sizes and times. */
  protected get folders(): FolderAccess {
    // made once: pathOf reads it on every save and load
    this.folderAccess ??= {
      root: this.where.path,
      join: (...parts: string[]) => parts.join('/'),
      readdir: async (dir): Promise<FolderEntry[]> =>
        (await this.readdirOrEmpty(dir)).map((e) => ({
          name: e.filename,
          kind: isFile(e.attrs) ? 'file' : isDir(e.attrs) ? 'dir' : 'other',
          size: e.attrs.size,
          mtimeMs: e.attrs.mtime * 1000,
        })),
      stat: (path: string) =>
        this.statPath(path).then(
          (st) => ({ size: st.size, mtimeMs: st.mtime * 1000 }),
          (err: unknown) => {
            if (err instanceof FoleBackupError && err.code === 'NOT_FOUND') return undefined;
            throw err;
          },
        ),
    };
    return this.folderAccess;
  }

  private folderAccess: FolderAccess | undefined;

  private async unlink(path: string): Promise<void> {
    const { sftp } = await this.connect();
    try {
      await sftp.do((s, cb) => s.unlink(path, cb));
    } catch (err) {
      if (sftpCode(err) !== NO_SUCH_FILE) throw this.error('remove', path, err);
    }
  }

  private async mkdir(path: string): Promise<void> {
    const { sftp } = await this.connect();
    try {
      await sftp.do((s, cb) => s.mkdir(path, { mode: 0o700 }, cb));
    } catch (err) {
      // it exists (SFTP says only "failure"): fine if it is a folder
      const st = await this.statPath(path).catch(() => undefined);
      if (st?.isDirectory() !== true) throw this.error('create', path, err);
    }
  }

  private async statPath(path: string): Promise<Stats> {
    const { sftp } = await this.connect();
    try {
      return await sftp.do<Stats>((s, cb) => s.stat(path, cb));
    } catch (err) {
      throw this.error('read', path, err);
    }
  }

  private async readdir(path: string): Promise<FileEntry[]> {
    const { sftp } = await this.connect();
    return sftp.do<FileEntry[]>((s, cb) => s.readdir(path, cb));
  }

  private async readdirOrEmpty(path: string): Promise<FileEntry[]> {
    try {
      return await this.readdir(path);
    } catch (err) {
      if (sftpCode(err) === NO_SUCH_FILE) return [];
      throw this.error('list', path, err);
    }
  }

  /** A FoleBackupError for a failed SFTP call: NOT_FOUND, ACCESS_DENIED, or the operation's error. */
  private error(op: 'read' | 'write' | 'list' | 'remove' | 'create', path: string, err: unknown): FoleBackupError {
    const where = `${this.location}${path.slice(this.where.path.length)}`;
    const code = sftpCode(err);
    const message = `${op} ${where}: ${(err as Error)?.message ?? String(err)}`;
    if (code === NO_SUCH_FILE) return new FoleBackupError('NOT_FOUND', message, { cause: err });
    if (code === PERMISSION_DENIED) {
      return new FoleBackupError('ACCESS_DENIED', message, {
        cause: err,
        hint: `the server refuses ${this.where.user} access there: check the folder's owner and mode on the server`,
      });
    }
    return new FoleBackupError(op === 'read' || op === 'list' ? 'READ_ERROR' : 'WRITE_ERROR', message, {
      cause: err,
      hint: 'check the connection and the server (its disk, its logs); the command can be run again',
    });
  }

  /** The session, connecting on first use and again after the connection was lost. */
  private connect(): Promise<Session> {
    if (this.session === undefined) {
      const session: Promise<Session> = this.open(() => session).catch((err: unknown) => {
        if (this.session === session) this.session = undefined;
        throw err;
      });
      this.session = session;
    }
    return this.session;
  }

  /** Connect; `self` is the promise of this session, dropped from this.session once its connection is lost. */
  private async open(self: () => Promise<Session>): Promise<Session> {
    const { host, port, user } = this.where;
    const knownHostsFile = this.opts.knownHosts ?? posix.join(homedir(), '.ssh', 'known_hosts');
    let knownHosts: string;
    try {
      knownHosts = await readFile(knownHostsFile, 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT')
        throw new FoleBackupError('READ_ERROR', `read ${knownHostsFile}: ${errnoCode(err)}`);
      knownHosts = '';
    }
    const auth = await this.credentials();
    let refused: FoleBackupError | undefined;
    const config: ConnectConfig = {
      host,
      port,
      username: user,
      readyTimeout: 20_000,
      keepaliveInterval: 15_000,
      ...auth,
      hostVerifier: (key: Buffer) => {
        const verdict = checkHostKey(knownHosts, host, port, key);
        if (verdict.status === 'known') return true;
        refused = hostKeyRefusal(verdict.status, hostEntryName(host, port), key, knownHostsFile);
        return false;
      },
    };
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error & { level?: string }): void => {
        client.removeListener('ready', onReady);
        client.removeListener('close', onClose);
        // what the dead connection still reports is no one's business now
        client.on('error', () => undefined);
        client.end();
        reject(refused ?? connectError(this.location, user, err));
      };
      // ssh2 closes without an error when the connection drops once the server's banner is in (mid key
      // exchange), and stops its handshake timer: without this the connect would wait forever
      const onClose = (): void =>
        onError(Object.assign(new Error('the connection was closed during the handshake'), { code: 'ECONNRESET' }));
      const onReady = (): void => {
        client.removeListener('error', onError);
        client.removeListener('close', onClose);
        resolve();
      };
      client.once('ready', onReady);
      client.once('error', onError);
      client.once('close', onClose);
      client.connect(config);
    });
    // a connection lost later fails the calls under way; the next call connects again
    let lose: (err: Error) => void = () => undefined;
    const lost = new Promise<never>((_, reject) => {
      lose = reject;
    });
    lost.catch(() => undefined);
    // the cause carries the socket's errno (a close without one counts as a reset), so the retry wrapper
    // (retry.ts) knows the failure is transient and tries again on a new connection
    const dropped = (cause: Error): void => {
      if (this.session === self()) this.session = undefined;
      lose(
        new FoleBackupError('WRITE_ERROR', `${this.location}: the connection was lost: ${cause.message}`, {
          cause,
          hint: 'check the network and the server; the command can be run again',
        }),
      );
    };
    client.on('error', dropped);
    client.on('close', () =>
      dropped(Object.assign(new Error('the server closed the connection'), { code: 'ECONNRESET' })),
    );
    const raw = await call<SFTPWrapper>((cb) => client.sftp(cb)).catch((err: unknown) => {
      client.end();
      throw connectError(this.location, user, err as Error);
    });
    return { client, sftp: new Channel(raw, lost) };
  }

  private async credentials(): Promise<Pick<ConnectConfig, 'privateKey' | 'passphrase' | 'agent'>> {
    if (this.opts.sshKey !== undefined) {
      let privateKey: Buffer;
      try {
        privateKey = await readFile(this.opts.sshKey);
      } catch (err) {
        throw new FoleBackupError('USAGE', `--ssh-key ${this.opts.sshKey}: cannot read it (${errnoCode(err)})`);
      }
      const passphrase = process.env.FOLE_BACKUP_SSH_KEY_PASSPHRASE;
      return passphrase === undefined ? { privateKey } : { privateKey, passphrase };
    }
    const agent = process.env.SSH_AUTH_SOCK;
    if (agent === undefined || agent === '') {
      throw new FoleBackupError('USAGE', `repository ${this.location}: no SSH key to log in with`, {
        hint: 'give --ssh-key FILE (FOLE_BACKUP_SSH_KEY), or run an ssh-agent that holds the key (SSH_AUTH_SOCK)',
      });
    }
    return { agent };
  }
}

/** Why the host key is refused, with what to do: never a silent accept. */
function hostKeyRefusal(status: string, name: string, key: Buffer, file: string): FoleBackupError {
  const fingerprint = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
  if (status === 'unknown') {
    const bracketed = /^\[(.*)\]:(\d+)$/.exec(name);
    const scan = bracketed === null ? name : `-p ${bracketed[2]} ${bracketed[1]}`;
    return new FoleBackupError('UNTRUSTED_HOST', `the host key of ${name} (${fingerprint}) is not in ${file}`, {
      hint:
        `make sure it is the server's key (ask its admin for the fingerprint), then add it: ` +
        `ssh-keyscan ${scan} >> ${file} (or give another file with --ssh-known-hosts)`,
    });
  }
  return new FoleBackupError(
    'UNTRUSTED_HOST',
    status === 'revoked'
      ? `the host key of ${name} (${fingerprint}) is marked @revoked in ${file}`
      : `the host key of ${name} (${fingerprint}) is not the one ${file} holds for it: it CHANGED`,
    {
      hint:
        'someone may be intercepting the connection; nothing was sent. If the server really got a new key, ' +
        `confirm its fingerprint with its admin, then remove the old line (ssh-keygen -R '${name}' -f ${file}) ` +
        'and add the new one',
    },
  );
}

function connectError(location: string, user: string, err: Error & { level?: string }): FoleBackupError {
  if (err.level === 'client-authentication') {
    return new FoleBackupError('ACCESS_DENIED', `${location}: the server refused the key for ${user}`, {
      hint: "check --ssh-key (or the agent's keys) and the server's authorized_keys for that user",
    });
  }
  return new FoleBackupError('READ_ERROR', `${location}: cannot connect: ${err.message}`, {
    cause: connectCause(err),
    hint: 'check the host, the port and that sshd runs there; the command can be run again',
  });
}

/**
 * The cause of a failed connection, with an errno the retry wrapper (retry.ts) judges it by: the socket's own
 * (ECONNREFUSED, ECONNRESET, ENOTFOUND, …), else ETIMEDOUT for a handshake that timed out and ECONNRESET for a
 * connection that closed before the session was up (ssh2 says so without an errno). Anything else, a handshake
 * that failed on its merits (no common algorithm), has none: trying again would fail the same way.
 */
function connectCause(err: Error & { level?: string }): Error {
  if (errnoCode(err) !== undefined) return err;
  const dropped = /^(Connection lost before handshake|No response from server)$/.test(err.message);
  const code = err.level === 'client-timeout' ? 'ETIMEDOUT' : dropped ? 'ECONNRESET' : undefined;
  return code === undefined ? err : Object.assign(new Error(err.message, { cause: err }), { code });
}

/** Run `count` requests, at most `inFlight` at once; the first failure fails it all (after those in flight end). */
async function pipelined(count: number, inFlight: number, request: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < count && failed === undefined) {
      const i = next++;
      try {
        await request(i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
  if (failed !== undefined) throw failed;
}

/** `range` of an open file into a buffer of its own, with many reads in flight; a short file fails. */
async function readRange(
  sftp: Channel,
  handle: Buffer,
  range: ByteRange,
  short: () => FoleBackupError,
): Promise<Buffer> {
  const buf = Buffer.allocUnsafeSlow(range.length);
  const chunks = Math.ceil(range.length / CHUNK);
  await pipelined(chunks, IN_FLIGHT, async (i) => {
    let done = i * CHUNK;
    const end = Math.min(done + CHUNK, range.length);
    while (done < end) {
      const n = await sftp
        .do<number>((s, cb) =>
          s.read(handle, buf, done, end - done, range.offset + done, (err, bytesRead) => cb(err, bytesRead)),
        )
        .catch((err: unknown) => {
          // reading at or past the end is an EOF status, not data: the file is shorter than asked
          if (sftpCode(err) === 1) return 0;
          throw err;
        });
      if (n === 0) throw short();
      done += n;
    }
  });
  return buf;
}

/** Folder and regular file, from the mode bits a listing carries. */
const isDir = (a: { mode: number }): boolean => (a.mode & 0o170000) === 0o040000;
const isFile = (a: { mode: number }): boolean => (a.mode & 0o170000) === 0o100000;
