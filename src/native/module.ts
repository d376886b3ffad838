/**
 * fole_native.node, built from native/ by `npm install`: AES-256-GCM into the caller's buffers (native/aead.c),
 * directories and files read ahead of the scan and the capture (native/read-ahead.c), and restored files' bytes sent
 * on to the disk (native/write-back.c); each file's header says why it is native. Loaded on first use, so a command
 * that needs none of it works even where the module is missing, and one that does says how to build it.
 */
import { createRequire } from 'node:module';
import { FoleBackupError } from '../errors.js';

export interface NativeModule {
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
    out: Uint8Array,
    offset: number,
  ): number;
  open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): boolean;
  /** Read the directory at `path` on one of the module's threads, and let it go; never follows a symlink. */
  readAhead(path: string | Uint8Array): void;
  /** Have the kernel read the regular file at `path` into its page cache, in the background; never via a symlink. */
  readFileAhead(path: string | Uint8Array): void;
  /** Have the kernel start writing `length` bytes of `fd` from `offset` back to the disk, without waiting. */
  writeBack(fd: number, offset: number, length: number): void;
}

// src/native/ and dist/native/ are both two levels below the package root, where native/ is
const MODULE = '../../native/build/Release/fole_native.node';

let loaded: NativeModule | undefined;

/** The module, loaded on first use; INTERNAL, saying how to build it, when it cannot be loaded. */
export function nativeModule(): NativeModule {
  loaded ??= loadNativeModule(MODULE);
  return loaded;
}

/** The module, or none where it cannot be loaded: for work it only speeds up (reading ahead). */
export function optionalNativeModule(): NativeModule | undefined {
  try {
    return nativeModule();
  } catch {
    return undefined;
  }
}

/** Load the module from `path` (relative to this file): nativeModule's loader, apart for its test. */
export function loadNativeModule(path: string): NativeModule {
  try {
    return createRequire(import.meta.url)(path) as NativeModule;
  } catch (err) {
    throw new FoleBackupError('INTERNAL', 'the native module of fole-backup (native/) is not built', {
      cause: err,
      hint: "run `npm install` in fole-backup's folder: it builds the module with g++, make and python3",
    });
  }
}
