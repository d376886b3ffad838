/**
 * Worker thread of captureOnThread (src/sqlite/capture-thread.ts): runs
 * captureDatabases and reports each database as it is settled.
 *
 * Protocol:
 *   main → worker  {t:'abort'}                                   stop as soon as possible
 *   worker → main  {t:'database', path, captured? | unchanged? | damaged?}  one per database, as settled
 *   worker → main  {t:'done', result} | {t:'error', error}       then the thread ends
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToData } from '../errors.js';
import { removeLockRow } from './lock-table.js';
import { captureDatabases } from './capture.js';
import type { CaptureFromWorker, CaptureToWorker, ThreadCaptureOptions } from './capture-thread.js';

const port = parentPort;
if (port === null) throw new Error('capture-worker must run as a worker thread');
const { unchangedIfFingerprint, dropLockRow, ...opts } = workerData as Omit<
  ThreadCaptureOptions,
  'onDatabase' | 'signal'
>;
const stop = new AbortController();
port.on('message', (m: CaptureToWorker) => {
  if (m.t === 'abort') stop.abort();
});
const post = (m: CaptureFromWorker): void => port.postMessage(m);

try {
  const result = await captureDatabases({
    ...opts,
    signal: stop.signal,
    ...(dropLockRow === undefined
      ? {}
      : {
          transform: (rel: string, copy: Parameters<typeof removeLockRow>[0]) => {
            if (rel === dropLockRow.path) removeLockRow(copy, dropLockRow.lockId);
          },
        }),
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
}
port.close();
