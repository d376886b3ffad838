import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { comparePaths } from './snapshot.js';

/** The definition of tree order: component by component, code unit order within a component. */
function byComponents(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

describe('comparePaths', () => {
  it('orders a directory before its contents and its contents before a sibling that sorts after it by bytes', () => {
    const paths = ['a-c', 'a/b', 'a', 'a.txt', 'a/b/c', 'ab', 'a0'];
    expect([...paths].sort(comparePaths)).toEqual(['a', 'a/b', 'a/b/c', 'a-c', 'a.txt', 'a0', 'ab']);
  });

  it('has the sign of the component-by-component comparison for any two paths', () => {
    const segment = fc.string({
      unit: fc.constantFrom('a', 'b', '-', '.', '0', 'é', '\u00ff', ' ', '~'),
      minLength: 1,
      maxLength: 4,
    });
    const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
    fc.assert(
      fc.property(path, path, (a, b) => {
        expect(Math.sign(comparePaths(a, b))).toBe(Math.sign(byComponents(a, b)));
      }),
      { numRuns: 5000 },
    );
  });
});
