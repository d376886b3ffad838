/**
 * Worker thread of `copy` (main-thread side: copy-pool.ts). The main thread reads a span of a source pack and
 * hands its bytes over (transferred); the worker opens every blob in it with the source's key (AEAD, decompress,
 * SHA-256 against its id) and seals the bytes as the source stored them (compressed or not, as the source chose)
 * with the target's key, so the main thread only packs what comes back. Keys stay inside the two BlobCiphers.
 *
 * Protocol (one job per message):
 *   main → worker  {t:'span', job, pack, data, blobs}   blobs: where each is in `data`, as the source indexes it
 *   worker → main  {t:'sealed', job, data, blobs}       the sealed blobs back to back (transferred), each with its
 *                                                       offset, sealed length, raw length and compression
 *   worker → main  {t:'failed', job, error}             a blob that did not open, or anything unexpected
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToData, StopError } from '../errors.js';
import { BlobCipher, type BlobCipherForWorker } from '../repository/blob-cipher.js';
import type { PackedBlob } from '../repository/pack.js';
import { blobBytesIn } from '../verify/pack-bytes.js';

export interface CopyWorkerData {
  /** Opens the source's blobs. */
  source: BlobCipherForWorker;
  /** Seals them for the target. */
  target: BlobCipherForWorker;
}

/** One blob sealed for the target: where it is in the answer's data, and what its index entry records. */
export type ResealedBlob = PackedBlob;

export type ToWorker = { t: 'span'; job: number; pack: string; data: Uint8Array; blobs: PackedBlob[] };

export type FromWorker =
  | { t: 'sealed'; job: number; data: Uint8Array; blobs: ResealedBlob[] }
  | { t: 'failed'; job: number; error: ReturnType<typeof errorToData> };

function reseal(m: ToWorker, source: BlobCipher, target: BlobCipher): { data: Uint8Array; blobs: ResealedBlob[] } {
  // sealed again as stored, each blob keeps its stored length: the answer's layout is known before any is opened
  let total = 0;
  const blobs = m.blobs.map((b): ResealedBlob => {
    const r = { ...b, offset: total };
    total += b.length;
    return r;
  });
  // one buffer of its own, moved to the main thread (transferred, not copied); every byte of it is sealed below
  const data = Buffer.allocUnsafeSlow(total);
  for (const [i, b] of m.blobs.entries()) {
    // checked against its id, then sealed again as the source stored it: compressed once, at backup time; sealed
    // at once, so its plaintext dies young instead of a span's worth of it outliving a collection
    const { plain, packed } = source.openPacked(b, m.pack, blobBytesIn(m.data, m.pack, b));
    if (plain.length !== b.rawLength) {
      throw new StopError(
        'CHECKSUM_MISMATCH',
        `blob ${b.id.slice(0, 12)} in pack ${m.pack.slice(0, 12)}: it opens to ${plain.length} bytes, not the index's`,
        { hint: 'the source is damaged; run `fole-backup check --read-data` on it' },
      );
    }
    const at = blobs[i] as ResealedBlob;
    if (target.sealInto(b.type, b.id, packed, data, at.offset) !== b.length)
      throw new Error('sealed length differs from the stored one');
  }
  return { data, blobs };
}

const port = parentPort;
if (port !== null) {
  const data = workerData as CopyWorkerData;
  const source = BlobCipher.fromWorker(data.source);
  const target = BlobCipher.fromWorker(data.target);
  port.on('message', (m: ToWorker) => {
    try {
      const r = reseal(m, source, target);
      port.postMessage({ t: 'sealed', job: m.job, ...r } satisfies FromWorker, [r.data.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ t: 'failed', job: m.job, error: errorToData(err) } satisfies FromWorker);
    }
  });
}
