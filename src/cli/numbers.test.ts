import fc from 'fast-check';
import { fuzz } from '../../test/fuzz.js';
import { describe, expect, it } from 'vitest';
import { FoleBackupError } from '../errors.js';
import { parsePercentage, parseSeconds, parseWholeNumber } from './numbers.js';

const usage = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FoleBackupError);
    return (err as FoleBackupError).code;
  }
  return 'accepted';
};

describe('numbers on the command line', () => {
  it('reads plain decimal digits only', () => {
    expect(parseWholeNumber('--n', '42', { min: 1, max: 100 })).toBe(42);
    expect(parseWholeNumber('--n', '0042', { min: 1, max: 100 })).toBe(42);
    expect(parseSeconds('--s', '2.5', { max: 60 })).toBe(2500);
    expect(parseSeconds('--s', '0', { max: 60 })).toBe(0);
    expect(parsePercentage('--p', '20%')).toBe(0.2);
    expect(parsePercentage('--p', '12.5')).toBe(0.125);
    for (const text of [
      '1e3',
      '0x10',
      '0b1',
      '0o7',
      '-1',
      '+1',
      ' 5',
      '5 ',
      '',
      'Infinity',
      'NaN',
      '1_000',
      '５',
      '101',
      '99999999999999999999',
    ]) {
      expect(
        usage(() => parseWholeNumber('--n', text, { min: 1, max: 100 })),
        text,
      ).toBe('USAGE');
    }
    for (const text of ['1e3', '-1', '.5', '5.', '0x10', 'Infinity', '86401', ''])
      expect(
        usage(() => parseSeconds('--s', text, { max: 86_400 })),
        text,
      ).toBe('USAGE');
    expect(usage(() => parseSeconds('--s', '0', { max: 60, positive: true }))).toBe('USAGE');
    for (const text of ['101%', '-1%', '1e1%', '%', '20%%', ' 20%'])
      expect(
        usage(() => parsePercentage('--p', text)),
        text,
      ).toBe('USAGE');
  });

  it('any string is a value within bounds or a usage error, never NaN or a crash', () => {
    const any = fc.oneof(
      fc.string(),
      fc.double().map(String),
      fc.bigInt().map(String),
      fc.stringMatching(/^[0-9.e+x%-]{0,12}$/),
    );
    fuzz(
      fc.property(any, (text) => {
        const checks: [() => number, (n: number) => boolean][] = [
          [
            () => parseWholeNumber('--n', text, { min: 1, max: 1_000_000 }),
            (n) => Number.isSafeInteger(n) && n >= 1 && n <= 1_000_000,
          ],
          [() => parseSeconds('--s', text, { max: 86_400 }), (n) => Number.isFinite(n) && n >= 0 && n <= 86_400_000],
          [() => parsePercentage('--p', text), (n) => n >= 0 && n <= 1],
        ];
        for (const [parse, ok] of checks) {
          let n: number;
          try {
            n = parse();
          } catch (err) {
            expect((err as FoleBackupError).code).toBe('USAGE');
            continue;
          }
          expect(ok(n)).toBe(true);
          expect(/^[0-9.%]+$/.test(text)).toBe(true);
        }
      }),
      3000,
    );
  });
});
