/**
 * Summaries of V8 CPU profiles (`node --cpu-prof`, one .cpuprofile per
 * thread): self time and total (inclusive) time per function, and self time
 * per module, so "where does a full backup spend its CPU" is a table.
 *
 * Self time of a sample is its time delta (V8 records, for sample i, the
 * time since sample i-1; the next delta is the better estimate of how long
 * sample i lasted, so that one is used). Total time adds a node's self time
 * to every distinct function on its stack (recursion counted once).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface ProfileRow {
  fn: string;
  where: string;
  selfMs: number;
  totalMs: number;
}

export interface ProfileSummary {
  file: string;
  /** "main" or "worker N" (from Node's file name CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile). */
  thread: string;
  /** When this thread's profile started, ms after the first profile of the same process started. */
  startOffsetMs: number;
  /** Absolute start (µs, V8 clock) to compute offsets between threads. */
  startTime: number;
  pid: string;
  durationMs: number;
  /** Time not idle: everything but "(idle)". */
  busyMs: number;
  functions: ProfileRow[];
  modules: { module: string; selfMs: number }[];
}

function shortUrl(url: string, repoRoot: string): string {
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(`${repoRoot}/`)) u = u.slice(repoRoot.length + 1);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm);
  return u;
}

function moduleOf(frame: CallFrame, repoRoot: string): string {
  if (frame.url === '') return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  const u = shortUrl(frame.url, repoRoot);
  if (u.startsWith('node:')) return u;
  const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (m?.[1] !== undefined) return `npm:${m[1]}`;
  return u;
}

function summarizeCpuProfile(path: string, repoRoot: string): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    const dt = (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const keyOf = (n: ProfileNode): string => {
    const f = n.callFrame;
    const name = f.functionName === '' ? '(anonymous)' : f.functionName;
    return f.url === '' ? name : `${name}\u0000${shortUrl(f.url, repoRoot)}:${f.lineNumber + 1}`;
  };
  const selfByKey = new Map<string, number>();
  const totalByKey = new Map<string, number>();
  const selfByModule = new Map<string, number>();
  // depth-first from the root, with the distinct keys on the current stack
  const root = p.nodes[0];
  const stackCount = new Map<string, number>();
  const visit = (n: ProfileNode): void => {
    const k = keyOf(n);
    stackCount.set(k, (stackCount.get(k) ?? 0) + 1);
    const s = self.get(n.id) ?? 0;
    if (s > 0) {
      selfByKey.set(k, (selfByKey.get(k) ?? 0) + s);
      const mod = moduleOf(n.callFrame, repoRoot);
      selfByModule.set(mod, (selfByModule.get(mod) ?? 0) + s);
      for (const key of stackCount.keys()) totalByKey.set(key, (totalByKey.get(key) ?? 0) + s);
    }
    for (const c of n.children ?? []) {
      const child = byId.get(c);
      if (child !== undefined) visit(child);
    }
    const left = (stackCount.get(k) ?? 1) - 1;
    if (left === 0) stackCount.delete(k);
    else stackCount.set(k, left);
  };
  if (root !== undefined) visit(root);
  const functions: ProfileRow[] = [...new Set([...selfByKey.keys(), ...totalByKey.keys()])].map((k) => {
    const [fn, where] = k.split('\u0000');
    return { fn: fn ?? k, where: where ?? '', selfMs: selfByKey.get(k) ?? 0, totalMs: totalByKey.get(k) ?? 0 };
  });
  functions.sort((a, b) => b.selfMs - a.selfMs);
  const durationMs = (p.endTime - p.startTime) / 1000;
  const idle = selfByKey.get('(idle)') ?? 0;
  const m = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(basename(path));
  return {
    file: basename(path),
    thread: m === null ? '?' : m[2] === '0' ? 'main' : `worker ${m[2]}`,
    pid: m?.[1] ?? '?',
    startTime: p.startTime,
    startOffsetMs: 0,
    durationMs,
    busyMs: durationMs - idle,
    functions,
    modules: [...selfByModule.entries()]
      .map(([module, selfMs]) => ({ module, selfMs }))
      .sort((a, b) => b.selfMs - a.selfMs),
  };
}

/** Every .cpuprofile in `dir` (one per thread): main threads first, then workers by start. */
export function summarizeProfileDir(dir: string, repoRoot: string): ProfileSummary[] {
  const all = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => summarizeCpuProfile(join(dir, f), repoRoot));
  for (const s of all) {
    const first = Math.min(...all.filter((x) => x.pid === s.pid).map((x) => x.startTime));
    s.startOffsetMs = (s.startTime - first) / 1000;
  }
  return all.sort(
    (a, b) => (a.thread === 'main' ? 0 : 1) - (b.thread === 'main' ? 0 : 1) || a.startOffsetMs - b.startOffsetMs,
  );
}

const ms = (x: number): string => `${x.toFixed(0)}`;
const pct = (x: number, of: number): string => (of > 0 ? `${((100 * x) / of).toFixed(1)}%` : '-');

/** Markdown: per thread, the top functions by self time and the top modules. */
export function profileMarkdown(title: string, summaries: readonly ProfileSummary[], top = 25): string {
  const out: string[] = [`### ${title}`, ''];
  for (const s of summaries) {
    const when = s.thread === 'main' ? '' : `, started ${(s.startOffsetMs / 1000).toFixed(1)} s after the main thread`;
    out.push(
      `**${s.thread}** thread (\`${s.file}\`): ${ms(s.durationMs)} ms recorded${when}, ${ms(s.busyMs)} ms not idle.`,
      '',
    );
    out.push('| # | function | where | self ms | self % of recorded | total ms |', '|---:|---|---|---:|---:|---:|');
    s.functions.slice(0, top).forEach((f, i) => {
      out.push(
        `| ${i + 1} | \`${f.fn}\` | ${f.where === '' ? '' : `\`${f.where}\``} | ${ms(f.selfMs)}` +
          ` | ${pct(f.selfMs, s.durationMs)} | ${ms(f.totalMs)} |`,
      );
    });
    out.push('', '| module | self ms | % |', '|---|---:|---:|');
    for (const m of s.modules.slice(0, 15))
      out.push(`| \`${m.module}\` | ${ms(m.selfMs)} | ${pct(m.selfMs, s.durationMs)} |`);
    out.push('');
  }
  return out.join('\n');
}
