/**
 * Opening a second repository beside --repo, with a password of its own that never comes from the command line:
 * the witness of `audit checkpoint --witness`, the source of `copy --from-repo`. Errors opening it say which one
 * they are about.
 */
import type { Backend } from '../backend/backend.js';
import { FoleBackupError, StopError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { RepositoryConfig } from '../repository/format.js';
import { UsageError } from './output.js';
import { readPasswordFile } from './password-file.js';

/** Which second repository: its name in messages, the flag naming its password file, and its variables' prefix. */
export interface OtherRepository {
  role: string;
  passwordFlag: string;
  /** `FOLE_BACKUP_WITNESS`: its password is in `<prefix>_PASSWORD_FILE`'s file or `<prefix>_PASSWORD`. */
  envPrefix: string;
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);

/** The second repository's password: the flag's file, `<prefix>_PASSWORD_FILE`'s file, `<prefix>_PASSWORD`. */
export async function otherPassword(file: string | undefined, who: OtherRepository): Promise<string> {
  const path = nonEmpty(file) ?? nonEmpty(process.env[`${who.envPrefix}_PASSWORD_FILE`]);
  if (path !== undefined) return readPasswordFile(path);
  const env = nonEmpty(process.env[`${who.envPrefix}_PASSWORD`]);
  if (env !== undefined) return env;
  throw new UsageError(
    `no password for the ${who.role} repository`,
    `pass ${who.passwordFlag} FILE, or set ${who.envPrefix}_PASSWORD_FILE or ${who.envPrefix}_PASSWORD`,
  );
}

/**
 * Open the second repository on `backend` with `password`; `refuse` sees its config first and throws to refuse
 * it before any password is tried. The backend is closed again when it does not open.
 */
export async function openOtherRepository(
  backend: Backend,
  password: string,
  who: OtherRepository,
  refuse: (config: RepositoryConfig) => void = () => undefined,
): Promise<Repository> {
  try {
    const { readConfig } = await import('../repository/repository.js');
    const { openRepository } = await import('../repository/open-repository.js');
    refuse(await readConfig(backend));
    return await openRepository(backend, password);
  } catch (err) {
    await backend.close().catch(() => undefined);
    if (!(err instanceof FoleBackupError) || err instanceof UsageError) throw err;
    const hint =
      err.code === 'PERMISSION_DENIED'
        ? `check ${who.passwordFlag}, ${who.envPrefix}_PASSWORD_FILE or ${who.envPrefix}_PASSWORD: the ` +
          `${who.role} has a password of its own; nothing was written`
        : err.hint;
    const options = { cause: err, ...(hint === undefined ? {} : { hint }) };
    const message = `${who.role}: ${err.message}`;
    throw err instanceof StopError
      ? new StopError(err.code, message, options)
      : new FoleBackupError(err.code, message, options);
  }
}
