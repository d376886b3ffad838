import { describe, expect, it } from 'vitest';
import { FoleBackupError } from '../errors.js';
import { loadNativeModule } from './module.js';

describe('the native module missing', () => {
  it('is INTERNAL with the command that builds it, never a damaged key or blob', () => {
    let caught: unknown;
    try {
      loadNativeModule('../../native/build/Release/no-such-module.node');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FoleBackupError);
    expect((caught as FoleBackupError).code).toBe('INTERNAL');
    expect((caught as FoleBackupError).hint).toMatch(/npm install/);
  });
});
