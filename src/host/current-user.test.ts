import { userInfo } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { currentUser } from './current-user.js';

function passwdName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

describe('currentUser', () => {
  afterEach(() => {
    vi.doUnmock('node:os');
    vi.resetModules();
    vi.unstubAllEnvs();
  });

  it.runIf(passwdName() !== undefined)("is the passwd name of this process's user", () => {
    expect(currentUser()).toBe(passwdName());
  });

  it('falls back to $USER when the uid has no passwd entry (userInfo throws, as in some containers)', async () => {
    vi.doMock('node:os', async (original) => ({
      ...(await original<typeof import('node:os')>()),
      userInfo: () => {
        throw new Error('ENOENT: no such file or directory, uv_os_get_passwd');
      },
    }));
    vi.resetModules();
    vi.stubEnv('USER', 'someone-else');
    const { currentUser: withoutPasswd } = await import('./current-user.js');
    expect(withoutPasswd()).toBe('someone-else');
  });
});
