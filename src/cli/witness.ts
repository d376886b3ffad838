/**
 * Opening the witness repository of `audit checkpoint --witness` and `audit verify --witness`: another
 * fole-backup repository, with a password of its own (never on the command line) and never the repository
 * whose log it witnesses.
 */
import type { Repository } from '../repository/repository.js';
import { UsageError } from './output.js';
import { openOtherRepository, otherPassword, type OtherRepository } from './other-repo.js';
import type { VerifiedEntry } from '../trust/audit.js';
import type { RegistryState } from '../trust/registry.js';
import type { WitnessCheck } from '../trust/witness.js';

/** The --witness flags both commands take. */
export interface WitnessFlags {
  witness?: string;
  witnessPasswordFile?: string;
}

export const WITNESS_FLAG_HELP =
  'the witness: a second repository, on other storage and with its own password, that keeps signed ' +
  'checkpoints of this audit log';
export const WITNESS_PASSWORD_HELP =
  "read the witness repository's password from a file (default: $FOLE_BACKUP_WITNESS_PASSWORD_FILE, else " +
  '$FOLE_BACKUP_WITNESS_PASSWORD)';

const WITNESS: OtherRepository = {
  role: 'witness',
  passwordFlag: '--witness-password-file',
  envPrefix: 'FOLE_BACKUP_WITNESS',
};

/** The witness password: --witness-password-file, $FOLE_BACKUP_WITNESS_PASSWORD_FILE, $FOLE_BACKUP_WITNESS_PASSWORD. */
export function witnessPassword(flags: WitnessFlags): Promise<string> {
  return otherPassword(flags.witnessPasswordFile, WITNESS);
}

/**
 * Open the witness at `location` with `password`, refusing the repository whose log it is to witness
 * (`repositoryId`) before any password is tried. Errors opening it say they are about the witness.
 */
async function openWitness(location: string, password: string, repositoryId: string): Promise<Repository> {
  const { openBackend } = await import('../backend/open.js');
  return openOtherRepository(openBackend(location), password, WITNESS, (config) => {
    if (config.id === repositoryId) {
      throw new UsageError(
        `the witness ${location} is the repository itself (repository id ${repositoryId})`,
        'a witness is a second repository, on other storage, that whoever can rewrite this one cannot write',
      );
    }
  });
}

/** Run `fn` on the witness repository at `location` (see openWitness), closed after. */
export async function withWitness<T>(
  location: string,
  password: string,
  repositoryId: string,
  fn: (w: Repository) => Promise<T>,
): Promise<T> {
  const w = await openWitness(location, password, repositoryId);
  try {
    return await fn(w);
  } finally {
    await w.close();
  }
}

/** The log of `repositoryId` (its verified entries) checked against every checkpoint the witness holds of it. */
export async function consultWitness(
  w: Repository,
  repositoryId: string,
  registry: RegistryState | undefined,
  entries: readonly VerifiedEntry[],
): Promise<{ check: WitnessCheck; count: number }> {
  const { readCheckpoints } = await import('../trust/witness-store.js');
  const { checkAgainstWitness } = await import('../trust/witness.js');
  const stored = await readCheckpoints(w, repositoryId);
  return { check: checkAgainstWitness(repositoryId, registry, entries, stored), count: stored.length };
}
