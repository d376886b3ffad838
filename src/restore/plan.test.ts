/**
 * The restore planner with plain objects: every STOP it can return, the order
 * in which it checks, and what a plan says for each kind of target.
 */
import { describe, expect, it } from 'vitest';
import { StopError, type StopCode } from '../errors.js';
import { parseFoleVersion } from '../snapshot/fields.js';
import type { RootMetadata } from '../snapshot/snapshot.js';
import {
  checkFoleVersion,
  planRestore,
  type PlanInput,
  type PlanSnapshot,
  type RestorePlan,
  type TargetState,
} from './plan.js';

const ID = '3f2a9c1e-5b7d-4e0f-8a21-0c9d8e7f6a5b';
const OTHER = '9d8c7b6a-0000-4000-8000-000000000000';
const NOW = new Date('2026-11-26T05:12:00.123Z');

function snapshot(over: { foleVersion?: string; modules?: string[]; root?: RootMetadata } = {}): PlanSnapshot {
  return {
    ...(over.root === undefined ? {} : { root: over.root }),
    backupId: ID,
    type: 'full',
    createdAt: '2026-11-20T10:00:00.000Z',
    host: 'fole-1',
    storageRoot: '/srv/fole',
    manifest: {
      backupId: ID,
      createdAt: '2026-11-20T10:00:00.000Z',
      createdBy: 'ops@example.com',
      foleVersion: over.foleVersion ?? '2.3.1',
      storageSpecVersion: '1.1.0',
      modules: over.modules ?? ['maps', 'sketch'],
      projects: [],
      core: { coreDb: null, templates: {} },
    },
    stats: { files: 120, dirs: 14, databases: 2, bytes: 5_000_000, addedBytes: 0, durationMs: 1, writersBlockedMs: 0 },
    databases: [
      {
        path: 'core/core.db',
        sha256: 'a'.repeat(64),
        size: 8192,
        pageSize: 4096,
        pageCount: 2,
        userVersion: 0,
        journalMode: 'wal',
        integrity: 'ok',
      },
      {
        path: 'projects/p1/project.db',
        sha256: 'b'.repeat(64),
        size: 40960,
        pageSize: 4096,
        pageCount: 10,
        userVersion: 3,
        journalMode: 'wal',
        integrity: 'ok',
      },
    ],
  };
}

/** A live STORAGE_ROOT at /srv/fole unless overridden. */
function target(over: Partial<TargetState> = {}): TargetState {
  return {
    path: '/srv/fole',
    parentExists: true,
    kind: 'storage-root',
    mountPoint: false,
    mode: 0o750,
    hasCoreDb: true,
    modules: ['maps', 'print', 'sketch'],
    projects: 3,
    topLevel: ['config', 'core', 'modules', 'projects', 'templates'],
    topLevelCount: 5,
    takenNames: [],
    journal: false,
    ...over,
  };
}

interface Case {
  t?: Partial<TargetState>;
  s?: { foleVersion?: string; modules?: string[]; root?: RootMetadata };
  o?: Partial<PlanInput['options']>;
  repositoryPath?: string;
}

function input(c: Case = {}): PlanInput {
  return {
    snapshot: snapshot(c.s),
    target: target(c.t),
    repositoryPath: c.repositoryPath ?? '/srv/backups/fole',
    options: { requested: ID, confirm: ID, foleVersion: '2.3.1', ...c.o },
    now: NOW,
    pid: 4242,
  };
}

function plan(c: Case = {}): RestorePlan {
  const r = planRestore(input(c));
  if (r instanceof StopError) throw new Error(`expected a plan, got STOP ${r.code}: ${r.message}`);
  return r;
}

function stop(c: Case): StopError {
  const r = planRestore(input(c));
  if (!(r instanceof StopError)) throw new Error('expected a STOP, got a plan');
  return r;
}

const stops: [string, Case, StopCode, RegExp][] = [
  // intent
  ['--confirm missing', { o: { confirm: undefined } }, 'AMBIGUOUS_INTENT', /not confirmed/],
  ['--confirm empty', { o: { confirm: '' } }, 'AMBIGUOUS_INTENT', /not confirmed/],
  ['--confirm is another backup', { o: { confirm: OTHER } }, 'AMBIGUOUS_INTENT', /does not name/],
  ['--confirm is only a prefix of the id', { o: { confirm: ID.slice(0, 8) } }, 'AMBIGUOUS_INTENT', /does not name/],
  [
    '"latest" without --confirm',
    { o: { requested: 'latest', confirm: undefined } },
    'AMBIGUOUS_INTENT',
    new RegExp(`"latest" is backup ${ID}`),
  ],
  ['--confirm latest', { o: { requested: 'latest', confirm: 'latest' } }, 'AMBIGUOUS_INTENT', /does not name/],
  [
    'a wrong --confirm, even in a dry run',
    { o: { dryRun: true, confirm: OTHER } },
    'AMBIGUOUS_INTENT',
    /does not name/,
  ],
  // target
  ['target is /', { t: { path: '/' } }, 'UNCLEAR_RESTORE_TARGET', /is \/$/],
  [
    "target's parent is missing",
    { t: { parentExists: false, kind: 'absent' } },
    'UNCLEAR_RESTORE_TARGET',
    /parent directory does not exist/,
  ],
  ['target is a file', { t: { kind: 'file' } }, 'UNCLEAR_RESTORE_TARGET', /is a file/],
  [
    'target is a symlink',
    { t: { kind: 'symlink', linkTarget: '/data/fole' } },
    'UNCLEAR_RESTORE_TARGET',
    /symlink to \/data\/fole/,
  ],
  [
    'target is a device or socket',
    { t: { kind: 'other' } },
    'UNCLEAR_RESTORE_TARGET',
    /neither a file nor a directory/,
  ],
  [
    'target is a non-empty directory that is not a STORAGE_ROOT',
    { t: { kind: 'other-dir', topLevel: ['photos'], topLevelCount: 1 } },
    'UNCLEAR_RESTORE_TARGET',
    /not a STORAGE_ROOT.*photos/,
  ],
  [
    'target merely holds projects/, without core/core.db',
    { t: { hasCoreDb: false, coreDbProblem: 'core/core.db is missing' } },
    'UNCLEAR_RESTORE_TARGET',
    /not a FOLE STORAGE_ROOT: core\/core\.db is missing/,
  ],
  [
    "target's core/core.db lies behind a symlink",
    { t: { hasCoreDb: false, coreDbProblem: 'core/core.db in /srv/fole: core is a symlink (to /mnt/x)' } },
    'UNCLEAR_RESTORE_TARGET',
    /core is a symlink/,
  ],
  ['target is a mount point', { t: { mountPoint: true } }, 'UNCLEAR_RESTORE_TARGET', /mount point/],
  ['target is the repository', { repositoryPath: '/srv/fole' }, 'UNCLEAR_RESTORE_TARGET', /the repository itself/],
  [
    'target is inside the repository',
    { t: { path: '/srv/backups/fole/restored', kind: 'absent' } },
    'UNCLEAR_RESTORE_TARGET',
    /inside the repository/,
  ],
  [
    'target contains the repository',
    { repositoryPath: '/srv/fole/backups/repo' },
    'UNCLEAR_RESTORE_TARGET',
    /contains the repository/,
  ],
  // version
  ['target FOLE version unknown', { o: { foleVersion: undefined } }, 'VERSION_MISMATCH', /unknown/],
  [
    'target FOLE version unknown, even for an empty target',
    { t: { kind: 'empty-dir', hasCoreDb: false, modules: null }, o: { foleVersion: undefined } },
    'VERSION_MISMATCH',
    /unknown/,
  ],
  ['target FOLE version empty', { o: { foleVersion: '' } }, 'VERSION_MISMATCH', /unknown/],
  ['backup newer (minor)', { s: { foleVersion: '2.4.0' } }, 'VERSION_MISMATCH', /newer/],
  ['backup newer (patch)', { s: { foleVersion: '2.3.2' } }, 'VERSION_MISMATCH', /newer/],
  ['another major version (target newer)', { o: { foleVersion: '3.0.0' } }, 'VERSION_MISMATCH', /another major/],
  [
    'another major version (backup newer)',
    { s: { foleVersion: '3.0.0' }, o: { foleVersion: '2.9.9' } },
    'VERSION_MISMATCH',
    /another major/,
  ],
  ['target version not X.Y.Z (v prefix)', { o: { foleVersion: 'v2.3.1' } }, 'VERSION_MISMATCH', /not a version/],
  ['target version not X.Y.Z (two parts)', { o: { foleVersion: '2.3' } }, 'VERSION_MISMATCH', /not a version/],
  [
    'target version a pre-release of the backup version',
    { o: { foleVersion: '2.3.1-beta.1' } },
    'VERSION_MISMATCH',
    /newer than the target/,
  ],
  ['backup version unknown', { s: { foleVersion: 'dev' } }, 'VERSION_MISMATCH', /backup's FOLE version "dev"/],
  // modules
  [
    "a module missing from the target's modules/",
    { t: { modules: ['maps'] } },
    'MODULE_SET_MISMATCH',
    /module sketch that the target \(from the target's modules\/\)/,
  ],
  [
    'a STORAGE_ROOT without modules/ has no modules',
    { t: { modules: null } },
    'MODULE_SET_MISMATCH',
    /modules maps, sketch/,
  ],
  [
    '--modules wins over the tree',
    { o: { modules: ['maps'] } },
    'MODULE_SET_MISMATCH',
    /module sketch that the target \(from --modules\)/,
  ],
  [
    '--modules on an empty target',
    { t: { kind: 'empty-dir', hasCoreDb: false, modules: null }, o: { modules: [] } },
    'MODULE_SET_MISMATCH',
    /modules maps, sketch/,
  ],
];

describe('planRestore', () => {
  it.each(stops)('stops when %s', (_name, c, code, message) => {
    const s = stop(c);
    expect(s.code).toBe(code);
    expect(s.message).toMatch(message);
    expect(s.hint).toBeTruthy();
  });

  it('names the resolved backup id in the AMBIGUOUS_INTENT hint so it can be copied', () => {
    expect(stop({ o: { requested: 'latest', confirm: undefined } }).hint).toContain(`--confirm ${ID}`);
    expect(stop({ o: { requested: ID.slice(0, 10), confirm: ID.slice(0, 10) } }).hint).toContain(`--confirm ${ID}`);
  });

  it('checks intent first, then the target, then the version, then the modules', () => {
    const all: Case = { o: { confirm: undefined, foleVersion: '9.0.0' }, t: { kind: 'file', modules: [] } };
    expect(stop(all).code).toBe('AMBIGUOUS_INTENT');
    expect(stop({ ...all, o: { foleVersion: '9.0.0' } }).code).toBe('UNCLEAR_RESTORE_TARGET');
    expect(stop({ o: { foleVersion: '9.0.0' }, t: { modules: [] } }).code).toBe('VERSION_MISMATCH');
    expect(stop({ t: { modules: [] } }).code).toBe('MODULE_SET_MISMATCH');
  });

  it('plans to replace a live STORAGE_ROOT, keeping it beside the target', () => {
    const p = plan();
    expect(p).toMatchObject({
      backupId: ID,
      mode: 'replace',
      previousTree: '/srv/fole.pre-restore-20261126T051200Z',
      staging: '/srv/.fole-backup-restore-3f2a9c1e-4242-fole',
      journal: '/srv/.fole-backup-restore-journal-fole.json',
      storageLock: true,
      rootMode: 0o750,
      write: { files: 120, dirs: 14, bytes: 5_000_000, databases: 2 },
      databases: [
        { path: 'core/core.db', size: 8192 },
        { path: 'projects/p1/project.db', size: 40960 },
      ],
      confirmed: true,
      pendingRecovery: false,
      warnings: [],
    });
    expect(p.target.holds).toBe('a STORAGE_ROOT (3 projects, modules maps, print, sketch)');
    expect(p.checks.foleVersion).toEqual({ backup: '2.3.1', target: '2.3.1', result: 'same version' });
    expect(p.checks.modules.target).toEqual(['maps', 'print', 'sketch']);
  });

  it('picks a fresh name for the previous tree when the one for this second is taken', () => {
    const taken = ['fole.pre-restore-20261126T051200Z', 'fole.pre-restore-20261126T051200Z-2'];
    expect(plan({ t: { takenNames: taken } }).previousTree).toBe('/srv/fole.pre-restore-20261126T051200Z-3');
  });

  it('plans to fill an absent target: no previous tree, no lock, a private root, modules not checked', () => {
    const p = plan({
      t: {
        kind: 'absent',
        mode: undefined,
        hasCoreDb: false,
        modules: null,
        projects: 0,
        topLevel: [],
        topLevelCount: 0,
      },
    });
    expect(p).toMatchObject({ mode: 'fill', previousTree: null, storageLock: false, rootMode: 0o700 });
    expect(p.target.holds).toMatch(/nothing/);
    expect(p.checks.modules.result).toMatch(/not checked/);
  });

  it('plans to fill an empty directory, keeping its mode', () => {
    const p = plan({
      t: {
        kind: 'empty-dir',
        mode: 0o755,
        hasCoreDb: false,
        modules: null,
        projects: 0,
        topLevel: [],
        topLevelCount: 0,
      },
    });
    expect(p).toMatchObject({ mode: 'fill', previousTree: null, storageLock: false, rootMode: 0o755 });
  });

  it('gives the root the mode and owner the backup recorded, whatever the target had', () => {
    const root = { mode: 0o2750, uid: 1234, gid: 1234 };
    expect(plan({ s: { root } })).toMatchObject({ rootMode: 0o2750, rootOwner: { uid: 1234, gid: 1234 } });
    const fill: Partial<TargetState> = {
      kind: 'absent',
      mode: undefined,
      hasCoreDb: false,
      modules: null,
      projects: 0,
      topLevel: [],
      topLevelCount: 0,
    };
    expect(plan({ s: { root }, t: fill })).toMatchObject({ rootMode: 0o2750, rootOwner: { uid: 1234, gid: 1234 } });
    // a backup made before the root was recorded: the target's mode, or private; the owner left alone
    expect(plan()).toMatchObject({ rootMode: 0o750, rootOwner: null });
    expect(plan({ t: fill })).toMatchObject({ rootMode: 0o700, rootOwner: null });
  });

  it('accepts an older backup of the same major version, and --modules that cover the backup', () => {
    expect(plan({ s: { foleVersion: '2.1.9' } }).checks.foleVersion.result).toMatch(/older/);
    expect(plan({ t: { modules: [] }, o: { modules: ['sketch', 'maps', 'maps'] } }).checks.modules.target).toEqual([
      'maps',
      'sketch',
    ]);
    expect(plan({ s: { modules: [] }, t: { modules: null } }).mode).toBe('replace');
  });

  it('plans a dry run without --confirm, saying it is not confirmed', () => {
    const p = plan({ o: { dryRun: true, confirm: undefined, requested: 'latest' } });
    expect(p.confirmed).toBe(false);
    expect(p.requested).toBe('latest');
  });

  it('warns about a pending interrupted restore and a different STORAGE_ROOT, and takes the storage lock', () => {
    const p = plan({ t: { journal: true, path: '/srv/other' } });
    expect(p.pendingRecovery).toBe(true);
    expect(p.storageLock).toBe(true);
    expect(p.warnings.join('\n')).toMatch(/interrupted/);
    expect(p.warnings.join('\n')).toMatch(/another STORAGE_ROOT, \/srv\/other/);
  });

  it('has no I/O: the same input gives the same plan', () => {
    expect(planRestore(input())).toEqual(planRestore(input()));
  });
});

describe('FOLE versions', () => {
  it('parses only strict X.Y.Z with an optional pre-release', () => {
    expect(parseFoleVersion('2.3.1')).toEqual({ major: 2, minor: 3, patch: 1, pre: [] });
    expect(parseFoleVersion('0.0.0')).toEqual({ major: 0, minor: 0, patch: 0, pre: [] });
    expect(parseFoleVersion('2.3.1-beta.2')).toEqual({ major: 2, minor: 3, patch: 1, pre: ['beta', 2] });
    for (const bad of [
      '02.3.1',
      '2.3.1 ',
      '2.3.1\r',
      '2.3.1.4',
      'x.y.z',
      '',
      '2..1',
      '-1.0.0',
      '2.3',
      '2.3.1-',
      '2.3.1-01',
      '2.3.1+build',
      'garbage',
    ]) {
      expect(parseFoleVersion(bad), bad).toBeUndefined();
    }
  });

  it('orders a pre-release before its release, as semver does', () => {
    expect(checkFoleVersion('2.3.1-beta', '2.3.1')).toMatch(/older/);
    expect(checkFoleVersion('2.3.1', '2.3.1-beta')).toBeInstanceOf(StopError);
    expect(checkFoleVersion('2.3.1-beta.2', '2.3.1-beta.10')).toMatch(/older/);
    expect(checkFoleVersion('2.3.1-beta.10', '2.3.1-beta.2')).toBeInstanceOf(StopError);
    expect(checkFoleVersion('2.3.1-alpha', '2.3.1-beta')).toMatch(/older/);
    expect(checkFoleVersion('2.3.1-1', '2.3.1-alpha')).toMatch(/older/);
    expect(checkFoleVersion('2.3.1-rc', '2.3.1-rc.1')).toMatch(/older/);
    expect(checkFoleVersion('2.3.1-rc.1', '2.3.1-rc.1')).toBe('same version');
  });

  it('compares numerically, not as text', () => {
    expect(checkFoleVersion('2.10.0', '2.9.0')).toBeInstanceOf(StopError);
    expect(checkFoleVersion('2.9.0', '2.10.0')).toMatch(/older/);
  });
});
