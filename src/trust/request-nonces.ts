/**
 * The nonces of the signed requests a long-running verifier (the HTTP server,
 * the agent interface) has accepted, so a request captured on the wire cannot
 * be sent again. A request is only fresh within REQUEST_WINDOW_MS of its
 * signing time (gate.ts), so a nonce need only be kept until then: memory is
 * bounded by the requests of one window, and past `max` of them new requests
 * are refused rather than old nonces forgotten early (forgetting would let a
 * replay through).
 */

/** Nonces seen, each kept until the request it came with can no longer be fresh. */
export class RequestNonces {
  /** `actor nonce` → when it may be forgotten (epoch ms). */
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly max = 100_000,
  ) {}

  /**
   * Record the nonce of a request `actor` signed at `signedAt` (already checked to be fresh at `now`):
   * 'ok' the first time, 'replay' when it was seen before, 'full' when `max` requests of the window are held.
   */
  admit(actor: string, nonce: string, signedAt: number, now: number): 'ok' | 'replay' | 'full' {
    const key = `${actor} ${nonce}`;
    const until = this.seen.get(key);
    if (until !== undefined && until >= now) return 'replay';
    if (this.seen.size >= this.max) this.forgetExpired(now);
    if (this.seen.size >= this.max) return 'full';
    this.seen.set(key, signedAt + this.windowMs);
    return 'ok';
  }

  /** How many nonces are held. */
  get size(): number {
    return this.seen.size;
  }

  private forgetExpired(now: number): void {
    for (const [key, until] of this.seen) if (until < now) this.seen.delete(key);
  }
}
