/**
 * Progress on a TTY: a cli-progress bar on stderr showing phase, files, bytes,
 * rate and ETA. Off the TTY (pipes, CI, --json to a file) only phase changes
 * and warnings are printed, one line each.
 */
import { createRequire } from 'node:module';
import type { SingleBar } from 'cli-progress';
import type { ProgressReporter, ProgressSnapshot } from '../progress/reporter.js';
import { formatBytes, formatDuration, terminalSafe } from './output.js';

/**
 * The time left at the rate so far, once there is a rate and a final total; while the total still grows (a scan
 * is still counting) a time would be a guess that only shrinks, so none is shown.
 */
export function etaText(done: number, total: number, secs: number, totalFinal: boolean): string {
  if (!totalFinal) return 'ETA: counting…';
  if (done <= 0 || secs < 1) return 'ETA: –';
  const left = ((total - done) / done) * secs;
  return `ETA ${formatDuration(Math.round(left) * 1000)}`;
}

/** cli-progress, loaded with the first bar: a command that draws none (any run off a terminal) never loads it. */
const loadCliProgress = (): typeof import('cli-progress') => createRequire(import.meta.url)('cli-progress');

export function makeProgressReporter(opts: { enabled: boolean; quiet: boolean }): ProgressReporter & { stop(): void } {
  const tty = opts.enabled && !opts.quiet && process.stderr.isTTY === true;
  let bar: SingleBar | undefined;
  let phase = '';
  let started = Date.now();
  let lastDraw = 0;

  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };

  return {
    phase(name) {
      stop();
      phase = name;
      started = Date.now();
      if (tty) {
        const cliProgress = loadCliProgress();
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: '{phase} |{bar}| {percentage}% {files} files {bytes} {rate} {eta} {current}',
            hideCursor: true,
            clearOnComplete: true,
            etaBuffer: 50,
            fps: 10,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(1, 0, { phase: name.padEnd(18), files: '', bytes: '', rate: '', eta: '', current: '' });
      } else if (!opts.quiet) {
        process.stderr.write(`${terminalSafe(name)}…\n`);
      }
    },
    progress(p: ProgressSnapshot) {
      if (!bar) return;
      const now = Date.now();
      if (now - lastDraw < 100) return;
      lastDraw = now;
      const secs = Math.max(0.001, (now - started) / 1000);
      const byBytes = p.totalBytes !== undefined && p.totalBytes > 0 && p.bytes > 0;
      const total = byBytes ? (p.totalBytes as number) : Math.max(1, p.totalFiles ?? p.files);
      const value = byBytes ? p.bytes : p.files;
      bar.setTotal(total);
      bar.update(Math.min(value, total), {
        phase: phase.padEnd(18),
        files: p.totalFiles !== undefined ? `${p.files}/${p.totalFiles}` : `${p.files}`,
        bytes:
          p.totalBytes !== undefined ? `${formatBytes(p.bytes)}/${formatBytes(p.totalBytes)}` : formatBytes(p.bytes),
        rate: `${formatBytes(p.bytes / secs)}/s`,
        eta: etaText(value, total, secs, p.totalsFinal !== false),
        current: terminalSafe((p.current ?? '').slice(-40)),
      });
    },
    warn(message) {
      if (opts.quiet) return;
      if (bar) process.stderr.write('\n');
      process.stderr.write(`warning: ${terminalSafe(message)}\n`);
    },
    stop,
  };
}
