/**
 * Command-line options of `npm run bench` (bench/run.ts). Parsed with
 * node:util parseArgs; every option is documented in --help and in
 * docs/BENCHMARKS.md.
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { SHAPE_NAMES, type ShapeName } from './shapes.js';
import type { AnchorName } from './tools/tool.js';

const PRESET_NAMES = ['small', 'default', 'large'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** The measured scenarios, in the order they run. */
const SCENARIOS = ['full', 'incr-nochange', 'incr-change', 'restore', 'verify', 'dedup'] as const;
export type Scenario = (typeof SCENARIOS)[number];
const ANCHOR_NAMES: readonly AnchorName[] = ['restic', 'restic-plain', 'borg'];
/** What --anchors runs: the anchors with a consistent database capture (restic-plain is a reference only). */
const ALL_ANCHORS: readonly AnchorName[] = ['restic', 'borg'];
/** The anchors of --shape unless --anchor/--anchors says otherwise. */
const SHAPE_ANCHORS: readonly AnchorName[] = ['restic', 'restic-plain'];
const OFFSITE_TARGETS = ['s3', 'sftp'] as const;
export type OffsiteTargetName = (typeof OFFSITE_TARGETS)[number];
/** What --offsite measures of the scenarios (the full backup always; the others when --scenarios names them). */
export const OFFSITE_SCENARIOS: readonly Scenario[] = ['full', 'incr-nochange', 'restore'];

export const SCENARIO_TITLES: Record<Scenario, string> = {
  full: 'first full backup',
  'incr-nochange': 'incremental, nothing changed',
  'incr-change': 'incremental after 1% files + 1% DB pages',
  restore: 'full restore into an empty dir',
  verify: 'full verify (read all data)',
  dedup: 'dedup: 1% pages of the largest DB alone',
};

export interface BenchOptions {
  preset: PresetName;
  /** --shape: measure these shapes (bench/lib/shapes.ts) one after the other instead of the preset. */
  shapes: ShapeName[];
  /** Whether --scenarios was given (else a shape runs its own default: no verify, dedup where it has one). */
  scenariosGiven: boolean;
  runs: number;
  /** The anchors to run beside fole-backup (none by default). */
  anchors: AnchorName[];
  scenarios: Scenario[];
  out: string;
  keep: boolean;
  profile: boolean;
  build: boolean;
  /** A git ref of fole-backup to build apart and measure beside this build, as the tool `fole@REF`. */
  baseline?: string;
  /** Wait at most this long before each step for a quiet second (machine < 15% busy). */
  quietWait: number;
  /** --offsite: measure against these servers instead of local repositories. */
  offsite: OffsiteTargetName[];
  /** Scale the preset to about this many files / megabytes. */
  files?: number;
  mb?: number;
}

/** What --profile records, one CPU profile each. */
const PROFILED_STEPS = 'full backup, unchanged incremental, restore, verify';

export const USAGE = `usage: npm run bench -- [options]

  --preset small|default|large   dataset (default: default)
  --shape NAME[,NAME]            instead of a preset, measure these shapes one after the other (repeatable;
                                 \`all\` for every one):
                                 ${SHAPE_NAMES.join(', ')}.
                                 Anchors restic and restic-plain unless --anchor/--anchors; scenarios full,
                                 incr-nochange, incr-change, restore (+ dedup for huge-db) unless --scenarios
  --files N                      scale the preset's (or shape's) tile pyramids to about N files in all
  --mb M                         scale the preset's (or shape's) large databases, -wal tails or uploads to about
                                 M MB in all
  --runs N                       repetitions; medians are reported (default: 3, large: 1)
  --anchors                      also run restic and Borg (installed with apt-get if missing, as root)
  --anchor restic|restic-plain|borg
                                 also run this one anchor (repeatable); for \`large\` on a disk without
                                 room for three repositories and three restored trees. restic-plain: restic
                                 on the raw tree, databases and -wal files included (no capture hook; not a
                                 consistent backup, a reference figure)
  --scenarios a,b,...            subset of: ${SCENARIOS.join(', ')} (default: all)
  --out DIR                      results, dataset cache and work dirs (default: bench/out)
  --keep                         keep the work directory (trees, repositories, restores)
  --profile                      also profile fole-backup (node --cpu-prof): ${PROFILED_STEPS}
  --quiet-wait S                 before each step, wait up to S seconds for a quiet second (default 5)
  --no-build                     use dist/ as it is instead of running \`npm run build\` first
  --baseline REF                 also build the git ref REF (a commit, main~5, a tag) in a worktree under
                                 --out and measure it as the tool fole@REF, interleaved with this build:
                                 the report shows this build / REF for wall time, CPU and peak RSS
  --offsite s3,sftp              measure against servers on this machine instead of local repositories:
                                 Swift's s3api over TLS and/or OpenSSH sshd, started by the harness
                                 (test/servers/). Per target: fole-backup and restic (+ its sqlite3 hook;
                                 installed if missing) ${OFFSITE_SCENARIOS.join(', ')} (those --scenarios names);
                                 and \`fole-backup copy\` of the full backup from a local repository against the
                                 same bytes uploaded by the AWS SDK alone / \`sftp -b\` alone. No Borg, no
                                 machine limits, no dedup; not with --baseline or --profile
  -h, --help                     this text`;

export class OptionsError extends Error {}

/** --shape values: repeatable, each a comma list of names or `all`; in SHAPE_NAMES order, each once. */
function parseShapes(raw: readonly string[] | undefined): ShapeName[] {
  const asked = (raw ?? []).flatMap((x) => x.split(',').map((s) => s.trim()));
  if (raw !== undefined && asked.every((s) => s === '')) throw new OptionsError('--shape needs a shape name or all');
  for (const s of asked) {
    if (s !== '' && s !== 'all' && !(SHAPE_NAMES as readonly string[]).includes(s))
      throw new OptionsError(`unknown shape ${s}; known: ${SHAPE_NAMES.join(', ')}, all`);
  }
  return SHAPE_NAMES.filter((n) => asked.includes('all') || asked.includes(n));
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: false,
    options: {
      preset: { type: 'string' },
      shape: { type: 'string', multiple: true },
      files: { type: 'string' },
      mb: { type: 'string' },
      runs: { type: 'string' },
      anchors: { type: 'boolean', default: false },
      anchor: { type: 'string', multiple: true },
      scenarios: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      baseline: { type: 'string' },
      'quiet-wait': { type: 'string' },
      offsite: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

export function parseOptions(argv: string[], repoRoot: string): BenchOptions | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new OptionsError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help === true) return 'help';
  const preset = (v.preset ?? 'default') as PresetName;
  if (!PRESET_NAMES.includes(preset))
    throw new OptionsError(`--preset must be one of ${PRESET_NAMES.join(', ')}, not ${v.preset}`);
  let runs = preset === 'large' ? 1 : 3;
  if (v.runs !== undefined) {
    runs = Number(v.runs);
    if (!Number.isSafeInteger(runs) || runs < 1)
      throw new OptionsError(`--runs must be a positive integer, not ${v.runs}`);
  }
  let scenarios: Scenario[] = [...SCENARIOS];
  if (v.scenarios !== undefined) {
    const asked = v.scenarios
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    for (const s of asked) {
      if (!(SCENARIOS as readonly string[]).includes(s))
        throw new OptionsError(`unknown scenario ${s}; known: ${SCENARIOS.join(', ')}`);
    }
    scenarios = SCENARIOS.filter((s) => asked.includes(s));
  }
  const positive = (name: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new OptionsError(`--${name} must be a positive number, not ${raw}`);
    return n;
  };
  const shapes = parseShapes(v.shape);
  if (shapes.length > 0 && v.preset !== undefined) throw new OptionsError('--shape and --preset exclude each other');
  if (shapes.length > 0 && v.offsite !== undefined) throw new OptionsError('--shape cannot be combined with --offsite');
  const anchors: AnchorName[] = v.anchors === true ? [...ALL_ANCHORS] : [];
  if (shapes.length > 0 && v.anchors !== true && (v.anchor ?? []).length === 0) anchors.push(...SHAPE_ANCHORS);
  for (const a of v.anchor ?? []) {
    if (!(ANCHOR_NAMES as readonly string[]).includes(a))
      throw new OptionsError(`--anchor must be one of ${ANCHOR_NAMES.join(', ')}, not ${a}`);
    if (!anchors.includes(a as AnchorName)) anchors.push(a as AnchorName);
  }
  const files = positive('files', v.files);
  const mb = positive('mb', v.mb);
  const quietWait = Number(v['quiet-wait'] ?? 5);
  if (!Number.isFinite(quietWait) || quietWait < 0)
    throw new OptionsError(`--quiet-wait must be a number of seconds, not ${v['quiet-wait']}`);
  const offsite = (v.offsite ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const t of offsite) {
    if (!(OFFSITE_TARGETS as readonly string[]).includes(t))
      throw new OptionsError(`--offsite takes ${OFFSITE_TARGETS.join(', ')}, not ${t}`);
  }
  if (v.offsite !== undefined && offsite.length === 0) throw new OptionsError('--offsite needs s3, sftp or both');
  // the offsite runs measure this build against restic only, and profile nothing
  if (offsite.length > 0 && (v.baseline !== undefined || v.profile === true))
    throw new OptionsError('--offsite cannot be combined with --baseline or --profile');
  const baseline = v.baseline?.trim();
  if (baseline === '') throw new OptionsError('--baseline needs a git ref (a commit, a branch, main~5)');
  return {
    quietWait,
    ...(baseline !== undefined ? { baseline } : {}),
    ...(files !== undefined ? { files } : {}),
    ...(mb !== undefined ? { mb } : {}),
    preset,
    shapes,
    scenariosGiven: v.scenarios !== undefined,
    runs,
    // offsite: restic is the comparison, Borg has no S3
    anchors: offsite.length > 0 ? ['restic'] : ANCHOR_NAMES.filter((a) => anchors.includes(a)),
    scenarios,
    out: resolve(v.out ?? resolve(repoRoot, 'bench', 'out')),
    keep: v.keep === true,
    profile: v.profile === true,
    build: v['no-build'] !== true,
    offsite: OFFSITE_TARGETS.filter((t) => offsite.includes(t)),
  };
}
