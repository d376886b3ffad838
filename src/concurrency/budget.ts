/**
 * A budget of units (bytes, reads in flight) shared by async takers: take(n)
 * waits until n more fit, give(n) returns them. One taker is let through even
 * when it alone is larger than the whole budget (so an oversized pack is still
 * checked). Waiters are served first come, first served, and give() wakes only
 * those that now fit: with hundreds waiting on a budget of a few units, waking
 * every one of them on every give would be the hot path.
 */
export class Budget {
  private used = 0;
  private readonly waiters: { n: number; go: () => void }[] = [];
  private head = 0;

  constructor(private readonly max: number) {}

  private fits(n: number): boolean {
    return this.used === 0 || this.used + n <= this.max;
  }

  take(n: number): Promise<void> {
    if (this.head === this.waiters.length && this.fits(n)) {
      this.used += n;
      return Promise.resolve();
    }
    return new Promise((go) => this.waiters.push({ n, go }));
  }

  give(n: number): void {
    this.used -= n;
    while (this.head < this.waiters.length) {
      const next = this.waiters[this.head] as { n: number; go: () => void };
      if (!this.fits(next.n)) break;
      this.head++;
      this.used += next.n;
      next.go();
    }
    // drop served waiters now and then, not one shift per wake
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters.splice(0, this.head);
      this.head = 0;
    }
  }
}
