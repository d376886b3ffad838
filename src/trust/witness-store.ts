/**
 * Checkpoints in a witness repository: `witness/<repository id>.<seq>` (seq in ten digits), each a sealed
 * envelope written create-only, so a checkpoint once stored is never replaced. A repository id that is not a
 * plain object name is named by its SHA-256 instead.
 */
import { sha256Hex } from '../crypto/hash.js';
import { FoleBackupError } from '../errors.js';
import type { SealedObjects } from '../repository/slices.js';
import type { Envelope } from './envelope.js';
import type { StoredCheckpoint } from './witness.js';

const PLAIN_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const SEQ_RE = /^\d{10}$/;
const aad = (name: string): Buffer => Buffer.from(`fole-witness:${name}`);

/** The part of a checkpoint's name that says whose log it is. */
function prefixOf(repositoryId: string): string {
  return PLAIN_ID_RE.test(repositoryId) ? repositoryId : sha256Hex(Buffer.from(repositoryId, 'utf8'));
}

/** The object name of the checkpoint of entry `seq` of `repositoryId`'s log. */
export function checkpointName(repositoryId: string, seq: number): string {
  return `${prefixOf(repositoryId)}.${String(seq).padStart(10, '0')}`;
}

/** Every checkpoint the witness holds of `repositoryId`'s log, in no particular order; a damaged one unread. */
export async function readCheckpoints(witness: SealedObjects, repositoryId: string): Promise<StoredCheckpoint[]> {
  const prefix = `${prefixOf(repositoryId)}.`;
  const out: StoredCheckpoint[] = [];
  for await (const o of witness.backend.list('witness')) {
    if (!o.name.startsWith(prefix) || !SEQ_RE.test(o.name.slice(prefix.length))) continue;
    let envelope: unknown;
    try {
      envelope = await witness.loadJson('witness', o.name, aad(o.name));
    } catch (err) {
      if (!(err instanceof FoleBackupError && (err.code === 'REPO_CORRUPT' || err.code === 'CHECKSUM_MISMATCH'))) {
        throw err;
      }
      envelope = undefined;
    }
    out.push({ seq: Number(o.name.slice(prefix.length)), envelope });
  }
  return out;
}

/** Store a checkpoint create-only: false if the witness already holds one for that entry (it is left as it is). */
export async function storeCheckpoint(
  witness: SealedObjects,
  repositoryId: string,
  seq: number,
  envelope: Envelope,
): Promise<boolean> {
  const name = checkpointName(repositoryId, seq);
  try {
    await witness.createJson('witness', name, envelope, aad(name));
    return true;
  } catch (err) {
    if (err instanceof FoleBackupError && err.code === 'ALREADY_EXISTS') return false;
    throw err;
  }
}
