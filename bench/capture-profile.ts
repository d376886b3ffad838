/**
 * Where the capture of databases spends its CPU (docs/BENCHMARKS.md, "Database
 * capture: syscalls and threads"). Two measurements, each printed as one JSON line:
 *
 *   node --import tsx bench/capture-profile.ts phases <root>
 *     captureDatabases on this thread: CPU of finding the instant, of the copies and of
 *     the checks (process.cpuUsage between its progress events), and how long the thread
 *     ran and waited for a core (/proc/thread-self/schedstat).
 *
 *   node --import tsx bench/capture-profile.ts threads <root> [dist/cli/main.js]
 *     one full backup by the CLI into a fresh repository: CPU of every thread that used
 *     ≥ 0.3 s (/proc/<pid>/task/<tid>/stat every 50 ms; the capture worker is the last
 *     one started), peak RSS (VmHWM) and wall time.
 *
 * Linux only (/proc).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureDatabases } from '../src/sqlite/capture.js';
import { isSqliteFile } from '../src/sqlite/detect.js';

const SIDE = /-(wal|shm|journal)$/;

/** Relative paths of every database under `root` (as the scan finds them: tmp/ and cache/ left out). */
function databasesUnder(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory() && e.name !== 'tmp' && e.name !== 'cache') out.push(...databasesUnder(root, r));
    else if (e.isFile() && !SIDE.test(e.name) && isSqliteFile(join(root, r))) out.push(r);
  }
  return out.sort();
}

async function phases(root: string): Promise<void> {
  const staging = mkdtempSync(join(tmpdir(), 'capture-profile-'));
  const cpu = { instant: 0, copy: 0, check: 0 };
  let last = process.cpuUsage();
  const charge = (phase: keyof typeof cpu): void => {
    const used = process.cpuUsage(last);
    cpu[phase] += (used.user + used.system) / 1000;
    last = process.cpuUsage();
  };
  const started = performance.now();
  try {
    const result = await captureDatabases({
      storageRoot: root,
      databases: databasesUnder(root),
      stagingDir: staging,
      onProgress: (e) => {
        if (e.phase === 'quiesce' && e.done === e.total) charge('instant');
        else if (e.phase === 'copy' && e.path !== undefined) charge('copy');
        else if (e.phase === 'check') charge('check');
      },
    });
    const [runNs, waitNs] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    const ms = (n: number | undefined): number => Math.round((n ?? 0) / 1e6);
    console.log(
      JSON.stringify({
        databases: result.databases.length,
        copiedMB: Math.round(result.databases.reduce((a, d) => a + d.size, 0) / 1e6),
        wallMs: Math.round(performance.now() - started),
        cpuMs: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round(v)])),
        threadRanMs: ms(runNs),
        threadWaitedForCoreMs: ms(waitNs),
      }),
    );
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function threads(root: string, cli: string): Promise<void> {
  const repo = mkdtempSync(join(tmpdir(), 'capture-profile-repo-'));
  const env = { ...process.env, FOLE_BACKUP_PASSWORD: 'bench', FOLE_VERSION: '1.0.0' };
  try {
    spawnSync(process.execPath, [cli, 'init', '--repo', repo], { env, stdio: 'ignore' });
    const started = performance.now();
    const child = spawn(process.execPath, [cli, 'backup', '--repo', repo, '--storage-root', root], {
      env,
      stdio: 'ignore',
    });
    const cpu = new Map<number, number>();
    let hwmKB = 0;
    const sample = (): void => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        hwmKB = Math.max(hwmKB, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
        for (const tid of readdirSync(`/proc/${child.pid}/task`)) {
          const f = readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8').split(')').pop()?.trim().split(' ');
          // utime and stime, fields 14 and 15 of stat, in clock ticks (1/100 s)
          const ticks = Number(f?.[11] ?? 0) + Number(f?.[12] ?? 0);
          cpu.set(Number(tid), Math.max(cpu.get(Number(tid)) ?? 0, ticks / 100));
        }
      } catch {
        // the process or a thread ended between two reads
      }
    };
    const timer = setInterval(sample, 50);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    clearInterval(timer);
    const busy = [...cpu.entries()].sort((a, b) => a[0] - b[0]).filter(([, s]) => s >= 0.3);
    console.log(
      JSON.stringify({
        exit: code,
        wallS: Math.round((performance.now() - started) / 100) / 10,
        threadsCpuS: busy.map(([, s]) => s),
        captureThreadCpuS: busy.at(-1)?.[1],
        allThreadsCpuS: Math.round([...cpu.values()].reduce((a, b) => a + b, 0) * 100) / 100,
        peakRssMB: Math.round(hwmKB / 1024),
      }),
    );
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
}

const [mode, root, cli] = process.argv.slice(2);
if (root === undefined || (mode !== 'phases' && mode !== 'threads')) {
  throw new Error('usage: capture-profile.ts phases|threads <root> [dist/cli/main.js]');
}
if (mode === 'phases') await phases(root);
else await threads(root, cli ?? 'dist/cli/main.js');
