/**
 * What a backup is: the snapshot object (snapshots/<backupId>) and the tree of
 * entries it refers to. The snapshot holds the head of FOLE's manifest.json (every
 * field except the file lists); the file lists are rendered from the tree, which
 * is stored as NDJSON in chunked "tree" blobs so a million files never become
 * one JSON string (see renderManifest in src/manifest/manifest.ts).
 */

/** One path in a backup. Paths are relative POSIX, in tree order (see comparePaths). */
export interface TreeEntry {
  path: string;
  kind: 'dir' | 'file' | 'db';
  /** Permission bits (mode & 0o7777). */
  mode: number;
  mtimeMs: number;
  /** Numeric owner and group; both or neither (backups made before they were recorded have neither). */
  uid?: number;
  gid?: number;
  /** file / db: size in bytes of what was stored (a DB: of the captured snapshot). */
  size?: number;
  /** file / db: SHA-256 (hex) of the stored content. */
  sha256?: string;
  /** file / db: blob ids, in order. */
  chunks?: string[];
  /** file: what the source looked like, so an incremental can skip it unchanged. */
  ino?: number;
  ctimeMs?: number;
  /** db: what was captured. */
  db?: DbInfo;
  /** db: the source's fingerprint at the capture instant (lets an incremental skip an unchanged DB). */
  fingerprint?: string;
}

export interface DbInfo {
  pageSize: number;
  pageCount: number;
  userVersion: number;
  /** Journal mode of the source, e.g. 'wal' or 'delete'. */
  journalMode: string;
  integrity: 'ok';
}

export interface ProjectHead {
  projectId: string;
  /** "sha256:<hex>" of the project's database, null if it has none. */
  projectDb: string | null;
  /** "sha256:<hex>" of each map database. */
  mapDbs: string[];
  /** Extra: where each map database is. */
  maps: { mapId: string; path: string; sha256: string }[];
}

/** FOLE's manifest.json without its file lists (which come from the tree). */
export interface ManifestHead {
  backupId: string;
  createdAt: string;
  createdBy: string;
  foleVersion: string;
  storageSpecVersion: string;
  modules: string[];
  projects: ProjectHead[];
  core: { coreDb: string | null; templates: Record<string, string> };
}

/** One SQLite database of a backup, captured at the backup's one instant, with its SHA-256 and page size. */
export interface SnapshotDatabase extends DbInfo {
  path: string;
  sha256: string;
  /** Source fingerprint at the capture instant (src/sqlite/capture.ts fingerprintOf). */
  fingerprint?: string;
  /** False when an incremental found it unchanged and kept the parent's snapshot of it. */
  captured?: boolean;
  size: number;
}

export interface SnapshotStats {
  files: number;
  dirs: number;
  databases: number;
  /** Bytes of content in the backup (files + DB snapshots). */
  bytes: number;
  /** Bytes this backup added to the repository. */
  addedBytes: number;
  durationMs: number;
  /** How long writers were held back to capture every DB at one instant. */
  writersBlockedMs: number;
  /** Content bytes actually read from STORAGE_ROOT and DB snapshots (less than `bytes` for an incremental). */
  bytesRead?: number;
  /** Incremental change counts (files: regular files; dbs: databases). */
  filesNew?: number;
  filesChanged?: number;
  filesUnchanged?: number;
  dbsCaptured?: number;
  dbsUnchanged?: number;
}

/** Owner, group and permission bits of the STORAGE_ROOT directory itself (it has no tree entry). */
export interface RootMetadata {
  mode: number;
  uid: number;
  gid: number;
}

/** One backup: when and from where it was taken, by whom, its manifest and tree, its databases and statistics.
 * Stored sealed in the repository's `snapshots/`; see docs/REPOSITORY_FORMAT.md. */
export interface Snapshot {
  formatVersion: 1;
  backupId: string;
  type: 'full' | 'incremental';
  parent?: string;
  tags: string[];
  createdAt: string;
  host: string;
  /** Absolute path of the STORAGE_ROOT that was backed up. */
  storageRoot: string;
  /** The STORAGE_ROOT directory's own owner and mode (absent in backups made before they were recorded). */
  root?: RootMetadata;
  actor: { name: string; kind: 'human' | 'agent' };
  /**
   * The newest audit log entry when the backup began (its position and payload digest; docs/TRUST.md): a log
   * that no longer holds it was truncated or rewritten. Absent in backups made before it was recorded, or into
   * a repository whose log was empty.
   */
  auditHead?: { seq: number; digest: string };
  manifest: ManifestHead;
  /** Tree blob ids, in order. */
  tree: string[];
  stats: SnapshotStats;
  databases: SnapshotDatabase[];
  /** Paths not backed up and why (symlinks, sockets, vanished files). At most SKIPPED_LIMIT listed. */
  skipped: { path: string; reason: string }[];
  skippedCount: number;
  warnings: string[];
}

export const SKIPPED_LIMIT = 1000;

const SLASH = 0x2f;

/**
 * Tree order: depth-first, the entries of a directory sorted by name in code
 * unit order, a directory immediately followed by its contents. Equivalent to
 * comparing the paths component by component.
 */
export function comparePaths(a: string, b: string): number {
  // one pass over the characters, no allocation: at the first difference, a
  // component that ends ('/' or the end of the path) sorts before one that goes on
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}
