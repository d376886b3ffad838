/**
 * Canonical JSON (RFC 8785, JCS) for the values trust signs and hashes: the same
 * value always gives the same bytes, so a signature or a digest binds the
 * content, not one writer's formatting.
 *
 * Trust records hold only strings, safe integers, booleans, null, arrays and
 * plain objects. For that subset JCS is: object keys sorted by UTF-16 code units
 * (JavaScript's default sort), no whitespace, strings escaped as
 * JSON.stringify escapes them, integers in their shortest form. Anything else
 * (a fraction, NaN, undefined, a Date, a Buffer) is refused rather than given a
 * second canonical form: a float's JCS form needs the full ES number printing
 * rules, and no trust record needs one.
 */

/** A value canonicalJson accepts. */
export type CanonicalValue =
  | string
  | number
  | boolean
  | null
  | readonly CanonicalValue[]
  | { readonly [key: string]: CanonicalValue | undefined };

/** The RFC 8785 serialization of `value`; throws on a value outside the subset above. Keys whose value is
 * `undefined` are left out, as JSON.stringify leaves them out. */
export function canonicalJson(value: CanonicalValue): string {
  return write(value, 0);
}

/** canonicalJson as UTF-8 bytes: what is signed and hashed. */
export function canonicalBytes(value: CanonicalValue): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

/** Nesting deeper than this is refused: no trust record needs it, and a hostile one must not exhaust the stack. */
const MAX_DEPTH = 32;

function write(value: CanonicalValue, depth: number): string {
  if (depth > MAX_DEPTH) throw new TypeError('canonical JSON: nested too deeply');
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      if (!isWellFormed(value)) throw new TypeError('canonical JSON: a string holds a lone surrogate');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON: ${value} is not a safe integer`);
      return Object.is(value, -0) ? '0' : String(value);
    case 'object': {
      // Array.from visits holes (as undefined, refused below); map would skip them and print "[1,,2]"
      if (Array.isArray(value)) return `[${Array.from(value, (v: CanonicalValue) => write(v, depth + 1)).join(',')}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new TypeError('canonical JSON: not a plain object');
      const obj = value as { readonly [key: string]: CanonicalValue | undefined };
      const parts: string[] = [];
      for (const key of Object.keys(obj).sort()) {
        const v = obj[key];
        if (v === undefined) continue;
        if (!isWellFormed(key)) throw new TypeError('canonical JSON: a key holds a lone surrogate');
        parts.push(`${JSON.stringify(key)}:${write(v, depth + 1)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON: a ${typeof value} has no JSON form`);
  }
}

/** Whether a string is valid UTF-16 (no lone surrogate): JCS requires it, and one would not survive UTF-8. */
function isWellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}
