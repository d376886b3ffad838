import { createHash } from 'node:crypto';

/** SHA-256 as lowercase hex. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export const HEX64 = /^[0-9a-f]{64}$/;
