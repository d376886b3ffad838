/**
 * Worker thread of scanTree (src/storage/scan.ts): walks the tree with
 * synchronous file system calls and posts the records in batches.
 *
 * Protocol:
 *   worker → main  {t:'batch', records, skips}   in tree order; skips are those met while making the batch
 *   main → worker  'more'                         one per batch consumed: the worker stays at most `ahead`
 *                                                 batches ahead
 *   worker → main  {t:'done'} | {t:'error', error}
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToData } from '../errors.js';
import { walkTree, type ForbiddenDir, type ScanFromWorker, type ScanSkip } from './scan.js';

const { root, ahead, forbidden, readAhead } = workerData as {
  root: string;
  ahead: number;
  forbidden: ForbiddenDir[];
  readAhead: number;
};
const port = parentPort;
if (port === null) throw new Error('scan-worker must run as a worker thread');

let credit = ahead;
let wake: (() => void) | undefined;
port.on('message', () => {
  credit++;
  wake?.();
  wake = undefined;
});
const post = (m: ScanFromWorker): void => port.postMessage(m);

try {
  let skips: ScanSkip[] = [];
  for (const records of walkTree(root, (s) => skips.push(s), { forbidden, readAhead })) {
    while (credit === 0) await new Promise<void>((resolve) => (wake = resolve));
    credit--;
    post({ t: 'batch', records, skips });
    skips = [];
  }
  post({ t: 'batch', records: [], skips });
  post({ t: 'done' });
} catch (err) {
  post({ t: 'error', error: errorToData(err) });
}
port.close();
