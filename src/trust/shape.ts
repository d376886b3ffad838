/** Shape checks the trust parsers share: what a JSON value read from the repository must look like. */

/** A JSON object (not null, not an array). */
export function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether an object has no keys but `keys` (unknown fields are refused, never ignored). */
export function hasOnly(v: Record<string, unknown>, keys: readonly string[]): boolean {
  return Object.keys(v).every((k) => keys.includes(k));
}
