/**
 * The restore planner: pure (no I/O, no clock, no pid of its own). From the
 * backup's snapshot, a summary of what the target holds now (src/restore/target.ts)
 * and the operator's options, it returns either a RestorePlan (what a restore
 * will write, check, move and where) or the StopError that forbids it.
 * `--dry-run` prints the plan; src/restore/execute.ts carries it out.
 *
 * Checks, in this order (the first that fails is the STOP returned):
 *
 *   intent   --confirm must be exactly the resolved full backup id, also when
 *            `latest` or a prefix was asked for          -> AMBIGUOUS_INTENT
 *            (a dry run changes nothing and needs no --confirm, but a wrong one
 *            is still refused)
 *   target   `/`; a parent that does not exist; a file, symlink or device; a
 *            non-empty directory that is not a FOLE STORAGE_ROOT (an in-place
 *            restore needs core/core.db, a regular file not behind a symlink:
 *            a directory that merely holds projects/ is someone else's); a
 *            mount point (it cannot be renamed aside); the repository itself,
 *            inside it or containing it                  -> UNCLEAR_RESTORE_TARGET
 *   version  backup and target FOLE versions must both be X.Y.Z, of the same
 *            major version, the backup not newer than the target. The target's
 *            version is never guessed: without --fole-version (or FOLE_VERSION)
 *            it is unknown, whatever the target holds     -> VERSION_MISMATCH
 *   modules  every module in the backup must be in the target's set: --modules
 *            when given, else the names under the target's modules/; an absent
 *            or empty target without --modules has no set and is not checked
 *                                                         -> MODULE_SET_MISMATCH
 *
 * FOLE's restore rules list the version and module checks after the checksum and
 * database checks; all of them run before anything live is touched, and these two need
 * nothing but the manifest, so they run first and an incompatible backup is
 * refused before hours of staging.
 */
import { sep } from 'node:path';
import { StopError } from '../errors.js';
import { compareSemver, parseFoleVersion } from '../snapshot/fields.js';
import type { SelectedCounts, Selection } from './selection.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { journalPathOf, previousTreePathOf, stagingPathOf } from './names.js';

/** What is at the target path now (not following a symlink there). */
export type TargetKind = 'absent' | 'empty-dir' | 'storage-root' | 'other-dir' | 'file' | 'symlink' | 'other';

/** A summary of the target's current state: everything the planner needs to know about the disk. */
export interface TargetState {
  /** Absolute target path, its parent's symlinks resolved. */
  path: string;
  parentExists: boolean;
  kind: TargetKind;
  /** For a symlink: the real path it leads to, when it resolves. */
  linkTarget?: string;
  /** A directory on another filesystem than its parent: a mount point, which cannot be renamed aside. */
  mountPoint: boolean;
  /** Permission bits of the target directory (when it is one). */
  mode?: number;
  /**
   * Whether <target>/core/core.db is a regular file reached without a symlink
   * (then the Global Storage Lock is taken there).
   */
  hasCoreDb: boolean;
  /** Why a target with core/ or projects/ has no usable core/core.db (missing, a symlink…). */
  coreDbProblem?: string;
  /** Directory names under <target>/modules, sorted; null when there is no modules/ directory. */
  modules: string[] | null;
  /** Number of directories under <target>/projects. */
  projects: number;
  /** Top-level names (the first few, sorted) and how many there are. */
  topLevel: string[];
  topLevelCount: number;
  /** Names in the parent that start with `<name>.pre-restore-` (so the previous tree gets a fresh name). */
  takenNames: string[];
  /** A restore journal exists for this target: an earlier restore was interrupted. */
  journal: boolean;
}

/** The parts of a snapshot the planner reads. */
export type PlanSnapshot = Pick<
  Snapshot,
  'backupId' | 'type' | 'createdAt' | 'host' | 'storageRoot' | 'root' | 'manifest' | 'stats' | 'databases'
>;

/** The operator's side of a restore plan: which backup, where, and what they confirmed. */
export interface PlanOptions {
  /** What the operator named: `latest`, a unique prefix or a full backup id. */
  requested: string;
  /** Must equal the resolved full backup id (unless dryRun and absent). */
  confirm?: string;
  dryRun?: boolean;
  /** FOLE version that will run on the restored tree (X.Y.Z). */
  foleVersion?: string;
  /** The target's module set; overrides the target tree's modules/. */
  modules?: string[];
}

/** Everything planRestore decides from: the snapshot, the target's state and the operator's options. */
export interface PlanInput {
  snapshot: PlanSnapshot;
  target: TargetState;
  /** Real path of the repository when it is a local directory. */
  repositoryPath?: string;
  options: PlanOptions;
  /** A partial restore: what it takes (`--include` / `--exclude`) and how much that is. */
  selection?: Selection & { counts: SelectedCounts };
  /** Names the previous tree (`<target>.pre-restore-<UTC now>`). */
  now: Date;
  /** The restoring process (names the staging directory). */
  pid: number;
}

/** A checked restore plan: what will be restored where, what happens to the tree there now, and why it is
 * allowed. planRestore returns it or throws the STOP that forbids the restore. */
export interface RestorePlan {
  backupId: string;
  requested: string;
  backup: {
    type: 'full' | 'incremental';
    createdAt: string;
    createdBy: string;
    host: string;
    storageRoot: string;
    foleVersion: string;
    modules: string[];
  };
  target: {
    path: string;
    kind: TargetKind;
    /** What the target holds now, in words. */
    holds: string;
    projects: number;
    modules: string[] | null;
    topLevel: string[];
    topLevelCount: number;
  };
  /**
   * replace: the current tree is moved aside, then the staged tree moved in. fill: the target is absent or an empty
   * directory.
   */
  mode: 'replace' | 'fill';
  /** Where the current tree will be kept (replace), else null. */
  previousTree: string | null;
  staging: string;
  journal: string;
  /** Whether the Global Storage Lock is taken on the live tree for the swap (it has core/core.db). */
  storageLock: boolean;
  /**
   * Permission bits the restored tree's root directory gets: the backup's;
   * for a backup that did not record them, the target directory's, or private.
   */
  rootMode: number;
  /**
   * Owner the restored root gets when the restore runs as root (src/restore/ownership.ts); null when the backup did not
   * record it.
   */
  rootOwner: { uid: number; gid: number } | null;
  write: { files: number; dirs: number; bytes: number; databases: number };
  /** A partial restore's patterns; null for a whole backup. */
  selection: Selection | null;
  /** Every database that will be integrity-checked after it is written. */
  databases: { path: string; size: number }[];
  checks: {
    foleVersion: { backup: string; target: string; result: string };
    modules: { backup: string[]; target: string[] | null; result: string };
  };
  /** Whether --confirm names the backup (a dry run may plan without it). */
  confirmed: boolean;
  /** An interrupted earlier restore of this target will be recovered first. */
  pendingRecovery: boolean;
  warnings: string[];
}

/** Root mode of a restored tree when neither the backup nor the target says: private. */
const DEFAULT_ROOT_MODE = 0o700;

/**
 * The intent check alone (it needs no target state, so restore runs it before
 * recovering an interrupted earlier restore). Returns the StopError, or
 * undefined when the restore is confirmed (or is a dry run without --confirm).
 */
export function checkIntent(
  requested: string,
  backupId: string,
  confirm: string | undefined,
  dryRun = false,
): StopError | undefined {
  const named = requested === backupId ? `backup ${backupId}` : `"${requested}" is backup ${backupId}`;
  if (confirm === undefined || confirm === '') {
    if (dryRun) return undefined;
    return new StopError('AMBIGUOUS_INTENT', `restore not confirmed: ${named}`, {
      hint:
        `a restore replaces the target tree; to confirm, re-run with --confirm ${backupId}` +
        ` (run with --dry-run first to see what would change)`,
    });
  }
  if (confirm !== backupId) {
    return new StopError('AMBIGUOUS_INTENT', `--confirm ${confirm} does not name the backup to restore: ${named}`, {
      hint: `--confirm must be the full id of the backup being restored: --confirm ${backupId}`,
    });
  }
  return undefined;
}

/** The version check: a description when compatible, else the StopError. */
export function checkFoleVersion(backupVersion: string, targetVersion: string | undefined): string | StopError {
  const hint =
    'restore this backup only into a FOLE of the same major version that is as new or newer; pass that version ' +
    'with --fole-version X.Y.Z (or FOLE_VERSION)';
  const b = parseFoleVersion(backupVersion);
  if (b === undefined) {
    return new StopError(
      'VERSION_MISMATCH',
      `the backup's FOLE version ${JSON.stringify(backupVersion)} is not a version X.Y.Z[-PRERELEASE]: ` +
        `compatibility unknown`,
      {
        hint: 'this backup cannot be checked against the target FOLE version; a human must decide (use another backup)',
      },
    );
  }
  if (targetVersion === undefined || targetVersion === '') {
    return new StopError(
      'VERSION_MISMATCH',
      `the target's FOLE version is unknown (the backup was taken with FOLE ${backupVersion})`,
      {
        hint:
          'pass --fole-version X.Y.Z (or set FOLE_VERSION): the version of the FOLE server that will run on ' +
          'the restored tree',
      },
    );
  }
  const t = parseFoleVersion(targetVersion);
  if (t === undefined) {
    return new StopError(
      'VERSION_MISMATCH',
      `the target's FOLE version ${JSON.stringify(targetVersion)} is not a version X.Y.Z[-PRERELEASE]`,
      { hint },
    );
  }
  if (b.major !== t.major) {
    return new StopError(
      'VERSION_MISMATCH',
      `the backup was taken with FOLE ${backupVersion}, the target runs FOLE ${targetVersion}: another major version`,
      { hint },
    );
  }
  if (compareSemver(b, t) > 0) {
    return new StopError(
      'VERSION_MISMATCH',
      `the backup was taken with FOLE ${backupVersion}, newer than the target's FOLE ${targetVersion}`,
      {
        hint: `upgrade the target's FOLE to ${backupVersion} or later first, or ${hint}`,
      },
    );
  }
  return compareSemver(b, t) === 0 ? 'same version' : `backup older than the target, same major version ${t.major}`;
}

/** The module check: a description when compatible, else the StopError. */
function checkModules(
  backupModules: readonly string[],
  target: readonly string[] | null,
  source: string,
): string | StopError {
  if (target === null) return 'not checked: an empty target has no module set (pass --modules to check one)';
  const have = new Set(target);
  const missing = backupModules.filter((m) => !have.has(m));
  if (missing.length > 0) {
    return new StopError(
      'MODULE_SET_MISMATCH',
      `the backup needs module${missing.length === 1 ? '' : 's'} ${missing.join(', ')} that the target (` +
        `${source}) does not have`,
      {
        hint:
          `install ${missing.join(', ')} in the target FOLE first, or pass the target's real module set ` +
          `with --modules; target has: ${target.length === 0 ? 'none' : target.join(', ')}`,
      },
    );
  }
  return `every module of the backup is in the target (${source})`;
}

function isInside(child: string, parent: string): boolean {
  if (parent === sep) return true;
  return child === parent || child.startsWith(parent + sep);
}

function unclear(message: string, hint: string, path: string): StopError {
  return new StopError('UNCLEAR_RESTORE_TARGET', message, { hint, path });
}

/** The target check: undefined when the target may be restored into. */
function checkTarget(t: TargetState, repositoryPath: string | undefined): StopError | undefined {
  const p = t.path;
  const choose = 'name an empty or absent directory, or an existing FOLE STORAGE_ROOT (with core/core.db)';
  if (p === sep) return unclear('restore target is /', choose, p);
  if (!t.parentExists)
    return unclear(
      `restore target ${p}: its parent directory does not exist`,
      `create the parent first, or ${choose}`,
      p,
    );
  if (repositoryPath !== undefined && (isInside(p, repositoryPath) || isInside(repositoryPath, p))) {
    return unclear(
      p === repositoryPath
        ? `restore target ${p} is the repository itself`
        : isInside(p, repositoryPath)
          ? `restore target ${p} is inside the repository ${repositoryPath}`
          : `restore target ${p} contains the repository ${repositoryPath}`,
      `keep the repository and the restored tree apart: ${choose} outside ${repositoryPath}`,
      p,
    );
  }
  switch (t.kind) {
    case 'file':
      return unclear(`restore target ${p} is a file`, choose, p);
    case 'symlink':
      return unclear(
        `restore target ${p} is a symlink${t.linkTarget ? ` to ${t.linkTarget}` : ''}`,
        t.linkTarget ? `name the real directory: --target ${t.linkTarget}` : choose,
        p,
      );
    case 'other':
      return unclear(`restore target ${p} is neither a file nor a directory`, choose, p);
    case 'other-dir':
      return unclear(
        `restore target ${p} is a non-empty directory that is not a STORAGE_ROOT (no core/ or projects/); it ` +
          `holds ${t.topLevel.slice(0, 5).join(', ')}${t.topLevelCount > 5 ? ', …' : ''}`,
        `nothing in it would be lost (it would be kept aside), but restoring there is probably a mistake: ${choose}`,
        p,
      );
    case 'storage-root':
      if (!t.hasCoreDb) {
        return unclear(
          `restore target ${p} has core/ or projects/ but is not a FOLE STORAGE_ROOT: ` +
            `${t.coreDbProblem ?? 'core/core.db is missing'}`,
          `an in-place restore replaces a FOLE STORAGE_ROOT (with core/core.db, a regular file inside it, where ` +
            `the Global Storage Lock is taken) or fills an empty or absent directory; if this is FOLE's tree, ` +
            `put its core/core.db in place first, otherwise ${choose}`,
          p,
        );
      }
      break;
    default:
      break;
  }
  if (t.mountPoint) {
    return unclear(
      `restore target ${p} is a mount point`,
      `a mount point cannot be renamed aside atomically; restore into a directory inside it, e.g. --target ${p}` +
        `${sep}storage`,
      p,
    );
  }
  return undefined;
}

function describeTarget(t: TargetState): string {
  switch (t.kind) {
    case 'absent':
      return 'nothing (it does not exist yet)';
    case 'empty-dir':
      return 'an empty directory';
    case 'storage-root': {
      const mods =
        t.modules === null ? 'no modules/' : t.modules.length === 0 ? 'no modules' : `modules ${t.modules.join(', ')}`;
      return `a STORAGE_ROOT (${t.projects} project${t.projects === 1 ? '' : 's'}, ${mods})`;
    }
    default:
      return t.kind;
  }
}

/** Plan a full restore, or say which STOP forbids it. */
export function planRestore(input: PlanInput): RestorePlan | StopError {
  const { snapshot: s, target: t, options: o } = input;
  const backupId = s.backupId;
  const intent = checkIntent(o.requested, backupId, o.confirm, o.dryRun === true);
  if (intent !== undefined) return intent;
  const where = checkTarget(t, input.repositoryPath);
  if (where !== undefined) return where;
  const sel = input.selection;
  if (sel !== undefined && t.kind !== 'absent' && t.kind !== 'empty-dir') {
    return unclear(
      `a partial restore (--include) goes into an empty or absent directory; ${t.path} is ${describeTarget(t)}`,
      'name a new directory with --target and copy what you need from there; nothing was changed',
      t.path,
    );
  }

  const version = checkFoleVersion(s.manifest.foleVersion, o.foleVersion);
  if (version instanceof StopError) return version;

  const targetModules =
    o.modules !== undefined ? [...new Set(o.modules)].sort() : t.kind === 'storage-root' ? (t.modules ?? []) : null;
  const source = o.modules !== undefined ? 'from --modules' : "from the target's modules/";
  const modules = checkModules(s.manifest.modules, targetModules, source);
  if (modules instanceof StopError) return modules;

  const mode = t.kind === 'storage-root' ? 'replace' : 'fill';
  const warnings: string[] = [];
  if (t.kind === 'storage-root' && s.storageRoot !== t.path) {
    warnings.push(
      `the backup was taken of ${s.storageRoot} on ${s.host}; it will replace another STORAGE_ROOT, ${t.path}`,
    );
  }
  if (t.journal) {
    warnings.push(
      `an earlier restore of ${t.path} was interrupted: it is finished or rolled back first (\`fole-backup ` +
        `recover --target ${t.path}\` does only that)`,
    );
  }
  return {
    backupId,
    requested: o.requested,
    backup: {
      type: s.type,
      createdAt: s.createdAt,
      createdBy: s.manifest.createdBy,
      host: s.host,
      storageRoot: s.storageRoot,
      foleVersion: s.manifest.foleVersion,
      modules: [...s.manifest.modules],
    },
    target: {
      path: t.path,
      kind: t.kind,
      holds: describeTarget(t),
      projects: t.projects,
      modules: t.modules,
      topLevel: t.topLevel,
      topLevelCount: t.topLevelCount,
    },
    mode,
    previousTree: mode === 'replace' ? previousTreePathOf(t.path, input.now, t.takenNames) : null,
    staging: stagingPathOf(t.path, backupId, input.pid),
    journal: journalPathOf(t.path),
    storageLock: t.kind === 'storage-root' && t.hasCoreDb,
    rootMode: s.root?.mode ?? (t.mode !== undefined && t.kind !== 'absent' ? t.mode : DEFAULT_ROOT_MODE),
    rootOwner: s.root === undefined ? null : { uid: s.root.uid, gid: s.root.gid },
    write:
      sel === undefined
        ? { files: s.stats.files, dirs: s.stats.dirs, bytes: s.stats.bytes, databases: s.databases.length }
        : {
            files: sel.counts.files,
            dirs: sel.counts.dirs,
            bytes: sel.counts.bytes,
            databases: sel.counts.databases.length,
          },
    selection: sel === undefined ? null : { include: sel.include, exclude: sel.exclude },
    databases: sel === undefined ? s.databases.map((d) => ({ path: d.path, size: d.size })) : [...sel.counts.databases],
    checks: {
      foleVersion: { backup: s.manifest.foleVersion, target: o.foleVersion ?? '', result: version },
      modules: { backup: [...s.manifest.modules], target: targetModules, result: modules },
    },
    confirmed: o.confirm === backupId,
    pendingRecovery: t.journal,
    warnings,
  };
}
