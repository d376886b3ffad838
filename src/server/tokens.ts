/**
 * The bearer tokens a serve-repo listener accepts. Only their SHA-256 is kept: a token is compared by hashing
 * what a request presents and comparing digests in constant time, against every known digest without stopping
 * at a match, so neither the time a check takes nor memory tells anything about a token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Shortest token accepted: a guessable one would make the server's refusals meaningless. */
export const MIN_TOKEN_LENGTH = 16;

export class TokenSet {
  private readonly digests: readonly Buffer[];

  /** The tokens (from token files) are hashed here and not kept. */
  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }

  /**
   * Which token `presented` is, as an id (hex, not the token nor its digest) that stays the same across restarts,
   * or undefined when it is none of them.
   */
  match(presented: string): string | undefined {
    const d = digest(presented);
    let found: Buffer | undefined;
    for (const known of this.digests) if (timingSafeEqual(d, known) && found === undefined) found = known;
    return found === undefined ? undefined : ownerId(found);
  }
}

/** A token's id, for the lock owners' file: derived from the digest, not the digest requests are checked against. */
function ownerId(d: Buffer): string {
  return createHash('sha256').update('fole-backup serve-repo token id\0').update(d).digest('hex').slice(0, 32);
}
