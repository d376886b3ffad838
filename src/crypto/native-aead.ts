/**
 * The AES-256-GCM of native/aead.c (built by `npm install`, see its header
 * for why it exists): seal into and open into buffers the caller owns, with
 * the key schedule kept per thread. Loaded on first use (Repository.open and
 * init ask for it first), so a command that opens no repository works even
 * where the module is missing, and one that does says how to build it.
 */
import { createRequire } from 'node:module';
import { FoleBackupError } from '../errors.js';

interface NativeAead {
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
    out: Uint8Array,
    offset: number,
  ): number;
  open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): boolean;
}

// src/crypto/ and dist/crypto/ are both two levels below the package root, where native/ is
const MODULE = '../../native/build/Release/fole_native.node';

let loaded: NativeAead | undefined;

/** The module, loaded on first use; INTERNAL, saying how to build it, when it cannot be loaded. */
export function nativeAead(): NativeAead {
  loaded ??= loadNativeAead(MODULE);
  return loaded;
}

/** Load the module from `path` (relative to this file): nativeAead's loader, apart for its test. */
export function loadNativeAead(path: string): NativeAead {
  try {
    return createRequire(import.meta.url)(path) as NativeAead;
  } catch (err) {
    throw new FoleBackupError('INTERNAL', 'the native encryption module (native/aead.c) is not built', {
      cause: err,
      hint: "run `npm install` in fole-backup's folder: it builds the module with g++, make and python3",
    });
  }
}
