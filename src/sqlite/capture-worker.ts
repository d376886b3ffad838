/**
 * Worker thread of captureOnThread (src/sqlite/capture-thread.ts): runs
 * captureDatabases, with the checks of its copies on a thread of its own
 * (src/sqlite/check-thread.ts), and reports each database as it is settled.
 *
 * Protocol:
 *   main → worker  {t:'abort'}                                   stop as soon as possible
 *   worker → main  {t:'copied', path, file, size}                 a copy made, not yet checked (tellCopies)
 *   worker → main  {t:'database', path, captured? | unchanged? | damaged?}  one per database, as settled
 *   worker → main  {t:'done', result} | {t:'error', error}       then the thread ends
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToData } from '../errors.js';
import { captureDatabases } from './capture.js';
import { CheckThread } from './check-thread.js';
import type { CaptureFromWorker, CaptureToWorker, CaptureWorkerData } from './capture-thread.js';

const port = parentPort;
if (port === null) throw new Error('capture-worker must run as a worker thread');
const { unchangedIfFingerprint, dropLockRow, tellCopies, ...opts } = workerData as CaptureWorkerData;
const stop = new AbortController();
port.on('message', (m: CaptureToWorker) => {
  if (m.t === 'abort') stop.abort();
});
const post = (m: CaptureFromWorker): void => port.postMessage(m);

// each copy is checked there while the next one is made here
const checks = new CheckThread(dropLockRow === undefined ? {} : { dropLockRow });
stop.signal.addEventListener('abort', () => checks.cancel(), { once: true });
try {
  const result = await captureDatabases({
    ...opts,
    signal: stop.signal,
    check: (copy) => checks.check(copy),
    ...(tellCopies
      ? {
          onCopied: (c) => {
            // the copy the check changes (our lock row dropped) is told only once checked
            if (c.path !== dropLockRow?.path) post({ t: 'copied', ...c });
          },
        }
      : {}),
    ...(unchangedIfFingerprint === undefined
      ? {}
      : {
          unchanged: (rel: string, fp: string) =>
            Object.hasOwn(unchangedIfFingerprint, rel) && unchangedIfFingerprint[rel] === fp,
        }),
    onDatabase: (d) => post({ t: 'database', ...d }),
  });
  post({ t: 'done', result });
} catch (err) {
  post({ t: 'error', error: errorToData(err) });
} finally {
  await checks.close();
}
port.close();
