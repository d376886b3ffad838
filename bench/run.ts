/**
 * `npm run bench`: fole-backup side by side with restic and Borg on a seeded
 * FOLE-like STORAGE_ROOT, and the machine's own limits for the same bytes.
 * Method and figures: docs/BENCHMARKS.md.
 *
 *   build dist/ (the CLI is measured as users run it: node dist/cli/main.js)
 *   dataset: generate the preset once, cached in <out>/cache/
 *   limits: raw read (cat), Node read loop, SHA-256, AES-256-GCM, zstd
 *   for each run:
 *     copy the cached tree into a fresh work dir; hold every database open
 *       (the "running FOLE server", bench/lib/live-databases.ts)
 *     a fresh repository per tool
 *     1 full backup          — every tool, one after the other
 *     2 incremental, no change
 *     mutate: 1% of files and 1% of the pages of the largest DB (seeded)
 *     3 incremental after the change
 *     4 restore of the latest backup into an empty directory
 *     5 verify, reading every byte
 *     before every step of every tool: the same page-cache state
 *       (dropped if permitted, else sync + every input read once)
 *   dedup (once): a tree of core.db + the largest DB; full, 1% pages, incremental
 *   medians over runs → one table on stdout, JSON + Markdown in <out>/
 *   --profile: a full backup, an unchanged incremental, a restore and a verify under node --cpu-prof
 *   --baseline REF: REF built in a worktree (bench/lib/baseline.ts) is one more tool, `fole@REF`,
 *     interleaved with the others in every step, and compared with this build in a table of its own
 *   --shape: the same, once per shape (bench/lib/shapes.ts) instead of a preset, without machine limits,
 *     with issue 18's goals per shape and, for several shapes, one summary table
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutateStorageRoot, type MutationResult } from '../src/demo/generate-storage-root.js';
import {
  copyTree,
  datasetLabel,
  ensureDataset,
  listTree,
  type Dataset,
  type DatasetChoice,
  type TreeListing,
} from './lib/dataset.js';
import { buildBaseline, type BaselineBuild } from './lib/baseline.js';
import { profileMarkdown, summarizeProfileDir, type ProfileSummary } from './lib/cpu-profile.js';
import { measureLimits, type Limit } from './lib/limits.js';
import { LiveDatabases } from './lib/live-databases.js';
import { machineBusyS, waitQuiet } from './lib/machine-load.js';
import { duBytes, ensureGnuTime, run } from './lib/measure.js';
import {
  OFFSITE_SCENARIOS,
  OptionsError,
  parseOptions,
  SCENARIO_TITLES,
  USAGE,
  type BenchOptions,
  type OffsiteTargetName,
  type Scenario,
} from './lib/options.js';
import { holdHostMemory, type HostMemory } from './lib/host-memory.js';
import { detectCacheMode, prepareCache, type CacheMode } from './lib/page-cache.js';
import {
  baselineTable,
  dedupTable,
  detailTable,
  goals,
  goalsTable,
  limitsTable,
  mainTable,
  ratioTable,
  renderMarkdown,
  renderText,
  shapeGoals,
  shapesSummaryTable,
  summarize,
  type DedupFigure,
  type Goal,
  type Measurement,
  type ShapeResult,
  type Summary,
} from './lib/report.js';
import { SHAPES } from './lib/shapes.js';
import { ensureAnchors } from './lib/tools/anchor.js';
import { BorgTool, borgVersion } from './lib/tools/borg.js';
import { FoleTool, foleCommands, type FoleBuild } from './lib/tools/fole.js';
import { ResticTool, resticVersion } from './lib/tools/restic.js';
import {
  fileSafe,
  StepRunner,
  type BackupKind,
  type BenchTool,
  type StepOutcome,
  type ToolName,
} from './lib/tools/tool.js';
import { copyTable, offsiteGoals, type CopyFigure } from './lib/offsite/report.js';
import { startTarget, targetMissing, type OffsiteTarget } from './lib/offsite/targets.js';

const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CLI = join(REPO_ROOT, 'dist', 'cli', 'main.js');
/** Seed of the "1% of files, 1% of pages" change: the same change for every tool and run. */
const MUTATION_SEED = 20_251_126;
const MUTATION = { fileFraction: 0.01, dbPageFraction: 0.01 };

const started = Date.now();
function log(msg: string): void {
  process.stderr.write(`[bench +${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
}

interface Env {
  opts: BenchOptions;
  /** The dataset's name in file names and reports (datasetLabel). */
  label: string;
  /** The scenarios run on this dataset (a shape leaves some out by default). */
  scenarios: Scenario[];
  /** Trees done with, removed only at the end (see retire()). */
  graveyard: string;
  dataset: Dataset;
  listing: TreeListing;
  cacheMode: CacheMode;
  /** The build under test. */
  build: FoleBuild;
  /** --baseline: another commit, measured beside it. */
  baseline: BaselineBuild | null;
  workBase: string;
  logDir: string;
  toolNames: ToolName[];
}

function makeTools(env: Env, workDir: string): BenchTool[] {
  const builds = env.baseline === null ? [env.build] : [env.build, env.baseline];
  const tools: BenchTool[] = builds.map((b) => new FoleTool(b, workDir, env.logDir));
  if (env.opts.anchors.includes('restic')) tools.push(new ResticTool(workDir, env.logDir));
  if (env.opts.anchors.includes('restic-plain')) tools.push(new ResticTool(workDir, env.logDir, undefined, true));
  if (env.opts.anchors.includes('borg')) tools.push(new BorgTool(workDir, env.logDir));
  return tools;
}

function setTag(tools: readonly BenchTool[], tag: string): void {
  for (const t of tools) t.runner.tag = tag;
}

function figures(
  run: number,
  scenario: Scenario,
  tool: ToolName,
  o: StepOutcome,
  growth: number | null,
  load = { foreignCpuS: 0, busyBefore: 0 },
): Measurement {
  const parts = o.parts.map((p) => ({
    label: p.label,
    wallS: p.t.wallS,
    userS: p.t.userS,
    sysS: p.t.sysS,
    maxRssKiB: p.t.maxRssKiB,
  }));
  return {
    run,
    scenario,
    tool,
    status: o.status,
    ...(o.error !== undefined ? { error: o.error } : {}),
    wallS: parts.reduce((a, p) => a + p.wallS, 0),
    cpuS: parts.reduce((a, p) => a + p.userS + p.sysS, 0),
    maxRssKiB: parts.reduce((a, p) => Math.max(a, p.maxRssKiB), 0),
    repoGrowthBytes: growth,
    parts,
    ...load,
    info: o.info,
  };
}

/**
 * Run `fn` as a measured step: a quiet moment waited for, the same cache state (dropped, or `inputs` read once),
 * and the CPU time the rest of the machine spent meanwhile.
 */
async function quietly(
  env: Env,
  inputs: readonly string[],
  fn: () => Promise<StepOutcome>,
): Promise<{ o: StepOutcome; foreignCpuS: number; busyBefore: number }> {
  const quiet = await waitQuiet(env.opts.quietWait);
  prepareCache(env.cacheMode, [...inputs]);
  const busy0 = machineBusyS();
  const o = await fn();
  const busyS = machineBusyS() - busy0;
  const own = o.parts.reduce((a, p) => a + p.t.userS + p.t.sysS, 0);
  return { o, foreignCpuS: Math.max(0, busyS - own), busyBefore: quiet.busyShare };
}

/** One measured step of one tool: same cache state first, repository growth around it (where it has a dir). */
async function step(
  env: Env,
  runNo: number,
  scenario: Scenario,
  tool: BenchTool,
  inputs: string[],
  fn: () => Promise<StepOutcome>,
  record: boolean,
): Promise<Measurement> {
  const repo = tool.repo;
  const before = repo === null ? 0 : duBytes(repo);
  const { o, ...load } = await quietly(env, [...inputs, ...tool.stateDirs], fn);
  const growth = repo === null || scenario === 'restore' || scenario === 'verify' ? null : duBytes(repo) - before;
  const m = figures(runNo, scenario, tool.name, o, growth, load);
  const what = `${SCENARIO_TITLES[scenario]} — ${tool.name}`;
  if (o.status === 'ok')
    log(
      `  ${what}: ${m.wallS.toFixed(2)} s, CPU ${m.cpuS.toFixed(2)} s, ${(m.maxRssKiB / 1024).toFixed(0)}` +
        ` MiB peak${growth === null ? '' : `, repo +${(growth / 1048576).toFixed(1)} MiB`}` +
        `; other processes ${m.foreignCpuS.toFixed(1)} CPU s${record ? '' : ' (set-up, not recorded)'}`,
    );
  else log(`  ${what}: ${o.status.toUpperCase()}: ${o.error ?? ''}`);
  return m;
}

/** Rotate the tool order per run, so no tool is always first after the tree copy. */
function order<T>(xs: readonly T[], runNo: number): T[] {
  const k = (runNo - 1) % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/**
 * Put a tree done with aside instead of deleting it: on ext4, files created in the
 * minutes after many were deleted make the inode allocator step over every recently
 * deleted inode (find_inode_bit → recently_deleted: up to 6 min while the inode
 * blocks are dirty). A restore that follows a deletion of 100k files pays 1.5–3 CPU s
 * for it — measured, and unequally for the tools, as it depends on which groups each
 * one's files land in. So nothing is deleted while steps are measured: trees go to
 * the graveyard (a rename, no inode freed), which is emptied at the end, or early,
 * with a warning, when the disk would not hold the next run.
 */
function retire(env: Env, path: string): void {
  if (env.opts.keep || !existsSync(path)) return;
  mkdirSync(env.graveyard, { recursive: true });
  renameSync(path, join(env.graveyard, `${readdirSync(env.graveyard).length}-${path.split('/').pop() ?? 'tree'}`));
}

/** Empty the graveyard early if the disk would not hold `need` more bytes otherwise. */
function makeRoom(env: Env, need: number): void {
  const free = (): number => {
    const s = statfsSync(env.workBase);
    return s.bavail * s.bsize;
  };
  if (free() >= need || !existsSync(env.graveyard)) return;
  log(
    `  low on disk (${(free() / 1e9).toFixed(1)} GB free, ~${(need / 1e9).toFixed(1)} GB needed): removing the ` +
      `previous runs' trees now — restores in the next ~6 minutes may pay ext4's recently-deleted-inode cost`,
  );
  rmSync(env.graveyard, { recursive: true, force: true });
}

/** Bytes of every database in the dataset (what verify's scratch copies may need at once). */
function databaseBytes(env: Env): number {
  return env.listing.databases.reduce((n, d) => n + statSync(d).size, 0);
}

function countFiles(dir: string): number {
  let n = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.isFile()) n++;
    }
  };
  if (existsSync(dir)) walk(dir);
  return n;
}

/** The figures of a step a tool could not take: its backup failed. */
function backupFailed(runNo: number, scenario: Scenario, tool: ToolName): Measurement {
  return figures(
    runNo,
    scenario,
    tool,
    { status: 'unavailable', parts: [], error: 'its backup failed', info: {} },
    null,
  );
}

/** One backup step of each tool in turn; a tool whose backup fails is added to `broken` and skipped after. */
async function backupEach(
  env: Env,
  runNo: number,
  scenario: Scenario,
  kind: BackupKind,
  tools: readonly BenchTool[],
  root: string,
  broken: Set<ToolName>,
  tag: string,
  /** Whether the figures are reported (else the step is set-up for later ones, and its log line says so). */
  record: boolean,
): Promise<Measurement[]> {
  const out: Measurement[] = [];
  setTag(tools, tag);
  for (const t of tools.filter((x) => !broken.has(x.name))) {
    const m = await step(env, runNo, scenario, t, [root], () => t.backup(root, kind), record);
    if (m.status !== 'ok') broken.add(t.name);
    out.push(m);
  }
  return out;
}

/** Each tool restores its latest backup into `dir`/restore-<tool>; the trees are retired, not deleted. */
async function restoreEach(
  env: Env,
  runNo: number,
  tools: readonly BenchTool[],
  dir: string,
  broken: ReadonlySet<ToolName>,
  tag: string,
): Promise<Measurement[]> {
  setTag(tools, tag);
  const out: Measurement[] = [];
  for (const t of tools) {
    const target = join(dir, `restore-${fileSafe(t.name)}`);
    const m = broken.has(t.name)
      ? backupFailed(runNo, 'restore', t.name)
      : await step(env, runNo, 'restore', t, [], () => t.restore(target), true);
    if (m.status === 'ok') {
      m.info.restoredFiles = countFiles(target);
      m.info.restoredBytes = duBytes(target);
    }
    out.push(m);
  }
  // the restored trees and anything kept beside them (fole keeps the previous tree): not deleted, see retire()
  for (const n of readdirSync(dir)) if (n.startsWith('restore-')) retire(env, join(dir, n));
  return out;
}

/**
 * One full backup by this build into a repository of its own, before the first measured step, not recorded. The
 * first step of run 1 was 1.3–2 s slower than the same step later on `huge-db`, whichever tool took it, with no
 * other CPU on the machine: the extra time was the step's own system CPU (docs/BENCHMARKS.md, "Caveats"). As the
 * first tool is always fole-backup, that fell on it in every shape. Most of it was the host's faults on memory it
 * had taken back (lib/host-memory.ts), which the bench now holds off where it may; the warm-up stays for machines
 * where it may not, and for what else a first run pays (the binary's and the tree's first reads).
 */
async function warmUp(env: Env, dir: string, root: string): Promise<void> {
  mkdirSync(join(dir, 'warm-up'), { recursive: true });
  const tool = new FoleTool(env.build, join(dir, 'warm-up'), env.logDir);
  tool.runner.tag = 'warm-up';
  await tool.init();
  await step(env, 0, 'full', tool, [root], () => tool.backup(root, 'full'), false);
  // deleted, not retired: a repository is a few hundred files (no ext4 penalty worth the graveyard's room), and on
  // `large` it is 9 GB the disk needs for the runs
  if (tool.repo !== null) rmSync(tool.repo, { recursive: true, force: true });
}

async function runOnce(env: Env, runNo: number): Promise<{ ms: Measurement[]; mutation: MutationResult | null }> {
  const dir = join(env.workBase, `run-${runNo}`);
  const root = join(dir, 'storage-root');
  // the tree, one repository and one restored tree per tool, with a margin
  makeRoom(env, env.listing.bytes * (1 + 2 * env.toolNames.length) * 1.2 + 2e9);
  mkdirSync(dir, { recursive: true });
  log(`run ${runNo}/${env.opts.runs}: copying the tree into ${root}`);
  copyTree(env.dataset.root, root);
  const live = await LiveDatabases.open(listTree(root).databases);
  const tools = order(makeTools(env, dir), runNo);
  const ms: Measurement[] = [];
  const want = new Set(env.scenarios);
  const broken = new Set<ToolName>();
  let mutation: MutationResult | null = null;
  try {
    setTag(tools, `run${runNo}-init`);
    for (const t of tools) await t.init();
    if (runNo === 1) await warmUp(env, dir, root);

    const backupStep = async (scenario: Scenario, kind: 'full' | 'incremental'): Promise<void> => {
      const tag = `run${runNo}-${scenario}`;
      const got = await backupEach(env, runNo, scenario, kind, tools, root, broken, tag, want.has(scenario));
      if (want.has(scenario)) ms.push(...got);
    };
    // the full backup is every other scenario's starting point: it always runs
    await backupStep('full', 'full');
    if (want.has('incr-nochange')) await backupStep('incr-nochange', 'incremental');
    if (want.has('incr-change')) {
      log(
        `  mutating the tree: ${MUTATION.fileFraction * 100}% of files, ${MUTATION.dbPageFraction * 100}` +
          `% of the pages of the largest DB`,
      );
      mutation = await mutateStorageRoot(root, { seed: MUTATION_SEED, ...MUTATION });
      log(
        `  changed ${mutation.filesChanged} files (${mutation.bytesWritten}` +
          ` bytes), ${mutation.database?.pagesChanged ?? 0} pages of ${mutation.database?.path ?? '-'}`,
      );
      await backupStep('incr-change', 'incremental');
    }
    if (want.has('restore')) ms.push(...(await restoreEach(env, runNo, tools, dir, broken, `run${runNo}-restore`)));
    if (want.has('verify')) {
      // verify --read-data writes databases to scratch copies, up to all of them at once (docs/VERIFY.md):
      // on `large` the retired restores (20 GB) left no room for them. Nothing is restored after this point,
      // so emptying the graveyard here costs no measured step the ext4 penalty.
      makeRoom(env, databaseBytes(env) * 1.2 + 2e9);
      setTag(tools, `run${runNo}-verify`);
      for (const t of tools) {
        ms.push(
          broken.has(t.name)
            ? backupFailed(runNo, 'verify', t.name)
            : await step(env, runNo, 'verify', t, [], () => t.verify(), true),
        );
      }
    }
  } finally {
    await live.close();
    retire(env, dir);
  }
  return { ms, mutation };
}

/** Dedup micro-benchmark: a tree of core.db and the largest DB only; 1% of that DB's pages change. */
async function dedup(env: Env): Promise<{ figures: DedupFigure[]; mutation: MutationResult }> {
  const dir = join(env.workBase, 'dedup');
  const root = join(dir, 'storage-root');
  let largest = '';
  let size = -1;
  for (const d of env.listing.databases) {
    const s = statSync(d).size;
    if (s > size) [largest, size] = [d, s];
  }
  const rels = ['core/core.db', relative(env.dataset.root, largest)];
  // the two databases, a repository per tool and the database's scratch copy in verify, with a margin
  makeRoom(env, size * (2 + env.toolNames.length) * 1.2 + 2e9);
  for (const rel of rels) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    for (const suffix of ['', '-wal']) {
      const src = join(env.dataset.root, rel + suffix);
      if (existsSync(src)) run('cp', ['-a', src, join(root, rel + suffix)]);
    }
  }
  log(`dedup: ${rels.join(' + ')} in ${root}`);
  const live = await LiveDatabases.open(rels.map((r) => join(root, r)));
  const tools = makeTools(env, dir);
  const out: DedupFigure[] = [];
  try {
    setTag(tools, 'dedup-full');
    for (const t of tools) await t.init();
    const ok = new Set<ToolName>();
    for (const t of tools)
      if ((await step(env, 0, 'dedup', t, [root], () => t.backup(root, 'full'), false)).status === 'ok') ok.add(t.name);
    const mutation = await mutateStorageRoot(root, {
      seed: MUTATION_SEED,
      fileFraction: 0,
      dbPageFraction: MUTATION.dbPageFraction,
    });
    const db = mutation.database;
    if (db === null) throw new Error('dedup: the mutation changed no database');
    const dbBytes = statSync(join(root, db.path)).size;
    log(`dedup: ${db.pagesChanged} of ${db.pageCount} pages (${db.pageSize} B) of ${db.path} changed`);
    setTag(tools, 'dedup-incremental');
    for (const t of tools) {
      const base = {
        tool: t.name,
        dbPath: db.path,
        dbBytes,
        pageSize: db.pageSize,
        pagesChanged: db.pagesChanged,
        pageCount: db.pageCount,
      };
      if (!ok.has(t.name)) {
        out.push({
          ...base,
          status: 'unavailable',
          error: 'its full backup failed',
          repoGrowthBytes: null,
          reportedAddedBytes: null,
          wallS: null,
        });
        continue;
      }
      const m = await step(env, 0, 'dedup', t, [root], () => t.backup(root, 'incremental'), true);
      const reported = m.info.addedBytes ?? m.info.dataAdded ?? m.info.deduplicatedSize ?? null;
      out.push({
        ...base,
        status: m.status,
        ...(m.error !== undefined ? { error: m.error } : {}),
        repoGrowthBytes: m.status === 'ok' ? m.repoGrowthBytes : null,
        reportedAddedBytes: typeof reported === 'number' ? reported : null,
        wallS: m.status === 'ok' ? m.wallS : null,
      });
    }
    return { figures: out, mutation };
  } finally {
    await live.close();
    retire(env, dir);
  }
}

/** fole-backup under node --cpu-prof: a full backup, an incremental of the unchanged tree, a restore, a verify. */
async function profile(
  env: Env,
  stamp: string,
): Promise<{ dir: string; steps: { step: string; wallS: number | null; summaries: ProfileSummary[] }[] }> {
  const dir = join(env.workBase, 'profile');
  const root = join(dir, 'storage-root');
  makeRoom(env, env.listing.bytes * 3 * 1.2 + 2e9);
  mkdirSync(dir, { recursive: true });
  copyTree(env.dataset.root, root);
  const live = await LiveDatabases.open(listTree(root).databases);
  const outDir = join(env.opts.out, `profile-${env.label}-${stamp}`);
  const steps: { step: string; wallS: number | null; summaries: ProfileSummary[] }[] = [];
  try {
    const prof = (name: string): string => join(outDir, name);
    const tool = (name: string): FoleTool =>
      new FoleTool(env.build, dir, env.logDir, ['--cpu-prof', '--cpu-prof-dir', prof(name)]);
    const full = tool('full-backup');
    full.runner.tag = 'profile';
    await full.init();
    const record = async (name: string, fn: () => Promise<StepOutcome>, inputs: string[]): Promise<void> => {
      prepareCache(env.cacheMode, [...inputs, ...full.stateDirs]);
      const o = await fn();
      const wallS = o.status === 'ok' ? o.parts.reduce((a, p) => a + p.t.wallS, 0) : null;
      log(
        `profile: ${name}: ${o.status}` +
          `${wallS === null ? ` ${o.error ?? ''}` : `, ${wallS.toFixed(2)} s under the profiler`}`,
      );
      if (existsSync(prof(name)))
        steps.push({ step: name, wallS, summaries: summarizeProfileDir(prof(name), REPO_ROOT) });
    };
    await record('full-backup', () => full.backup(root, 'full'), [root]);
    await record('incremental-no-change', () => tool('incremental-no-change').backup(root, 'incremental'), [root]);
    await record('restore', () => tool('restore').restore(join(dir, 'restore-target')), []);
    await record('verify', () => tool('verify').verify(), []);
  } finally {
    await live.close();
    retire(env, dir);
  }
  return { dir: outDir, steps };
}

/** What one offsite invocation measured: per target the tools' steps, and every copy and raw upload. */
interface OffsiteResults {
  ms: Map<OffsiteTargetName, Measurement[]>;
  copies: CopyFigure[];
}

/**
 * One offsite run: the tree backed up once into a local repository (set-up: the source of `copy`), then per
 * target, fole-backup and restic back up to it (full, then unchanged incremental) and restore from it, each with
 * a repository of its own on the server; then `fole-backup copy` of the local repository into a twin on the
 * server, and the raw upload of the local repository's files to the same server, in alternating order.
 */
async function offsiteRun(env: Env, runNo: number, targets: readonly OffsiteTarget[], res: OffsiteResults) {
  const dir = join(env.workBase, `offsite-run-${runNo}`);
  const root = join(dir, 'storage-root');
  // the tree, the local repository, two restored trees per target (the servers keep their repositories here too)
  makeRoom(env, env.listing.bytes * (2 + 6 * targets.length) * 1.2 + 2e9);
  mkdirSync(dir, { recursive: true });
  log(`offsite run ${runNo}/${env.opts.runs}: copying the tree into ${root}`);
  copyTree(env.dataset.root, root);
  const live = await LiveDatabases.open(listTree(root).databases);
  const want = new Set(env.opts.scenarios);
  try {
    const source = new FoleTool(env.build, dir, env.logDir);
    source.runner.tag = `run${runNo}-local`;
    await source.init();
    const local = await step(env, runNo, 'full', source, [root], () => source.backup(root, 'full'), false);
    const sourceRepo = source.repo;
    if (local.status !== 'ok' || sourceRepo === null) throw new Error(`the local backup failed: ${local.error ?? ''}`);
    for (const target of targets) {
      const tdir = join(dir, target.name);
      mkdirSync(tdir, { recursive: true });
      const place = (what: string): string => `run${runNo}-${what}`;
      const tools = order(
        [
          new FoleTool(env.build, tdir, env.logDir, [], target.fole(place('fole'))),
          new ResticTool(tdir, env.logDir, target.restic(place('restic'))),
        ],
        runNo,
      );
      const tag = (what: string): string => `run${runNo}-${target.name}-${what}`;
      setTag(tools, tag('init'));
      for (const t of tools) await t.init();
      const ms = res.ms.get(target.name) ?? [];
      res.ms.set(target.name, ms);
      const broken = new Set<ToolName>();
      log(`  to ${target.title}`);
      ms.push(...(await backupEach(env, runNo, 'full', 'full', tools, root, broken, tag('full'), true)));
      if (want.has('incr-nochange')) {
        const t = tag('incr-nochange');
        ms.push(...(await backupEach(env, runNo, 'incr-nochange', 'incremental', tools, root, broken, t, true)));
      }
      if (want.has('restore')) ms.push(...(await restoreEach(env, runNo, tools, tdir, broken, tag('restore'))));

      const copier = new FoleTool(env.build, tdir, env.logDir, [], target.fole(place('copy')));
      copier.runner.tag = tag('copy');
      await copier.initFrom(sourceRepo);
      const raw = new StepRunner(env.logDir, `raw-${target.name}`, { ...process.env, ...target.rawEnv });
      raw.tag = tag('copy');
      const jobs = order(
        [
          { who: 'fole' as const, fn: () => copier.copyFrom(sourceRepo) },
          { who: 'raw' as const, fn: () => target.rawUpload(raw, sourceRepo, place('raw')) },
        ],
        runNo,
      );
      for (const { who, fn } of jobs) {
        const { o, foreignCpuS } = await quietly(env, [sourceRepo], fn);
        const m = {
          wallS: o.parts.reduce((a, p) => a + p.t.wallS, 0),
          cpuS: o.parts.reduce((a, p) => a + p.t.userS + p.t.sysS, 0),
          maxRssKiB: o.parts.reduce((a, p) => Math.max(a, p.t.maxRssKiB), 0),
        };
        const bytes = o.info.bytesWritten ?? o.info.bytes;
        const transferS = o.info.transferS;
        res.copies.push({
          run: runNo,
          target: target.name,
          who,
          status: o.status,
          ...(o.error !== undefined ? { error: o.error } : {}),
          wallS: m.wallS,
          cpuS: m.cpuS,
          maxRssKiB: m.maxRssKiB,
          bytes: typeof bytes === 'number' ? bytes : null,
          transferS: typeof transferS === 'number' ? transferS : null,
          foreignCpuS,
        });
        const what = who === 'fole' ? 'fole-backup copy' : target.rawTitle;
        if (o.status !== 'ok') log(`  copy — ${what}: ${o.status.toUpperCase()}: ${o.error ?? ''}`);
        else
          log(
            `  copy — ${what}: ${m.wallS.toFixed(2)} s (transfer ` +
              `${typeof transferS === 'number' ? transferS.toFixed(2) : '?'}` +
              ` s, ${typeof bytes === 'number' ? (bytes / 1e6).toFixed(1) : '?'} MB), CPU ${m.cpuS.toFixed(2)} s, ` +
              `${(m.maxRssKiB / 1024).toFixed(0)} MiB peak; other processes ${foreignCpuS.toFixed(1)} CPU s`,
          );
      }
    }
  } finally {
    await live.close();
    retire(env, dir);
  }
}

/** `--offsite`: start the servers, run the offsite runs, report. */
async function offsiteBenchmark(
  env: Env,
  stamp: string,
  header: readonly string[],
  loadAtStart: number[],
): Promise<void> {
  const targets: OffsiteTarget[] = [];
  const res: OffsiteResults = { ms: new Map(), copies: [] };
  try {
    for (const name of env.opts.offsite) {
      const missing = targetMissing(name);
      if (missing !== undefined) throw new Error(`--offsite ${name}: ${missing} is not installed (see .ci/run)`);
      log(`starting the ${name} server`);
      targets.push(await startTarget(name));
    }
    for (let r = 1; r <= env.opts.runs; r++) await offsiteRun(env, r, targets, res);
  } finally {
    for (const t of targets) await t.stop();
  }
  const scenarios = OFFSITE_SCENARIOS.filter((sc) => sc === 'full' || env.opts.scenarios.includes(sc));
  const tools: ToolName[] = ['fole', 'restic'];
  const fullFole = [...res.ms.values()].flat().find((m) => m.tool === 'fole' && m.status === 'ok');
  const treeFiles = typeof fullFole?.info.files === 'number' ? fullFole.info.files : env.listing.files.length;
  const treeBytes = typeof fullFole?.info.bytes === 'number' ? fullFole.info.bytes : env.listing.bytes;
  const text: string[] = [...header];
  const md: string[] = [...header.map((h) => `${h}  `), '', `Command: \`${commandLine()}\``, ''];
  const sums: Record<string, Summary[]> = {};
  const goalList: Goal[] = [];
  for (const t of targets) {
    const ms = res.ms.get(t.name) ?? [];
    const tsums = summarize(ms, scenarios, tools, treeFiles, treeBytes);
    sums[t.name] = tsums;
    goalList.push(...offsiteGoals(t.name, res.copies, ms));
    text.push('', `to ${t.title}`, renderText(mainTable(tsums, tools, scenarios)));
    md.push(`#### To ${t.title}`, '', renderMarkdown(mainTable(tsums, tools, scenarios)), '');
    md.push(renderMarkdown(detailTable(tsums)), '');
    for (const p of tsums.filter((x) => x.status === 'failed' || x.status === 'unavailable')) {
      const line = `${p.tool} / ${SCENARIO_TITLES[p.scenario]}: ${p.status}${p.error ? ` — ${p.error}` : ''}`;
      text.push(`  ${line}`);
      md.push(`- ${line}`);
    }
  }
  const copies = copyTable(res.copies, targets);
  const goalTable = goalsTable(goalList, 'goal (issue 20)');
  text.push('', 'copy of the full backup from a local repository, and the same bytes uploaded raw', renderText(copies));
  text.push('', renderText(goalTable));
  for (const c of res.copies.filter((x) => x.status !== 'ok')) text.push(`  ${c.target} ${c.who}: ${c.error ?? ''}`);
  md.push('#### Copy of the full backup, and the same bytes uploaded raw', '', renderMarkdown(copies), '');
  md.push('#### Goals', '', renderMarkdown(goalTable), '');
  process.stdout.write(`${text.join('\n')}\n`);
  const base = join(env.opts.out, `results-offsite-${env.opts.preset}-${stamp}`);
  const json = {
    ...runRecord(env.opts),
    machine: { host: hostname(), kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null },
    versions: { fole: env.build.version, restic: resticVersion() },
    pageCache: env.cacheMode,
    hostMemory,
    loadAverageAtStart: loadAtStart,
    targets: targets.map((t) => ({ name: t.name, title: t.title, raw: t.rawTitle })),
    backedUp: { files: treeFiles, bytes: treeBytes },
    summaries: sums,
    copies: res.copies,
    goals: goalList,
    measurements: Object.fromEntries(res.ms),
    logs: env.logDir,
  };
  writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(`${base}.md`, `${md.join('\n')}\n`);
  log(`wrote ${base}.json and ${base}.md; command logs in ${env.logDir}`);
}

function commandLine(): string {
  return `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
}

/** What every results JSON starts with: when, how long, the command and its options. */
function runRecord(opts: BenchOptions) {
  return {
    schema: 1,
    startedAt: new Date(started).toISOString(),
    durationS: (Date.now() - started) / 1000,
    command: commandLine(),
    options: opts,
  };
}

/** Remove the work directory at the end, unless --keep. */
function removeWork(opts: BenchOptions, workBase: string): void {
  if (!opts.keep) rmSync(workBase, { recursive: true, force: true });
  else log(`kept ${workBase}`);
}

function gitRevision(): string {
  const rev = run('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { allowFail: true }).stdout.trim();
  const dirty =
    run('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--', 'src'], { allowFail: true }).stdout.trim() !== '';
  return `${rev || 'unknown'}${dirty ? ' + uncommitted changes in src/' : ''}`;
}

function sameFilesystem(paths: string[]): { same: boolean; devices: Record<string, number> } {
  const devices: Record<string, number> = {};
  for (const p of paths) devices[p] = statSync(p).dev;
  return { same: new Set(Object.values(devices)).size === 1, devices };
}

/** Whether the host's free page reporting was held off for this bench (lib/host-memory.ts); set by main. */
let hostMemory: HostMemory['state'] = 'absent';

async function main(): Promise<void> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseOptions(process.argv.slice(2), REPO_ROOT);
  } catch (err) {
    if (err instanceof OptionsError) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  ensureGnuTime(log);
  if (opts.anchors.length > 0) ensureAnchors(opts.anchors, log);
  if (opts.build) {
    log('npm run build');
    const b = run('npm', ['run', 'build'], { cwd: REPO_ROOT, allowFail: true });
    if (b.status !== 0) {
      process.stderr.write(
        `${b.stdout}\n${b.stderr}\nnpm run build failed: fix it, or pass --no-build to measure dist/ as it is\n`,
      );
      process.exit(1);
    }
  }
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
  const build: FoleBuild = {
    name: 'fole',
    cli: CLI,
    version: `fole-backup ${run(process.execPath, [CLI, '--version']).stdout.trim()} (${gitRevision()})`,
    commands: foleCommands(CLI),
  };
  let baseline: BaselineBuild | null = null;
  if (opts.baseline !== undefined) {
    try {
      baseline = buildBaseline(REPO_ROOT, opts.baseline, opts.out, log);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    }
  }
  const host = holdHostMemory();
  hostMemory = host.state;
  log(`host memory: ${host.state} — ${host.why}`);
  try {
    if (opts.shapes.length === 0) await benchmark(opts, build, baseline, { kind: 'preset', name: opts.preset });
    else {
      const results: ShapeResult[] = [];
      for (const name of opts.shapes) {
        const r = await benchmark(opts, build, baseline, { kind: 'shape', name });
        if (r !== null) results.push(r);
      }
      if (results.length > 1) shapesSummary(opts, results);
    }
  } finally {
    host.release();
    if (baseline !== null && opts.keep)
      log(`kept the baseline's worktree ${baseline.dir}; \`git worktree remove --force\` it when done`);
    else baseline?.remove();
  }
}

/**
 * Several shapes in one invocation: one row per shape with its ratios (stdout, and a Markdown and JSON file of
 * their own; each shape's full figures are in its own results files).
 */
function shapesSummary(opts: BenchOptions, results: readonly ShapeResult[]): void {
  const t = shapesSummaryTable(results);
  const title =
    `shapes, ${opts.runs} run(s), medians: fole-backup's wall time over restic with its sqlite3 hook ` +
    `(restic+hook) and over restic on the raw tree (restic-plain); below 1, fole-backup is faster`;
  process.stdout.write(`\n${title}\n${renderText(t)}\n`);
  const stamp = new Date(started).toISOString().replace(/[:.]/g, '-');
  const base = join(opts.out, `results-shapes-${stamp}`);
  writeFileSync(`${base}.md`, `${title}\n\nCommand: \`${commandLine()}\`\n\n${renderMarkdown(t)}\n`);
  writeFileSync(`${base}.json`, `${JSON.stringify({ ...runRecord(opts), shapes: results }, null, 2)}\n`);
  log(`wrote ${base}.md and ${base}.json`);
}

/** The scenarios run on a dataset: a shape, unless --scenarios says, has no verify and a dedup only if it says. */
function scenariosFor(opts: BenchOptions, choice: DatasetChoice): Scenario[] {
  if (choice.kind === 'preset' || opts.scenariosGiven) return opts.scenarios;
  const dedup = SHAPES[choice.name].dedup;
  return opts.scenarios.filter((s) => s !== 'verify' && (s !== 'dedup' || dedup));
}

/**
 * Everything after the builds for one dataset: the dataset, limits (not for a shape), the runs, the report.
 * Returns a shape's figures for the summary of several (null for a preset).
 */
async function benchmark(
  opts: BenchOptions,
  build: FoleBuild,
  baseline: BaselineBuild | null,
  choice: DatasetChoice,
): Promise<ShapeResult | null> {
  const anchored = opts.anchors.length > 0;
  const isShape = choice.kind === 'shape';
  const label = datasetLabel(choice);
  const scenarios = scenariosFor(opts, choice);
  const dataset = await ensureDataset(REPO_ROOT, opts.out, choice, log, { files: opts.files, mb: opts.mb });
  const listing = listTree(dataset.root);
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d+Z$/, 'Z');
  const workBase = join(opts.out, `work-${stamp}`);
  const logDir = join(opts.out, `logs-${label}-${stamp}`);
  mkdirSync(workBase, { recursive: true });
  mkdirSync(logDir, { recursive: true });
  const fs = sameFilesystem([workBase, dataset.root, tmpdir()]);
  if (!fs.same)
    log(
      `WARNING: work dir, dataset and ${tmpdir()} (fole staging) are on different filesystems: ` +
        `${JSON.stringify(fs.devices)}`,
    );
  const loadAtStart = loadavg();
  if ((loadAtStart[0] ?? 0) > 1)
    log(
      `WARNING: load average ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}: other work is running; figures ` +
        `will be noisier (see "other procs CPU s")`,
    );
  const cache = detectCacheMode();
  log(`page cache: ${cache.mode} — ${cache.why}`);
  const toolNames: ToolName[] = ['fole', ...(baseline === null ? [] : [baseline.name]), ...opts.anchors];
  const env: Env = {
    opts,
    label,
    scenarios,
    dataset,
    listing,
    cacheMode: cache.mode,
    build,
    baseline,
    workBase,
    graveyard: join(workBase, 'removed-at-end'),
    logDir,
    toolNames,
  };
  const anchorVersions = anchored
    ? Object.fromEntries(opts.anchors.map((a) => [a, a === 'borg' ? borgVersion() : resticVersion()]))
    : null;
  for (const b of baseline === null ? [build] : [build, baseline]) {
    const missing = ['restore', 'verify'].filter((c) => !b.commands.has(c));
    if (missing.length > 0)
      log(`note: ${b.name} has no ${missing.join(' / ')} command; those scenarios are reported as n/a for it`);
  }
  log(
    `dataset ${label}: ${listing.files.length} files backed up (${(listing.bytes / 1e6).toFixed(0)}` +
      ` MB), ${listing.databases.length} databases, ${listing.dirs} directories`,
  );

  if (opts.offsite.length > 0) {
    const header = [
      `fole-backup offsite benchmark — preset ${opts.preset} (seed ${dataset.spec.seed}): ` +
        `${listing.files.length.toLocaleString('en-US')} files, ${(listing.bytes / 1e6).toFixed(0)} MB, ` +
        `${listing.databases.length} databases; targets ${opts.offsite.join(', ')}`,
      [
        `${opts.runs} run(s), medians; page cache ${cache.mode}; host memory ${hostMemory}`,
        `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
        `load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}`,
        build.version,
      ].join('; '),
      `${resticVersion()} — its backup time includes the sqlite3 .backup of every DB`,
    ];
    try {
      await offsiteBenchmark(env, stamp, header, loadAtStart);
    } finally {
      removeWork(opts, workBase);
    }
    return null;
  }
  const largestDb = [...listing.databases].sort((a, b) => statSync(b).size - statSync(a).size)[0];
  // a shape's figures are ratios to the anchors: its minutes go to the runs, not to the machine's limits
  let limits: Limit[] = [];
  if (!isShape) {
    log('machine limits');
    await waitQuiet(opts.quietWait);
    limits = await measureLimits(listing.files, listing.bytes, largestDb, workBase, cache.mode);
  }

  const measurements: Measurement[] = [];
  let mutation: MutationResult | null = null;
  const mainScenarios = scenarios.filter((s) => s !== 'dedup');
  try {
    if (mainScenarios.length > 0) {
      for (let r = 1; r <= opts.runs; r++) {
        const res = await runOnce(env, r);
        measurements.push(...res.ms);
        mutation ??= res.mutation;
      }
    }
    const dd = scenarios.includes('dedup') ? await dedup(env) : null;
    const prof = opts.profile ? await profile(env, stamp) : null;

    // fole's own count of what it backed up, else the listing
    const fullFole = measurements.find((m) => m.scenario === 'full' && m.tool === 'fole' && m.status === 'ok');
    const treeFiles = typeof fullFole?.info.files === 'number' ? fullFole.info.files : listing.files.length;
    const treeBytes = typeof fullFole?.info.bytes === 'number' ? fullFole.info.bytes : listing.bytes;
    const sums: Summary[] = summarize(measurements, mainScenarios, toolNames, treeFiles, treeBytes);
    const gs = isShape ? shapeGoals(sums, dd?.figures ?? null) : goals(sums, limits, treeBytes);

    const header = [
      `fole-backup benchmark — ${isShape ? 'shape' : 'preset'} ${choice.name} (seed ${dataset.spec.seed}` +
        `): ${treeFiles.toLocaleString('en-US')} files, ${(treeBytes / 1e6).toFixed(0)}` +
        ` MB backed up, ${listing.databases.length} databases, ${listing.dirs.toLocaleString('en-US')} directories`,
      ...(isShape ? [`shape: ${SHAPES[choice.name].about}`] : []),
      [
        `${opts.runs} run(s), medians; page cache ${cache.mode}; host memory ${hostMemory}`,
        `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM`,
        build.version,
      ].join('; '),
      ...(baseline === null ? [] : [`baseline ${baseline.name}: ${baseline.version}`]),
      ...(anchorVersions
        ? [
            `anchors: ${opts.anchors.join(', ')} (${[...new Set(Object.values(anchorVersions))].join('; ')}) — ` +
              `the time of ${opts.anchors.filter((a) => a !== 'restic-plain').join(' and ') || 'none'} includes ` +
              `the sqlite3 .backup of every DB` +
              `${opts.anchors.includes('restic-plain') ? '; restic-plain backs up the raw tree, -wal included' : ''}`,
          ]
        : []),
    ];
    const t = mainTable(sums, toolNames, mainScenarios);
    const ratios = isShape && anchored ? ratioTable(sums, opts.anchors, mainScenarios) : null;
    const ratiosTitle = 'fole-backup over each anchor (medians; below 1, fole-backup is faster or smaller)';
    const text: string[] = [...header, '', renderText(t)];
    if (ratios !== null) text.push('', ratiosTitle, renderText(ratios));
    const problems = sums.filter((s) => s.status === 'failed' || s.status === 'unavailable');
    for (const p of problems)
      text.push(`  ${p.tool} / ${SCENARIO_TITLES[p.scenario]}: ${p.status}${p.error ? ` — ${p.error}` : ''}`);
    const vsBaseline = baseline === null ? null : baselineTable(sums, measurements, baseline.name, mainScenarios);
    const vsBaselineTitle =
      baseline === null ? '' : `this build / ${baseline.name} (${baseline.commit.slice(0, 7)}): below 1 is better`;
    if (vsBaseline !== null && vsBaseline.rows.length > 0) text.push('', vsBaselineTitle, renderText(vsBaseline));
    const phases = measurements.filter(
      (m) => m.tool === 'fole' && m.status === 'ok' && typeof m.info.phases === 'string' && m.info.phases !== '',
    );
    const phaseRows = mainScenarios.flatMap((sc) => {
      const m = phases.find((x) => x.scenario === sc);
      return m === undefined ? [] : [[SCENARIO_TITLES[sc], m.wallS.toFixed(1), String(m.info.phases)]];
    });
    const phaseTable = {
      head: ['fole-backup phases, run 1 (s, from its stderr)', 'wall s', 'start-up; phase seconds …'],
      rows: phaseRows,
      right: new Set([1]),
    };
    if (phaseRows.length > 0) text.push('', renderText(phaseTable));
    if (limits.length > 0) text.push('', renderText(limitsTable(limits)));
    if (dd)
      text.push(
        '',
        `dedup: 1% of the pages of ${dd.mutation.database?.path ?? '?'} changed, then an incremental`,
        renderText(dedupTable(dd.figures)),
      );
    const goalTable = goalsTable(gs, isShape ? `goal (issue 18, shape ${choice.name})` : undefined);
    const showGoals = anchored || choice.name === 'default';
    if (showGoals) text.push('', renderText(goalTable));
    if (prof) {
      for (const s of prof.steps) {
        // the threads that did work (the first profile of a process is its main thread)
        for (const [i, th] of s.summaries.entries()) {
          if (th.busyMs < 500) continue;
          const when = th.thread === 'main' ? '' : `, from ${(th.startOffsetMs / 1000).toFixed(1)} s`;
          text.push(
            '',
            `CPU profile, ${s.step}, ${th.thread} thread (${i + 1}/${s.summaries.length}` +
              `): ${th.durationMs.toFixed(0)} ms recorded${when}, ${th.busyMs.toFixed(0)} ms not idle; top self time`,
          );
          for (const f of th.functions.slice(0, 10))
            text.push(
              `  ${f.selfMs.toFixed(0).padStart(7)}` +
                ` ms  ${((100 * f.selfMs) / th.durationMs).toFixed(1).padStart(5)}%  ${f.fn}  ${f.where}`,
            );
        }
      }
    }
    process.stdout.write(`${text.join('\n')}\n`);

    // files
    const base = join(opts.out, `results-${label}-${stamp}`);
    const json = {
      ...runRecord(opts),
      machine: {
        host: hostname(),
        kernel: release(),
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? null,
        memBytes: totalmem(),
        node: process.version,
        sameFilesystem: fs,
      },
      versions: {
        fole: build.version,
        ...(baseline === null
          ? {}
          : { baseline: { ref: baseline.ref, commit: baseline.commit, version: baseline.version } }),
        ...(anchorVersions ?? {}),
        sqlite3: anchored ? run('sqlite3', ['--version']).stdout.trim() : null,
      },
      pageCache: cache,
      hostMemory,
      loadAverageAtStart: loadAtStart,
      dataset: {
        preset: isShape ? null : choice.name,
        shape: isShape ? choice.name : null,
        scenarios,
        spec: dataset.spec,
        cacheKey: dataset.key,
        fromCache: dataset.fromCache,
        generateMs: dataset.generateMs,
        generated: {
          files: dataset.generated.files,
          bytes: dataset.generated.bytes,
          databases: dataset.generated.databases.length,
        },
        backedUp: { files: treeFiles, bytes: treeBytes, databases: listing.databases.length, dirs: listing.dirs },
      },
      mutation: mutation && {
        seed: MUTATION_SEED,
        ...MUTATION,
        ...mutation,
        changedFiles: mutation.changedFiles.length,
      },
      limits,
      summaries: sums,
      goals: gs,
      dedup: dd && { figures: dd.figures, mutation: { ...dd.mutation, changedFiles: undefined } },
      profile: prof && {
        dir: prof.dir,
        steps: prof.steps.map((s) => ({
          step: s.step,
          wallS: s.wallS,
          threads: s.summaries.map((x) => ({
            ...x,
            functions: x.functions.slice(0, 60),
            modules: x.modules.slice(0, 30),
          })),
        })),
      },
      measurements,
      logs: logDir,
    };
    writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
    const md: string[] = [
      `## Results: ${isShape ? 'shape' : 'preset'} \`${choice.name}\` (${new Date(started).toISOString()})`,
      '',
      ...header.map((h) => `${h}  `),
      '',
      `Command: \`${json.command}\``,
      '',
      renderMarkdown(t),
      '',
      ...(ratios === null ? [] : [`#### ${ratiosTitle}`, '', renderMarkdown(ratios), '']),
      ...problems.map(
        (p) => `- ${p.tool} / ${SCENARIO_TITLES[p.scenario]}: ${p.status}${p.error ? ` — ${p.error}` : ''}`,
      ),
      '',
      ...(vsBaseline !== null && vsBaseline.rows.length > 0
        ? [`#### ${vsBaselineTitle}`, '', renderMarkdown(vsBaseline), '']
        : []),
      '#### Every tool',
      '',
      renderMarkdown(detailTable(sums)),
      '',
      ...(phaseRows.length > 0
        ? [
            '#### Where fole-backup spends its time (phases it prints, timed by their arrival on stderr)',
            '',
            renderMarkdown(phaseTable),
            '',
          ]
        : []),
      ...(limits.length === 0
        ? []
        : ['#### Machine limits for the same bytes', '', renderMarkdown(limitsTable(limits)), '']),
    ];
    if (mutation) {
      md.push(
        `The change before scenario 3: ${mutation.filesChanged} of ${mutation.filesConsidered} files (` +
          `${mutation.rewritten} rewritten, ${mutation.appended} appended to, ${mutation.patched}` +
          ` patched; ${mutation.bytesWritten.toLocaleString('en-US')} bytes written), and ` +
          `${mutation.database?.rowsUpdated ?? 0} rows of \`${mutation.database?.path ?? '-'}` +
          `\` rewritten in place: ${mutation.database?.pagesChanged ?? 0} of ` +
          `${mutation.database?.pageCount ?? 0} pages changed.`,
        '',
      );
    }
    if (dd)
      md.push(
        '#### Dedup: 1% of the pages of the largest database alone',
        '',
        renderMarkdown(dedupTable(dd.figures)),
        '',
      );
    if (showGoals) md.push('#### Goals', '', renderMarkdown(goalTable), '');
    if (prof) {
      for (const s of prof.steps)
        md.push(
          profileMarkdown(
            `CPU profile: ${s.step}${s.wallS === null ? '' : ` (${s.wallS.toFixed(2)} s under the profiler)`}`,
            s.summaries,
            20,
          ),
          '',
        );
    }
    writeFileSync(`${base}.md`, `${md.join('\n')}\n`);
    log(`wrote ${base}.json and ${base}.md; command logs in ${logDir}`);
    return isShape
      ? {
          shape: choice.name,
          files: treeFiles,
          bytes: treeBytes,
          databases: listing.databases.length,
          dirs: listing.dirs,
          sums,
          goals: gs,
          dedup: dd?.figures ?? null,
        }
      : null;
  } finally {
    removeWork(opts, workBase);
  }
}

await main();
