/**
 * Turning measurements into medians, ratios and tables (text for the
 * terminal, Markdown for docs/BENCHMARKS.md).
 */
import { SCENARIO_TITLES, type Scenario } from './options.js';
import { RAW_READ_COLD, RAW_READ_COLD_PARALLEL, RAW_READ_WARM, SHA256_1MIB, type Limit } from './limits.js';
import { isAnchor, type FoleName, type ToolName } from './tools/tool.js';

interface PartFigures {
  label: string;
  wallS: number;
  userS: number;
  sysS: number;
  maxRssKiB: number;
}

export interface Measurement {
  run: number;
  scenario: Scenario;
  tool: ToolName;
  status: 'ok' | 'failed' | 'unavailable';
  error?: string;
  wallS: number;
  cpuS: number;
  maxRssKiB: number;
  /** du -sb of the repository after minus before (null for steps that do not write it). */
  repoGrowthBytes: number | null;
  parts: PartFigures[];
  /** CPU seconds the rest of the machine used during the step (machine busy time minus the step's own). */
  foreignCpuS: number;
  /** Busy share of the machine in the quiet second waited for before the step (0..1). */
  busyBefore: number;
  info: Record<string, number | string | null>;
}

export interface Summary {
  scenario: Scenario;
  tool: ToolName;
  runs: number;
  okRuns: number;
  status: 'ok' | 'failed' | 'unavailable' | 'not run';
  error?: string;
  wallS: number | null;
  cpuS: number | null;
  maxRssKiB: number | null;
  repoGrowthBytes: number | null;
  /** Median wall time of the anchors' database hook part: the capture before a backup, the check after a restore. */
  captureS: number | null;
  /** Median CPU seconds used by other processes during the step: noise. */
  foreignCpuS: number | null;
  filesPerS: number | null;
  mbPerS: number | null;
}

export function median(xs: readonly number[]): number | null {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

/** Medians per scenario and tool; files/s and MB/s over the whole tree (what each step covers). */
export function summarize(
  ms: readonly Measurement[],
  scenarios: readonly Scenario[],
  tools: readonly ToolName[],
  treeFiles: number,
  treeBytes: number,
): Summary[] {
  const out: Summary[] = [];
  for (const scenario of scenarios) {
    if (scenario === 'dedup') continue;
    for (const tool of tools) {
      const all = ms.filter((m) => m.scenario === scenario && m.tool === tool);
      const ok = all.filter((m) => m.status === 'ok');
      const wallS = median(ok.map((m) => m.wallS));
      const bad = all.find((m) => m.status !== 'ok');
      out.push({
        scenario,
        tool,
        runs: all.length,
        okRuns: ok.length,
        status: all.length === 0 ? 'not run' : ok.length > 0 ? 'ok' : (bad?.status ?? 'failed'),
        ...(bad?.error !== undefined ? { error: bad.error } : {}),
        wallS,
        cpuS: median(ok.map((m) => m.cpuS)),
        maxRssKiB: median(ok.map((m) => m.maxRssKiB)),
        repoGrowthBytes: median(ok.flatMap((m) => (m.repoGrowthBytes === null ? [] : [m.repoGrowthBytes]))),
        captureS: median(ok.flatMap((m) => m.parts.filter((p) => isHook(p.label)).map((p) => p.wallS))),
        foreignCpuS: median(ok.map((m) => m.foreignCpuS)),
        filesPerS: wallS ? treeFiles / wallS : null,
        mbPerS: wallS ? treeBytes / 1e6 / wallS : null,
      });
    }
  }
  return out;
}

const f1 = (x: number | null, d = 1): string => (x === null ? '–' : x.toFixed(d));
const mib = (b: number | null): string => (b === null ? '–' : (b / 1048576).toFixed(b >= 1048576 * 100 ? 0 : 1));
const ratio = (a: number | null, b: number | null): string =>
  a === null || b === null || b === 0 ? '–' : (a / b).toFixed(2);
const int = (x: number | null): string => (x === null ? '–' : Math.round(x).toLocaleString('en-US'));

function cell(s: Summary | undefined, fn: (s: Summary) => string): string {
  if (s === undefined || s.status === 'not run') return '–';
  if (s.status !== 'ok') return s.status === 'unavailable' ? 'n/a' : 'FAILED';
  return fn(s);
}

export interface Table {
  head: string[];
  rows: string[][];
  /** Right-align these columns. */
  right: Set<number>;
}

/** Right-align every column of `head` from `first` on (the figures). */
function numericFrom(head: readonly string[], first: number): Set<number> {
  return new Set(head.map((_, i) => i).filter((i) => i >= first));
}

/** The one table: per scenario, times of each tool, ratios, fole's rates, peak RSS, CPU, repository growth. */
export function mainTable(sums: readonly Summary[], tools: readonly ToolName[], scenarios: readonly Scenario[]): Table {
  // a --baseline build has a table of its own (baselineTable)
  const anchors = tools.filter(isAnchor);
  const head = [
    'scenario',
    ...tools.map((t) => `${t} s`),
    ...anchors.map((t) => `fole/${t}`),
    'fole files/s',
    'fole MB/s',
    `peak RSS MiB (${tools.join('/')})`,
    `CPU s (${tools.join('/')})`,
    `repo +MiB (${tools.join('/')})`,
  ];
  const rows: string[][] = [];
  for (const scenario of scenarios) {
    if (scenario === 'dedup') continue;
    const get = (t: ToolName): Summary | undefined => sums.find((s) => s.scenario === scenario && s.tool === t);
    const fole = get('fole');
    rows.push([
      SCENARIO_TITLES[scenario],
      ...tools.map((t) => cell(get(t), (s) => f1(s.wallS, 2))),
      ...anchors.map((t) =>
        fole?.status === 'ok' && get(t)?.status === 'ok' ? ratio(fole.wallS, get(t)?.wallS ?? null) : '–',
      ),
      cell(fole, (s) => int(s.filesPerS)),
      cell(fole, (s) => f1(s.mbPerS)),
      tools.map((t) => cell(get(t), (s) => f1(s.maxRssKiB === null ? null : s.maxRssKiB / 1024, 0))).join(' / '),
      tools.map((t) => cell(get(t), (s) => f1(s.cpuS))).join(' / '),
      tools.map((t) => cell(get(t), (s) => (s.repoGrowthBytes === null ? '–' : mib(s.repoGrowthBytes)))).join(' / '),
    ]);
  }
  return { head, rows, right: numericFrom(head, 1) };
}

/**
 * --baseline: this build against the baseline, per scenario. Each ratio is this build's median over the
 * baseline's median (below 1: this build is faster or smaller); the last column pairs the two builds'
 * wall times run by run, as they ran minutes apart on the same tree.
 */
export function baselineTable(
  sums: readonly Summary[],
  ms: readonly Measurement[],
  baseline: FoleName,
  scenarios: readonly Scenario[],
): Table {
  const pair = `fole / ${baseline}`;
  const head = [
    'scenario',
    `wall s (${pair})`,
    'wall ratio',
    `CPU s (${pair})`,
    'CPU ratio',
    `peak RSS MiB (${pair})`,
    'RSS ratio',
    'wall ratio per run',
  ];
  const rows: string[][] = [];
  for (const scenario of scenarios) {
    if (scenario === 'dedup') continue;
    const get = (t: ToolName): Summary | undefined =>
      sums.find((s) => s.scenario === scenario && s.tool === t && s.status === 'ok');
    const cur = get('fole');
    const base = get(baseline);
    const both = (fn: (s: Summary) => number | null, d: number): [string, string] => {
      const a = cur === undefined ? null : fn(cur);
      const b = base === undefined ? null : fn(base);
      return [`${f1(a, d)} / ${f1(b, d)}`, ratio(a, b)];
    };
    const runs = ms
      .filter((m) => m.scenario === scenario && m.tool === 'fole' && m.status === 'ok')
      .flatMap((m) => {
        const b = ms.find((x) => x.scenario === scenario && x.tool === baseline && x.run === m.run);
        return b?.status === 'ok' ? [ratio(m.wallS, b.wallS)] : [];
      });
    rows.push([
      SCENARIO_TITLES[scenario],
      ...both((s) => s.wallS, 2),
      ...both((s) => s.cpuS, 2),
      ...both((s) => (s.maxRssKiB === null ? null : s.maxRssKiB / 1024), 0),
      runs.join(', ') || '–',
    ]);
  }
  return { head, rows, right: new Set([1, 2, 3, 4, 5, 6]) };
}

/** Every tool's figures, one row per scenario and tool. */
export function detailTable(sums: readonly Summary[]): Table {
  const head = [
    'scenario',
    'tool',
    'runs ok',
    'wall s',
    'CPU s',
    'CPU/wall',
    'peak RSS MiB',
    'repo +MiB',
    'files/s',
    'MB/s',
    'of which DB hook s',
    'other procs CPU s',
  ];
  const rows = sums.map((s) => [
    SCENARIO_TITLES[s.scenario],
    s.tool,
    `${s.okRuns}/${s.runs}`,
    s.status === 'ok' ? f1(s.wallS, 2) : s.status,
    f1(s.cpuS, 2),
    s.wallS && s.cpuS !== null ? (s.cpuS / s.wallS).toFixed(2) : '–',
    s.maxRssKiB === null ? '–' : (s.maxRssKiB / 1024).toFixed(0),
    mib(s.repoGrowthBytes),
    int(s.filesPerS),
    f1(s.mbPerS),
    s.captureS === null ? '' : f1(s.captureS, 2),
    f1(s.foreignCpuS, 1),
  ]);
  return { head, rows, right: new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) };
}

export function limitsTable(limits: readonly Limit[]): Table {
  return {
    head: ['machine limit (single thread unless said)', 'MB/s', 's for the tree', 'note'],
    rows: limits.map((l) => [l.name, f1(l.bytesPerS / 1e6, 0), f1(l.secondsForTree, 2), l.note ?? '']),
    right: new Set([1, 2]),
  };
}

export function renderText(t: Table): string {
  const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (t.right.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(t.head), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

export function renderMarkdown(t: Table): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  return [
    `| ${t.head.map(esc).join(' | ')} |`,
    `|${t.head.map((_, i) => (t.right.has(i) ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export interface Goal {
  goal: string;
  value: string;
  met: boolean | null;
}

type Getter = (sc: Scenario, t: ToolName) => Summary | undefined;

/** An anchor's database hook: the capture before its backup, the integrity check after its restore. */
const isHook = (label: string): boolean => label.startsWith('capture') || label.startsWith('check');

function getter(sums: readonly Summary[]): Getter {
  return (sc, t) => sums.find((s) => s.scenario === sc && s.tool === t && s.status === 'ok');
}

/** Issue 18's restore goal (and issue 5's). */
const RESTORE_MAX = 0.67;

/** The wall-time goals of issues 5 and 18, fole over restic (with its capture hook) in the same run. */
function wallGoals(get: Getter, restic: string): Goal[] {
  const goals: [Scenario, number, string][] = [
    ['full', 0.67, 'first full backup'],
    ['incr-nochange', 0.5, 'incremental, no change'],
    ['restore', RESTORE_MAX, 'restore'],
  ];
  return goals.map(([sc, max, what]) => wallGoal(get, sc, 'restic', `${what}, fole/${restic} ≤ ${max}`, max));
}

/** fole's median wall time over `anchor`'s in scenario `sc`, at most `max`. */
function wallGoal(get: Getter, sc: Scenario, anchor: ToolName, label: string, max: number): Goal {
  const f = get(sc, 'fole')?.wallS;
  const r = get(sc, anchor)?.wallS;
  if (f == null || r == null) return { goal: label, value: 'not measured', met: null };
  return { goal: label, value: `${(f / r).toFixed(2)} (${f.toFixed(1)} s vs ${r.toFixed(1)} s)`, met: f / r <= max };
}

const RSS_SCENARIOS: readonly Scenario[] = ['full', 'incr-nochange', 'incr-change', 'restore', 'verify'];

/** Issue 5's goals on the default preset, each against restic in the same run. */
export function goals(sums: readonly Summary[], limits: readonly Limit[], treeBytes: number): Goal[] {
  const get = getter(sums);
  const out: Goal[] = wallGoals(get, 'restic');
  const rss = RSS_SCENARIOS.map((sc) => [sc, get(sc, 'fole'), get(sc, 'restic')] as const);
  const measured = rss.filter(([, f, r]) => f?.maxRssKiB != null && r?.maxRssKiB != null);
  if (measured.length === 0) out.push({ goal: 'peak RSS ≤ restic (every scenario)', value: 'not measured', met: null });
  else {
    const worse = measured.filter(([, f, r]) => (f?.maxRssKiB ?? 0) > (r?.maxRssKiB ?? 0)).map(([sc]) => sc);
    out.push({
      goal: 'peak RSS ≤ restic (every scenario)',
      value: worse.length === 0 ? 'all' : `higher in: ${worse.join(', ')}`,
      met: worse.length === 0,
    });
  }
  const full = get('full', 'fole');
  // raw read in the cache state every step starts from: the best the disk gives (parallel) when caches are dropped
  const raw = limits.find((l) => l.name === RAW_READ_COLD_PARALLEL) ?? limits.find((l) => l.name === RAW_READ_WARM);
  const rawSerial = limits.find((l) => l.name === RAW_READ_COLD);
  const sha = limits.find((l) => l.name === SHA256_1MIB);
  if (full?.wallS != null && raw && sha) {
    const lim = Math.min(raw.bytesPerS, sha.bytesPerS);
    const tput = treeBytes / full.wallS;
    const also = rawSerial
      ? ` (${((100 * tput) / Math.min(rawSerial.bytesPerS, sha.bytesPerS)).toFixed(0)}% of one-at-a-time cat, ` +
        `${(rawSerial.bytesPerS / 1e6).toFixed(0)} MB/s)`
      : '';
    out.push({
      goal: `full backup throughput ≥ 50% of min(${raw.name}, SHA-256)`,
      value:
        `${(tput / 1e6).toFixed(0)} MB/s = ${((100 * tput) / lim).toFixed(0)}% of ${(lim / 1e6).toFixed(0)}` +
        ` MB/s${also}`,
      met: tput >= lim / 2,
    });
  }
  return out;
}

export function goalsTable(gs: readonly Goal[], title = 'goal (issue 5, default preset)'): Table {
  return {
    head: [title, 'this run', 'met'],
    rows: gs.map((g) => [g.goal, g.value, g.met === null ? '–' : g.met ? 'yes' : 'NO']),
    right: new Set(),
  };
}

export interface DedupFigure {
  tool: ToolName;
  status: 'ok' | 'failed' | 'unavailable';
  error?: string;
  dbPath: string;
  dbBytes: number;
  pageSize: number;
  pagesChanged: number;
  pageCount: number;
  repoGrowthBytes: number | null;
  /** What the tool itself says it added. */
  reportedAddedBytes: number | null;
  wallS: number | null;
}

export function dedupTable(ds: readonly DedupFigure[]): Table {
  return {
    head: [
      'tool',
      'DB MiB',
      'pages changed',
      'changed MiB',
      'repo +MiB',
      '+ / DB size',
      '+ / changed bytes',
      'incremental s',
    ],
    rows: ds.map((d) => {
      const changed = d.pagesChanged * d.pageSize;
      return [
        d.tool,
        mib(d.dbBytes),
        `${d.pagesChanged} of ${d.pageCount}`,
        mib(changed),
        d.status === 'ok' ? mib(d.repoGrowthBytes) : d.status,
        d.repoGrowthBytes === null ? '–' : `${((100 * d.repoGrowthBytes) / d.dbBytes).toFixed(1)}%`,
        d.repoGrowthBytes === null || changed === 0 ? '–' : `${(d.repoGrowthBytes / changed).toFixed(1)}×`,
        f1(d.wallS, 2),
      ];
    }),
    right: new Set([1, 2, 3, 4, 5, 6, 7]),
  };
}

/** Largest share of a database the repository may grow by after 1% of its pages change (issue 18). */
const DEDUP_MAX_GROWTH = 0.02;

/**
 * Issue 18's goals on one shape, against restic with its capture hook in the same run: the wall-time ratios,
 * peak RSS in each scenario, and (where dedup ran) the repository growth after 1% of the largest DB's pages.
 */
export function shapeGoals(sums: readonly Summary[], dedup: readonly DedupFigure[] | null): Goal[] {
  const get = getter(sums);
  const out = wallGoals(get, 'restic+hook');
  // restic+hook's restore runs integrity_check on each database, as ours must (spec §7); the figure is
  // restic's restore alone, which restic-plain measures
  const plain = wallGoal(
    get,
    'restore',
    'restic-plain',
    `restore, fole/restic-plain (restic without the integrity check) ≤ ${RESTORE_MAX}`,
    RESTORE_MAX,
  );
  if (plain.met !== null) out.splice(out.findIndex((g) => g.goal.startsWith('restore,')) + 1, 0, plain);
  for (const sc of RSS_SCENARIOS) {
    const f = get(sc, 'fole')?.maxRssKiB;
    const r = get(sc, 'restic')?.maxRssKiB;
    if (f == null || r == null) continue;
    out.push({
      goal: `peak RSS, ${SCENARIO_TITLES[sc]}, fole/restic ≤ 1.0`,
      value: `${(f / r).toFixed(2)} (${(f / 1024).toFixed(0)} MiB vs ${(r / 1024).toFixed(0)} MiB)`,
      met: f <= r,
    });
  }
  const d = dedup?.find((x) => x.tool === 'fole');
  if (d !== undefined) {
    const g = d.repoGrowthBytes;
    out.push({
      goal: `repository growth after 1% of the pages of the ${mib(d.dbBytes)} MiB DB ≤ ${100 * DEDUP_MAX_GROWTH}%`,
      value: g === null ? 'not measured' : `${((100 * g) / d.dbBytes).toFixed(2)}% (${mib(g)} MiB)`,
      met: g === null ? null : g <= DEDUP_MAX_GROWTH * d.dbBytes,
    });
  }
  return out;
}

/** Per scenario, fole's median over each anchor's: wall time, CPU time, peak RSS (below 1: fole is better). */
export function ratioTable(
  sums: readonly Summary[],
  anchors: readonly ToolName[],
  scenarios: readonly Scenario[],
): Table {
  const get = getter(sums);
  const head = ['scenario', ...anchors.flatMap((a) => [`wall fole/${a}`, `CPU fole/${a}`, `RSS fole/${a}`])];
  const rows = scenarios
    .filter((sc) => sc !== 'dedup')
    .map((sc) => {
      const f = get(sc, 'fole');
      return [
        SCENARIO_TITLES[sc],
        ...anchors.flatMap((a) => {
          const r = get(sc, a);
          return [
            ratio(f?.wallS ?? null, r?.wallS ?? null),
            ratio(f?.cpuS ?? null, r?.cpuS ?? null),
            ratio(f?.maxRssKiB ?? null, r?.maxRssKiB ?? null),
          ];
        }),
      ];
    });
  return { head, rows, right: numericFrom(head, 1) };
}

/** What one shape gave, for the summary of an invocation that measured several. */
export interface ShapeResult {
  shape: string;
  files: number;
  bytes: number;
  databases: number;
  dirs: number;
  sums: Summary[];
  goals: Goal[];
  dedup: DedupFigure[] | null;
}

/** One row per shape: the wall-time ratios to restic+hook and restic-plain, the worst RSS ratio, dedup, goals. */
export function shapesSummaryTable(results: readonly ShapeResult[]): Table {
  const scs: [Scenario, string][] = [
    ['full', 'full'],
    ['incr-nochange', 'no-change'],
    ['incr-change', 'change'],
    ['restore', 'restore'],
  ];
  const head = [
    'shape',
    'files / MB / DBs / dirs',
    ...scs.map(([, t]) => `${t} fole/restic+hook`),
    'worst peak RSS fole/restic',
    ...scs.map(([, t]) => `${t} fole/restic-plain`),
    'dedup growth',
    'goals met',
    'max other procs CPU s',
  ];
  const rows = results.map((r) => {
    const get = getter(r.sums);
    const wall = (sc: Scenario, a: ToolName): string =>
      ratio(get(sc, 'fole')?.wallS ?? null, get(sc, a)?.wallS ?? null);
    const rss = RSS_SCENARIOS.flatMap((sc) => {
      const f = get(sc, 'fole')?.maxRssKiB;
      const a = get(sc, 'restic')?.maxRssKiB;
      return f == null || a == null || a === 0 ? [] : [f / a];
    });
    const d = r.dedup?.find((x) => x.tool === 'fole');
    const judged = r.goals.filter((g) => g.met !== null);
    const foreign = r.sums.flatMap((s) => (s.foreignCpuS === null ? [] : [s.foreignCpuS]));
    return [
      r.shape,
      `${r.files.toLocaleString('en-US')} / ${(r.bytes / 1e6).toFixed(0)} / ${r.databases} / ` +
        r.dirs.toLocaleString('en-US'),
      ...scs.map(([sc]) => wall(sc, 'restic')),
      rss.length === 0 ? '–' : Math.max(...rss).toFixed(2),
      ...scs.map(([sc]) => wall(sc, 'restic-plain')),
      d?.repoGrowthBytes == null ? '–' : `${((100 * d.repoGrowthBytes) / d.dbBytes).toFixed(2)}%`,
      `${judged.filter((g) => g.met).length} of ${judged.length}`,
      foreign.length === 0 ? '–' : Math.max(...foreign).toFixed(1),
    ];
  });
  return { head, rows, right: numericFrom(head, 2) };
}
