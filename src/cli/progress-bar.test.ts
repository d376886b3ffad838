import { describe, expect, it } from 'vitest';
import { FileProgress } from '../backup/progress.js';
import type { ProgressSnapshot } from '../progress/reporter.js';
import { etaText } from './progress-bar.js';

describe('the ETA', () => {
  it('is not told while the total still grows, nor before there is a rate', () => {
    expect(etaText(10, 100, 5, false)).toBe('ETA: counting…');
    expect(etaText(0, 100, 5, true)).toBe('ETA: –');
    expect(etaText(10, 100, 0.5, true)).toBe('ETA: –');
  });

  it('is the time left at the rate so far once the total is final', () => {
    expect(etaText(25, 100, 10, true)).toBe('ETA 30.0 s');
    expect(etaText(100, 100, 10, true)).toBe('ETA 0 ms');
  });

  it("is held back by a backup's progress until its scan is over", () => {
    const seen: ProgressSnapshot[] = [];
    const p = new FileProgress({ phase() {}, warn() {}, progress: (s) => seen.push(s) });
    p.found(100);
    p.kept('a', 100);
    p.scanDone();
    p.found(0);
    p.kept('b', 0);
    expect(seen.map((s) => s.totalsFinal)).toEqual([false, true]);
  });
});
