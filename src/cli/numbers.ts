/**
 * Numbers given on the command line, parsed strictly: plain decimal digits
 * (a fraction where the value allows one), no sign, exponent, hex, binary or
 * surrounding space, and within bounds. `Number()` alone reads `1e3` as 1000,
 * `0x10` as 16 and ` ` as 0, so a typo became a different setting.
 */
import { UsageError } from './output.js';

const WHOLE = /^\d+$/;
const DECIMAL = /^\d+(?:\.\d+)?$/;

/** A whole number from `min` to `max`. */
export function parseWholeNumber(flag: string, text: string, bounds: { min: number; max: number }): number {
  // a string of more digits than max has cannot be within bounds; checking first keeps Number() exact
  const digits = text.replace(/^0+(?=\d)/, '');
  const n = WHOLE.test(text) && digits.length <= String(bounds.max).length ? Number(digits) : NaN;
  if (!(n >= bounds.min && n <= bounds.max)) {
    throw new UsageError(
      `${flag} must be a whole number from ${bounds.min} to ${bounds.max}, not ${JSON.stringify(text)}`,
      'write it in plain decimal digits',
    );
  }
  return n;
}

/** A number of seconds from `min` (exclusive when `positive`) to `max`, fractions allowed; returned in milliseconds. */
export function parseSeconds(flag: string, text: string, bounds: { max: number; positive?: boolean }): number {
  const n = DECIMAL.test(text) && text.length <= 20 ? Number(text) : NaN;
  const low = bounds.positive === true ? n > 0 : n >= 0;
  if (!(low && n <= bounds.max)) {
    throw new UsageError(
      `${flag} must be a number of seconds ${bounds.positive === true ? 'above 0' : 'from 0'} to ${bounds.max}` +
        `, not ${JSON.stringify(text)}`,
      'write it in plain decimal digits, e.g. 30 or 2.5',
    );
  }
  return Math.round(n * 1000);
}

/** A percentage from 0 to 100, with or without a trailing %; returned as a fraction (0..1). */
export function parsePercentage(flag: string, text: string): number {
  const body = text.endsWith('%') ? text.slice(0, -1) : text;
  const n = DECIMAL.test(body) && body.length <= 20 ? Number(body) : NaN;
  if (!(n >= 0 && n <= 100))
    throw new UsageError(`${flag} must be a percentage from 0 to 100, like 20%, not ${JSON.stringify(text)}`);
  return n / 100;
}
