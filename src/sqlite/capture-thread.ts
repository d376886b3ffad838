/**
 * captureDatabases (src/sqlite/capture.ts) on a worker thread of its own
 * (src/sqlite/capture-worker.ts). The capture is synchronous SQLite work —
 * opening two connections per database, the Online Backup API's steps, the
 * integrity checks — and on the main thread it held up everything else a
 * backup does there (answering the file workers, writing packs): a 32 MiB
 * backup step blocks for ~100 ms. Same options (in a form that crosses a
 * thread: data, not callbacks), same result, same typed errors.
 */
import { errorFromData, type ErrorData, FoleBackupError } from '../errors.js';
import { startWorker } from '../concurrency/start-worker.js';
import type { CaptureOptions, CaptureResult, MadeCopy, SettledDatabase } from './capture.js';

export interface ThreadCaptureOptions
  extends Omit<
    CaptureOptions,
    'transform' | 'check' | 'unchanged' | 'onDatabase' | 'onCopied' | 'onProgress' | 'signal'
  > {
  /** Path -> fingerprint of the parent backup: a database whose fingerprint still matches is not copied. */
  unchangedIfFingerprint?: Record<string, string>;
  /** Delete this lock row from the copy of this database (our own Global Storage Lock row in core.db). */
  dropLockRow?: { path: string; lockId: string };
  onDatabase?: (d: SettledDatabase) => void;
  /** Each copy the check will not change (all but dropLockRow's), as soon as it is made (CaptureOptions.onCopied). */
  onCopied?: (copy: MadeCopy) => void;
  signal?: AbortSignal;
}

export type CaptureToWorker = { t: 'abort' };
/** What the capture worker starts with: the options as data, and whether to tell each copy made. */
export type CaptureWorkerData = Omit<ThreadCaptureOptions, 'onDatabase' | 'onCopied' | 'signal'> & {
  tellCopies: boolean;
};
export type CaptureFromWorker =
  | ({ t: 'copied' } & MadeCopy)
  | ({ t: 'database' } & SettledDatabase)
  | { t: 'done'; result: CaptureResult }
  | { t: 'error'; error: ErrorData };

export function captureOnThread(opts: ThreadCaptureOptions): Promise<CaptureResult> {
  const { onDatabase, onCopied, signal, ...data } = opts;
  return new Promise<CaptureResult>((resolve, reject) => {
    const workerData: CaptureWorkerData = { ...data, tellCopies: onCopied !== undefined };
    const worker = startWorker(import.meta.url, 'capture-worker', { workerData });
    let outcome: { ok: true; result: CaptureResult } | { ok: false; error: unknown } | undefined;
    const abort = (): void => worker.postMessage({ t: 'abort' } satisfies CaptureToWorker);
    signal?.addEventListener('abort', abort, { once: true });
    if (signal?.aborted) abort();
    // a caller's callback that throws fails the capture
    const tell = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        outcome ??= { ok: false, error: err };
        abort();
      }
    };
    worker.on('message', (m: CaptureFromWorker) => {
      if (m.t === 'copied') tell(() => onCopied?.({ path: m.path, file: m.file, size: m.size }));
      else if (m.t === 'database') {
        tell(() =>
          onDatabase?.({
            path: m.path,
            ...(m.captured ? { captured: m.captured } : {}),
            ...(m.unchanged ? { unchanged: m.unchanged } : {}),
            ...(m.damaged !== undefined ? { damaged: m.damaged } : {}),
            ...(m.locked !== undefined ? { locked: m.locked } : {}),
            ...(m.sameFileAs !== undefined ? { sameFileAs: m.sameFileAs } : {}),
            ...(m.vanished === true ? { vanished: true } : {}),
          }),
        );
      } else if (m.t === 'done') outcome ??= { ok: true, result: m.result };
      else outcome ??= { ok: false, error: errorFromData(m.error) };
    });
    worker.on('error', (err) => {
      outcome ??= {
        ok: false,
        error: new FoleBackupError('INTERNAL', `capture worker failed: ${err.message}`, { cause: err }),
      };
    });
    // settle only once the thread is gone: its connections are closed and its copies
    // removed (on failure) before the caller goes on to remove staging
    worker.on('exit', (code) => {
      signal?.removeEventListener('abort', abort);
      const o = outcome ?? {
        ok: false,
        error: new FoleBackupError('INTERNAL', `capture worker exited with code ${code} before it finished`),
      };
      if (o.ok) resolve(o.result);
      else reject(o.error);
    });
  });
}
