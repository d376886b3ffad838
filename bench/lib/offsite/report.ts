/**
 * The offsite figures (`npm run bench -- --offsite`) as tables: `fole-backup copy` against the raw upload of the
 * same bytes, and the goals of issue 20 — copy throughput at least 80% of the raw upload's, and a backup to a
 * server no slower than restic's to the same server.
 */
import type { OffsiteTargetName, Scenario } from '../options.js';
import { median, type Goal, type Measurement, type Table } from '../report.js';

/** One measured copy (fole) or raw upload (raw) of one run. */
export interface CopyFigure {
  run: number;
  target: OffsiteTargetName;
  who: 'fole' | 'raw';
  status: 'ok' | 'failed' | 'unavailable';
  error?: string;
  wallS: number;
  cpuS: number;
  maxRssKiB: number;
  /** Bytes sent to the server: fole's packs and index files, the raw upload's files. */
  bytes: number | null;
  /** Seconds of the transfer alone: fole's "copy data" phase, put-s3.ts's own timer, all of `sftp -b`. */
  transferS: number | null;
  /** CPU seconds of everything else on the machine during the step, the server included. */
  foreignCpuS: number;
}

const f = (x: number | null | undefined, d: number): string => (x == null ? '–' : x.toFixed(d));

interface CopySummary {
  okRuns: number;
  runs: number;
  wallS: number | null;
  transferS: number | null;
  cpuS: number | null;
  maxRssKiB: number | null;
  bytes: number | null;
  foreignCpuS: number | null;
  /** Bytes over the median transfer time, and over the median wall time. */
  transferMBps: number | null;
  wallMBps: number | null;
}

function summarizeCopies(figs: readonly CopyFigure[]): CopySummary {
  const ok = figs.filter((x) => x.status === 'ok');
  const m = (fn: (x: CopyFigure) => number | null): number | null =>
    median(ok.flatMap((x) => (fn(x) === null ? [] : [fn(x) as number])));
  const bytes = m((x) => x.bytes);
  const transferS = m((x) => x.transferS);
  const wallS = m((x) => x.wallS);
  return {
    okRuns: ok.length,
    runs: figs.length,
    wallS,
    transferS,
    cpuS: m((x) => x.cpuS),
    maxRssKiB: m((x) => x.maxRssKiB),
    bytes,
    foreignCpuS: m((x) => x.foreignCpuS),
    transferMBps: bytes !== null && transferS ? bytes / 1e6 / transferS : null,
    wallMBps: bytes !== null && wallS ? bytes / 1e6 / wallS : null,
  };
}

/** Per target: fole-backup's copy and the raw upload, medians over the runs. */
export function copyTable(
  figs: readonly CopyFigure[],
  targets: readonly { name: OffsiteTargetName; rawTitle: string }[],
): Table {
  const head = [
    'target',
    'what',
    'runs ok',
    'MB sent',
    'transfer s',
    'MB/s (transfer)',
    'wall s',
    'MB/s (wall)',
    'peak RSS MiB',
    'CPU s',
    'other procs CPU s',
  ];
  const rows: string[][] = [];
  for (const t of targets) {
    for (const who of ['fole', 'raw'] as const) {
      const s = summarizeCopies(figs.filter((x) => x.target === t.name && x.who === who));
      rows.push([
        t.name,
        who === 'fole' ? 'fole-backup copy' : t.rawTitle,
        `${s.okRuns}/${s.runs}`,
        f(s.bytes === null ? null : s.bytes / 1e6, 1),
        f(s.transferS, 2),
        f(s.transferMBps, 1),
        f(s.wallS, 2),
        f(s.wallMBps, 1),
        f(s.maxRssKiB === null ? null : s.maxRssKiB / 1024, 0),
        f(s.cpuS, 2),
        f(s.foreignCpuS, 1),
      ]);
    }
  }
  return { head, rows, right: new Set([2, 3, 4, 5, 6, 7, 8, 9, 10]) };
}

/** Ratios run by run, "0.91, 0.87, …": the two sides of a ratio ran minutes apart on the same server. */
function perRun<T extends { run: number }>(xs: readonly T[], ys: readonly T[], fn: (a: T, b: T) => number | null) {
  return xs
    .flatMap((a) => {
      const b = ys.find((y) => y.run === a.run);
      const r = b === undefined ? null : fn(a, b);
      return r === null || !Number.isFinite(r) ? [] : [r.toFixed(2)];
    })
    .join(', ');
}

/**
 * Issue 20's goals per target: copy MB/s at least 0.8 of the raw upload's over the transfer (and the whole
 * command, for reference), and fole-backup's full backup to the server no slower than restic's (with its hook).
 */
export function offsiteGoals(
  target: OffsiteTargetName,
  copies: readonly CopyFigure[],
  ms: readonly Measurement[],
): Goal[] {
  const out: Goal[] = [];
  const side = (who: 'fole' | 'raw') => copies.filter((x) => x.target === target && x.who === who && x.status === 'ok');
  const fole = summarizeCopies(side('fole'));
  const raw = summarizeCopies(side('raw'));
  const label = `copy to ${target}: fole MB/s ÷ raw upload MB/s ≥ 0.8 (transfer)`;
  if (fole.transferMBps === null || raw.transferMBps === null)
    out.push({ goal: label, value: 'not measured', met: null });
  else {
    const x = fole.transferMBps / raw.transferMBps;
    const wall = fole.wallMBps !== null && raw.wallMBps !== null ? (fole.wallMBps / raw.wallMBps).toFixed(2) : '–';
    const runs = perRun(side('fole'), side('raw'), (a, b) =>
      a.bytes && b.bytes && a.transferS && b.transferS ? a.bytes / a.transferS / (b.bytes / b.transferS) : null,
    );
    out.push({
      goal: label,
      value:
        `${x.toFixed(2)} (${fole.transferMBps.toFixed(1)} vs ${raw.transferMBps.toFixed(1)} MB/s; runs ${runs}` +
        `; whole commands ${wall})`,
      met: x >= 0.8,
    });
  }
  const scenario: Scenario = 'full';
  const ok = (tool: string) => ms.filter((m) => m.scenario === scenario && m.tool === tool && m.status === 'ok');
  const fw = median(ok('fole').map((m) => m.wallS));
  const rw = median(ok('restic').map((m) => m.wallS));
  const bl = `full backup to ${target}: fole/restic ≤ 1`;
  if (fw === null || rw === null) out.push({ goal: bl, value: 'not measured', met: null });
  else
    out.push({
      goal: bl,
      value:
        `${(fw / rw).toFixed(2)} (${fw.toFixed(2)} s vs ${rw.toFixed(2)} s; runs ` +
        `${perRun(ok('fole'), ok('restic'), (a, b) => a.wallS / b.wallS)})`,
      met: fw <= rw,
    });
  return out;
}
