/**
 * Ctrl-C and SIGTERM in the CLI (src/cli/context.ts): a command that asks for
 * an interruptible signal stops cleanly on the first one and quits at once on
 * the second; one that never asks keeps Node's default. The handler is called
 * directly (emitting a real SIGINT would reach the test runner's own handlers).
 */
import { describe, expect, it, vi } from 'vitest';
import { makeContext } from './context.js';

/** The handler the context added for `sig` (the last one). */
function added(sig: 'SIGINT' | 'SIGTERM', before: number): (s: NodeJS.Signals) => void {
  const all = process.listeners(sig);
  expect(all.length).toBe(before + 1);
  return all[all.length - 1] as (s: NodeJS.Signals) => void;
}

describe('an interruptible command', () => {
  it('aborts on the first signal and says so, exits at once on the second, and stops listening when released', () => {
    const before = { int: process.listenerCount('SIGINT'), term: process.listenerCount('SIGTERM') };
    const ctx = makeContext({ quiet: true, progress: false });
    const signal = ctx.interruptible();
    expect(ctx.interruptible()).toBe(signal);
    const onInt = added('SIGINT', before.int);
    added('SIGTERM', before.term);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      onInt('SIGINT');
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toMatchObject({ code: 'ABORTED' });
      expect(ctx.interruptedBy).toBe('SIGINT');
      expect(exit).not.toHaveBeenCalled();
      expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(
        /SIGINT: stopping cleanly.*again to quit at once/,
      );
      onInt('SIGINT');
      expect(exit).toHaveBeenCalledWith(130);
    } finally {
      exit.mockRestore();
      stderr.mockRestore();
      ctx.release();
    }
    expect(process.listenerCount('SIGINT')).toBe(before.int);
    expect(process.listenerCount('SIGTERM')).toBe(before.term);
  });

  it('once the command is finishing, a signal says it completes first instead of promising to undo it', () => {
    const ctx = makeContext({ quiet: true, progress: false });
    const before = process.listenerCount('SIGTERM');
    const signal = ctx.interruptible();
    const onTerm = process.listeners('SIGTERM')[before] as (s: NodeJS.Signals) => void;
    ctx.finishing('the swap of the restored tree into place');
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      onTerm('SIGTERM');
      const said = stderr.mock.calls.map((c) => String(c[0])).join('');
      expect(said).toMatch(/SIGTERM: the swap of the restored tree into place is under way and completes first/);
      expect(said).not.toMatch(/undoing/);
      expect(ctx.interruptedBy).toBe('SIGTERM');
      expect(signal.aborted).toBe(true);
    } finally {
      stderr.mockRestore();
      ctx.release();
    }
  });

  it('is not what a command gets unless it asks: no handler, no signal caught', () => {
    const before = process.listenerCount('SIGINT');
    const ctx = makeContext({ quiet: true });
    expect(process.listenerCount('SIGINT')).toBe(before);
    expect(ctx.interruptedBy).toBeUndefined();
    ctx.release();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});
