/**
 * Signed envelopes in the DSSE shape: the signature covers the payload's type
 * and its exact bytes (the pre-authentication encoding below), never a parse
 * of them, and one envelope may carry several signatures (an entry every
 * sysadmin signs). The payload is canonical JSON (canonical.ts), so the bytes
 * signed are the bytes a verifier recomputes.
 */
import { sha256Hex } from '../crypto/hash.js';
import type { ActorSigner } from './actor-key.js';
import { verifySignature } from './actor-key.js';
import { canonicalBytes, type CanonicalValue } from './canonical.js';

/** One signature: who (the key's fingerprint) and the Ed25519 signature, base64. */
export interface EnvelopeSignature {
  keyid: string;
  sig: string;
}

/** A signed payload: its type, its bytes (base64) and the signatures over both. */
export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: EnvelopeSignature[];
}

/** The payload types trust signs: a signature made for one can never be replayed as another. */
export const PAYLOAD_TYPE = {
  registryEntry: 'application/vnd.fole-backup.registry-entry+json',
  request: 'application/vnd.fole-backup.request+json',
  auditEntry: 'application/vnd.fole-backup.audit-entry+json',
  approvalRequest: 'application/vnd.fole-backup.approval-request+json',
  approval: 'application/vnd.fole-backup.approval+json',
  checkpoint: 'application/vnd.fole-backup.checkpoint+json',
} as const;

/** DSSE's pre-authentication encoding: "DSSEv1 <len(type)> <type> <len(body)> <body>", lengths in bytes. */
export function pae(payloadType: string, body: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${body.length} `, 'utf8'),
    body,
  ]);
}

/** Sign `body` (as canonical JSON) as a payload of `payloadType` by each signer, in order. */
export function signEnvelope(payloadType: string, body: CanonicalValue, signers: readonly ActorSigner[]): Envelope {
  const bytes = canonicalBytes(body);
  const message = pae(payloadType, bytes);
  return {
    payloadType,
    payload: bytes.toString('base64'),
    signatures: signers.map((s) => ({ keyid: s.fingerprint, sig: s.sign(message).toString('base64') })),
  };
}

/** The envelope with `signer`'s signature added over the same type and bytes (already there: unchanged). */
export function addSignature(env: Envelope, signer: ActorSigner): Envelope {
  if (env.signatures.some((s) => s.keyid === signer.fingerprint)) return env;
  const sig = signer.sign(pae(env.payloadType, payloadBytes(env))).toString('base64');
  return { ...env, signatures: [...env.signatures, { keyid: signer.fingerprint, sig }] };
}

/** The payload's bytes. */
export function payloadBytes(env: Envelope): Buffer {
  return Buffer.from(env.payload, 'base64');
}

/** SHA-256 (hex) of the payload's bytes: what a chain links to and what an approval binds. */
export function payloadDigest(env: Envelope): string {
  return sha256Hex(payloadBytes(env));
}

/** Whether `keyid`'s signature in the envelope verifies with `publicKey` (SPKI DER base64) over type and payload. */
export function hasValidSignature(env: Envelope, keyid: string, publicKey: string): boolean {
  const message = pae(env.payloadType, payloadBytes(env));
  return env.signatures.some(
    (s) => s.keyid === keyid && verifySignature(publicKey, message, Buffer.from(s.sig, 'base64')),
  );
}

/** Whether a value has the envelope's shape (the caller then checks its type, payload and signatures). */
export function isEnvelope(v: unknown): v is Envelope {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.payloadType === 'string' &&
    typeof e.payload === 'string' &&
    /^[A-Za-z0-9+/]*={0,2}$/.test(e.payload) &&
    Array.isArray(e.signatures) &&
    e.signatures.length <= 16 &&
    e.signatures.every(
      (s: unknown) =>
        typeof s === 'object' &&
        s !== null &&
        typeof (s as Record<string, unknown>).keyid === 'string' &&
        typeof (s as Record<string, unknown>).sig === 'string',
    )
  );
}

/** The payload parsed as JSON, checked to be canonical: a payload that re-encodes differently is refused. */
export function parsePayload(env: Envelope): unknown {
  const bytes = payloadBytes(env);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  try {
    if (!canonicalBytes(value as CanonicalValue).equals(bytes)) return undefined;
  } catch {
    return undefined;
  }
  return value;
}
