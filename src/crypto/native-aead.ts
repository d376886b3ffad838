/**
 * The AES-256-GCM of native/aead.c (see its header for why it exists): seal into and open into buffers the caller
 * owns, with the key schedule kept per thread. Repository.open and init ask for it first, so a repository is never
 * half-opened where the module is missing.
 */
import { type NativeModule, nativeModule } from '../native/module.js';

export type NativeAead = Pick<NativeModule, 'seal' | 'open'>;

/** The module's AES-256-GCM; INTERNAL, saying how to build it, when the module cannot be loaded. */
export function nativeAead(): NativeAead {
  return nativeModule();
}
