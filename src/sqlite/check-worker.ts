/**
 * Worker thread of CheckThread (src/sqlite/check-thread.ts): checks each copy
 * it is sent, one after the other, and answers with the result or the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { abortError, errorToData } from '../errors.js';
import { checkCopy } from './check-copy.js';
import type { CheckWorkerData, FromCheckWorker, ToCheckWorker } from './check-thread.js';
import { removeLockRow } from './lock-table.js';

const port = parentPort;
if (port === null) throw new Error('check-worker must run as a worker thread');
const { dropLockRow, cancel } = workerData as CheckWorkerData;
const cancelled = new Int32Array(cancel);
const transform =
  dropLockRow === undefined
    ? undefined
    : (rel: string, copy: Parameters<typeof removeLockRow>[0]): void => {
        if (rel === dropLockRow.path) removeLockRow(copy, dropLockRow.lockId);
      };

port.on('message', (m: ToCheckWorker) => {
  let answer: FromCheckWorker;
  try {
    if (Atomics.load(cancelled, 0) !== 0) throw abortError();
    answer = { t: 'checked', id: m.id, captured: checkCopy(m.copy, transform) };
  } catch (err) {
    answer = { t: 'failed', id: m.id, error: errorToData(err) };
  }
  port.postMessage(answer);
});
