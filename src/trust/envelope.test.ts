/**
 * A signed envelope binds its payload type and its exact payload bytes: nothing can be changed, moved to another
 * type, or attributed to another key without the signature failing, and a payload that is not canonical JSON is
 * never parsed into a value (so one value has one signed form).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateActorKey, signerFromPem, type ActorSigner } from './actor-key.js';
import {
  hasValidSignature,
  isEnvelope,
  PAYLOAD_TYPE,
  pae,
  parsePayload,
  payloadBytes,
  payloadDigest,
  signEnvelope,
  type Envelope,
} from './envelope.js';

const newSigner = (): ActorSigner => signerFromPem(generateActorKey().privatePem, 'test key');
const alice = newSigner();
const bob = newSigner();
const T = PAYLOAD_TYPE.request;

/** An envelope whose payload is exactly `text`, signed by `signer` over type and bytes. */
function rawEnvelope(text: string, signer: ActorSigner, type: string = T): Envelope {
  const bytes = Buffer.from(text, 'utf8');
  return {
    payloadType: type,
    payload: bytes.toString('base64'),
    signatures: [{ keyid: signer.fingerprint, sig: signer.sign(pae(type, bytes)).toString('base64') }],
  };
}

describe('pre-authentication encoding', () => {
  it('matches the DSSE specification vector', () => {
    expect(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString('utf8')).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });

  it('counts lengths in bytes, not characters, so type and body cannot trade bytes', () => {
    expect(pae('\u00e9', Buffer.from('\u{1f600}')).toString('utf8')).toBe('DSSEv1 2 \u00e9 4 \u{1f600}');
    expect(pae('a 1 b', Buffer.from('c'))).not.toEqual(pae('a', Buffer.from('b 1 c')));
    expect(pae('', Buffer.alloc(0)).toString('utf8')).toBe('DSSEv1 0  0 ');
  });
});

describe('signed envelopes', () => {
  it('a signature verifies with the signer key, and its payload is the canonical bytes of the body', () => {
    const env = signEnvelope(T, { b: 1, a: 'x' }, [alice]);
    expect(payloadBytes(env).toString('utf8')).toBe('{"a":"x","b":1}');
    expect(env.signatures).toEqual([{ keyid: alice.fingerprint, sig: expect.any(String) }]);
    expect(hasValidSignature(env, alice.fingerprint, alice.publicKey)).toBe(true);
    expect(hasValidSignature(env, alice.fingerprint, bob.publicKey)).toBe(false);
    expect(hasValidSignature(env, bob.fingerprint, bob.publicKey)).toBe(false);
    expect(parsePayload(env)).toEqual({ a: 'x', b: 1 });
  });

  it('changing the payload type breaks the signature (a request cannot pass as a registry entry)', () => {
    const env = signEnvelope(T, { op: 'backup' }, [alice]);
    for (const t of [PAYLOAD_TYPE.registryEntry, PAYLOAD_TYPE.approval, `${T} `, T.toUpperCase()])
      expect(hasValidSignature({ ...env, payloadType: t }, alice.fingerprint, alice.publicKey), t).toBe(false);
  });

  it('changing any one payload byte breaks the signature', () => {
    const env = signEnvelope(T, { actor: 'alice', op: 'backup' }, [alice]);
    const bytes = payloadBytes(env);
    for (let i = 0; i < bytes.length; i++) {
      const changed = Buffer.from(bytes);
      changed[i] = (changed[i] as number) ^ 0x01;
      const forged = { ...env, payload: changed.toString('base64') };
      expect(hasValidSignature(forged, alice.fingerprint, alice.publicKey), `byte ${i}`).toBe(false);
    }
    const longer = { ...env, payload: Buffer.concat([bytes, Buffer.from(' ')]).toString('base64') };
    expect(hasValidSignature(longer, alice.fingerprint, alice.publicKey)).toBe(false);
  });

  it('a signature relabelled with another keyid does not count for either key', () => {
    const env = signEnvelope(T, { n: 1 }, [alice]);
    const relabelled: Envelope = {
      ...env,
      signatures: [{ keyid: bob.fingerprint, sig: env.signatures[0]?.sig ?? '' }],
    };
    expect(hasValidSignature(relabelled, bob.fingerprint, bob.publicKey)).toBe(false);
    expect(hasValidSignature(relabelled, alice.fingerprint, alice.publicKey)).toBe(false);
  });

  it('carries several signatures, each verifying only for its own key', () => {
    const carol = newSigner();
    const env = signEnvelope(T, { n: 2 }, [alice, bob]);
    expect(env.signatures.map((s) => s.keyid)).toEqual([alice.fingerprint, bob.fingerprint]);
    expect(hasValidSignature(env, alice.fingerprint, alice.publicKey)).toBe(true);
    expect(hasValidSignature(env, bob.fingerprint, bob.publicKey)).toBe(true);
    expect(hasValidSignature(env, carol.fingerprint, carol.publicKey)).toBe(false);
    // swapping the two signatures' keyids breaks both
    const [sa, sb] = env.signatures as [{ keyid: string; sig: string }, { keyid: string; sig: string }];
    const swapped: Envelope = {
      ...env,
      signatures: [
        { ...sa, sig: sb.sig },
        { ...sb, sig: sa.sig },
      ],
    };
    expect(hasValidSignature(swapped, alice.fingerprint, alice.publicKey)).toBe(false);
    expect(hasValidSignature(swapped, bob.fingerprint, bob.publicKey)).toBe(false);
    // an unsigned envelope verifies for nobody
    expect(hasValidSignature(signEnvelope(T, { n: 2 }, []), alice.fingerprint, alice.publicKey)).toBe(false);
  });

  it('a garbage signature is false, never a throw', () => {
    const env = signEnvelope(T, { n: 3 }, [alice]);
    for (const sig of ['', 'AAAA', '!!!!', Buffer.alloc(64).toString('base64'), Buffer.alloc(65).toString('base64')]) {
      const bad: Envelope = { ...env, signatures: [{ keyid: alice.fingerprint, sig }] };
      expect(hasValidSignature(bad, alice.fingerprint, alice.publicKey), sig).toBe(false);
    }
  });

  it('payloadDigest is the SHA-256 of the payload bytes', () => {
    const env = signEnvelope(T, { z: [1, 2] }, []);
    expect(payloadDigest(env)).toBe(createHash('sha256').update('{"z":[1,2]}').digest('hex'));
    expect(payloadDigest(signEnvelope(T, { z: [2, 1] }, []))).not.toBe(payloadDigest(env));
  });
});

describe('parsing a payload', () => {
  it('refuses a validly signed payload that is JSON but not canonical', () => {
    for (const text of [
      '{"a":1, "b":2}', // whitespace
      '{"a":1,"b":2}\n',
      ' {"a":1,"b":2}',
      '{"b":2,"a":1}', // key order
      '{"a":1,"a":1,"b":2}', // a duplicate key
      '{"a":1.0,"b":2}', // a number not in its shortest form
      '{"a":1e0,"b":2}',
      '{"a":"\\u0041","b":2}', // an escape JSON.stringify would not write
      '{"a":"\\/","b":2}',
      '\ufeff{"a":1,"b":2}', // a byte order mark
      '{"a":1.5,"b":2}', // a float: outside the subset
    ]) {
      const env = rawEnvelope(text, alice);
      expect(hasValidSignature(env, alice.fingerprint, alice.publicKey), text).toBe(true);
      expect(parsePayload(env), text).toBeUndefined();
    }
    expect(parsePayload(rawEnvelope('{"a":1,"b":2}', alice))).toEqual({ a: 1, b: 2 });
  });

  it('refuses a payload that is not JSON or not UTF-8', () => {
    for (const text of ['', '{', 'undefined', "{'a':1}"])
      expect(parsePayload(rawEnvelope(text, alice)), text).toBeUndefined();
    // an invalid UTF-8 byte decodes to U+FFFD, which re-encodes to other bytes
    const invalid: Envelope = {
      payloadType: T,
      payload: Buffer.from([0x22, 0xff, 0x22]).toString('base64'),
      signatures: [],
    };
    expect(parsePayload(invalid)).toBeUndefined();
  });
});

describe('isEnvelope', () => {
  const good = signEnvelope(T, { n: 1 }, [alice]);

  it('accepts an envelope, with no signatures or up to 16', () => {
    expect(isEnvelope(good)).toBe(true);
    expect(isEnvelope({ ...good, signatures: [] })).toBe(true);
    expect(isEnvelope({ ...good, signatures: Array(16).fill(good.signatures[0]) })).toBe(true);
  });

  it('refuses every other shape', () => {
    const sig = good.signatures[0];
    const bad: unknown[] = [
      null,
      undefined,
      'envelope',
      [good],
      {},
      { ...good, payloadType: 1 },
      { payload: good.payload, signatures: good.signatures },
      { ...good, payload: undefined },
      { ...good, payload: 'not base64!' },
      { ...good, payload: 'YQ===' },
      { ...good, payload: 'YQ==\n' },
      { ...good, signatures: undefined },
      { ...good, signatures: {} },
      { ...good, signatures: [null] },
      { ...good, signatures: ['sig'] },
      { ...good, signatures: [{ keyid: 1, sig: 'x' }] },
      { ...good, signatures: [{ keyid: 'k' }] },
      { ...good, signatures: [{ sig: 'x' }] },
      { ...good, signatures: Array(17).fill(sig) },
    ];
    for (const v of bad) expect(isEnvelope(v), JSON.stringify(v)?.slice(0, 80)).toBe(false);
  });
});
