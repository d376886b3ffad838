/**
 * The rules for the free-form values a backup records about itself: the FOLE
 * version, who asked (createdBy / actor), and tags. They are checked where a
 * value enters (backup options, CLI flags, a STORAGE_ROOT's config) so that a
 * backup is never written with a value its own reader or a restore refuses.
 *
 * The reader (validateSnapshot) stays more lenient than these rules: it must
 * still read what older builds wrote. These are the writer's rules.
 */
import { FoleBackupError } from '../errors.js';
import { printable, UNPRINTABLE } from './validate.js';

/** Longest FOLE version accepted (the reader refuses longer ones). */
const MAX_VERSION_LENGTH = 128;
/** Longest actor name or tag accepted (the reader refuses longer ones). */
const MAX_LABEL_LENGTH = 256;

/**
 * A semantic version (semver.org 2.0): MAJOR.MINOR.PATCH with an optional
 * pre-release (`-beta.1`). Numeric parts have no leading zeros; build metadata
 * (`+…`) is not accepted, as FOLE does not use it and it would not take part in
 * the comparison.
 */
export interface Semver {
  major: number;
  minor: number;
  patch: number;
  /** Pre-release identifiers, numeric ones as numbers; empty for a release. */
  pre: (string | number)[];
}

const NUM = '(0|[1-9]\\d{0,8})';
const PRE_ID = '(?:0|[1-9]\\d{0,8}|\\d*[A-Za-z-][0-9A-Za-z-]*)';
const SEMVER_RE = new RegExp(`^${NUM}\\.${NUM}\\.${NUM}(?:-(${PRE_ID}(?:\\.${PRE_ID})*))?$`);

/** Parse a FOLE version, or undefined when it is not MAJOR.MINOR.PATCH[-PRERELEASE]. */
export function parseFoleVersion(v: string | undefined): Semver | undefined {
  if (v === undefined || v.length > MAX_VERSION_LENGTH) return undefined;
  const m = SEMVER_RE.exec(v);
  if (m === null) return undefined;
  const pre = m[4] === undefined ? [] : m[4].split('.').map((id) => (/^\d+$/.test(id) ? Number(id) : id));
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), pre };
}

/**
 * Semver precedence: negative when `a` is older than `b`, 0 when equal. A
 * pre-release is older than its release (2.3.1-beta < 2.3.1); pre-release
 * identifiers compare numerically when both are numbers, numbers before words,
 * and a longer list wins when one is a prefix of the other.
 */
export function compareSemver(a: Semver, b: Semver): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  if (a.pre.length === 0 || b.pre.length === 0) return b.pre.length - a.pre.length;
  for (let i = 0; i < Math.min(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i] as string | number;
    const y = b.pre[i] as string | number;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x < y ? -1 : 1;
  }
  return a.pre.length - b.pre.length;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Name a forbidden character for a message: "a carriage return (\r)", "U+202E". */
function describeChar(c: string): string {
  const names: Record<string, string> = {
    '\r': 'a carriage return (\\r)',
    '\n': 'a line feed (\\n)',
    '\t': 'a tab (\\t)',
    '\u001b': 'an escape (\\e)',
  };
  return names[c] ?? `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Why `s` cannot be recorded as a label of at most `max` characters, or undefined if it can. */
export function labelProblem(s: string, max = MAX_LABEL_LENGTH): string | undefined {
  if (s.length === 0) return 'it is empty';
  if (s.length > max) return `it is ${s.length} characters long, at most ${max} are allowed`;
  // no recorded label may hold a character that does not print as itself: a `\r` from a
  // file with Windows line endings, an escape sequence, a bidi override disguising the text
  const bad = UNPRINTABLE.exec(s);
  if (bad !== null) {
    const hint = bad[0] === '\r' ? ' — a value read from a file with Windows line endings?' : '';
    return `it contains ${describeChar(bad[0])} at position ${bad.index + 1}${hint}`;
  }
  if (LONE_SURROGATE.test(s)) return 'it is not valid Unicode';
  return undefined;
}

/** Why `v` is not a FOLE version this tool records, or undefined if it is one. */
export function foleVersionProblem(v: string): string | undefined {
  const label = labelProblem(v, MAX_VERSION_LENGTH);
  if (label !== undefined) return label;
  if (parseFoleVersion(v) === undefined)
    return 'it is not a version MAJOR.MINOR.PATCH with an optional -PRERELEASE (e.g. 2.3.1 or 2.4.0-rc.1)';
  return undefined;
}

/**
 * The FOLE version a restore is told the target runs, from `flag` or `env`:
 * undefined when neither is given; USAGE (exit 2) when it is not a version, so
 * a typo is a usage error rather than a version-mismatch STOP.
 */
export function givenFoleVersion(flag: string | undefined, env: string | undefined): string | undefined {
  const v = flag ?? (env === '' ? undefined : env);
  if (v === undefined) return undefined;
  const problem = foleVersionProblem(v);
  if (problem !== undefined) {
    throw new FoleBackupError(
      'USAGE',
      `${flag !== undefined ? '--fole-version' : 'FOLE_VERSION'} ${printable(v, 60)} is not accepted: ${problem}`,
      {
        hint: 'give the version of the FOLE server that will run on the restored tree, e.g. 2.3.1',
      },
    );
  }
  return v;
}

/** The values a backup records about itself, as given by its caller. */
export interface BackupLabels {
  foleVersion: string;
  actor?: string | undefined;
  tags?: readonly string[] | undefined;
}

/**
 * Check every label of a backup where it enters. Throws FoleBackupError USAGE
 * (CLI exit 2) naming the value, the rule it breaks and what is allowed.
 */
export function checkBackupLabels(
  l: BackupLabels,
  flags: { version?: string; actor?: string; tag?: string } = {},
): void {
  const vProblem = foleVersionProblem(l.foleVersion);
  if (vProblem !== undefined) {
    throw new FoleBackupError(
      'USAGE',
      `${flags.version ?? 'the FOLE version'} ${printable(l.foleVersion, 60)} is not accepted: ${vProblem}`,
      {
        hint:
          'give the version of the FOLE server that owns this STORAGE_ROOT as ' +
          "MAJOR.MINOR.PATCH[-PRERELEASE], e.g. 2.3.1; restore compares it with the target's",
      },
    );
  }
  const labelHint = `up to ${MAX_LABEL_LENGTH} printable characters (no control characters or line breaks)`;
  if (l.actor !== undefined) {
    const p = labelProblem(l.actor);
    if (p !== undefined)
      throw new FoleBackupError(
        'USAGE',
        `${flags.actor ?? 'the actor'} ${printable(l.actor, 60)} is not accepted: ${p}`,
        { hint: `a name is ${labelHint}` },
      );
  }
  for (const t of l.tags ?? []) {
    const p = labelProblem(t);
    if (p !== undefined)
      throw new FoleBackupError('USAGE', `${flags.tag ?? 'the tag'} ${printable(t, 60)} is not accepted: ${p}`, {
        hint: `a tag is ${labelHint}, e.g. pre-migration:42`,
      });
  }
}
