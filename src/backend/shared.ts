/**
 * A backend whose owner outlives its users: close() from a user (a Repository
 * a command closes when it is done) is ignored, and the owner ends it with
 * release(). The CLI opens each repository's backend once, lets the command
 * use and close its Repository, and still appends the command's audit entry
 * through the same backend afterwards.
 */
import { WrappedBackend } from './wrapped.js';

export class SharedBackend extends WrappedBackend {
  /** A user is done with it: nothing happens until the owner calls release(). */
  override async close(): Promise<void> {}

  /** The owner is done: close the wrapped backend. */
  release(): Promise<void> {
    return this.inner.close();
  }
}
