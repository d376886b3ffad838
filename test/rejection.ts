import { FoleBackupError } from '../src/errors.js';

/** The typed error a promise fails with; a success, or an error of another kind, fails the test. */
export async function rejection(p: Promise<unknown>): Promise<FoleBackupError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof FoleBackupError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}
