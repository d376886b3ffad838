/**
 * createDraftFile: a file written piece by piece before its name is known (an open pack). Its bytes reach the
 * disk as they come; publishing gives it its name as writeFileAtomic would; a failure or a discard leaves nothing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRun, onTmpfs } from '../../test/needs.js';
import { scratchDir } from '../../test/scratch.js';
import { createDraftFile } from './durable.js';

const scratch = scratchDir('fole-draft-');

const root0 = process.getuid?.() === 0;

describe('createDraftFile', () => {
  it('writes its appends as they come, in order, and publishes them under the final name', async () => {
    const dir = scratch();
    const draft = createDraftFile(dir);
    const a = randomBytes(200_000);
    const b = randomBytes(3);
    const c = randomBytes(1_000_000);
    const first = draft.append([a, Buffer.alloc(0), b]);
    const second = draft.append([c]);
    await Promise.all([first, second]);
    // on disk before it has a name: a temp file of every byte so far
    const temps = readdirSync(dir);
    expect(temps).toHaveLength(1);
    expect(temps[0]).toMatch(/^\.tmp-/);
    expect(statSync(join(dir, temps[0] as string)).size).toBe(a.length + b.length + c.length);
    const final = join(dir, 'sub', 'final');
    mkdirSync(join(dir, 'sub'));
    await draft.publish(final);
    expect(readFileSync(final).equals(Buffer.concat([a, b, c]))).toBe(true);
    expect(statSync(final).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['sub']);
    await expect(draft.append([b])).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(draft.publish(join(dir, 'again'))).rejects.toMatchObject({ code: 'INTERNAL' });
    // a discard after the publish leaves the published file alone
    await draft.discard();
    expect(existsSync(final)).toBe(true);
  });

  it('leaves nothing when discarded, however often', async () => {
    const dir = scratch();
    const draft = createDraftFile(dir);
    await draft.append([randomBytes(1000)]);
    await Promise.all([draft.discard(), draft.discard()]);
    expect(readdirSync(dir)).toEqual([]);
    await expect(draft.append([randomBytes(1)])).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('fails its appends and its publish when its folder does not exist, and makes nothing', async () => {
    const dir = scratch();
    const draft = createDraftFile(join(dir, 'missing'));
    await expect(draft.append([randomBytes(10)])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(draft.publish(join(dir, 'final'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it.runIf(canRun(root0, 'root, to mount a small tmpfs'))(
    'fails with NO_SPACE on a full disk, publishes nothing and removes its temp file',
    async () => {
      const dir = scratch();
      const small = join(dir, 'small');
      await onTmpfs(small, '256k', async () => {
        const draft = createDraftFile(small);
        const ok = draft.append([randomBytes(100_000)]);
        const full = draft.append([randomBytes(400_000)]);
        await ok;
        await expect(full).rejects.toMatchObject({ code: 'NO_SPACE' });
        // an append after the failure may fit; the draft has failed all the same
        await draft.append([randomBytes(10)]).catch(() => undefined);
        await expect(draft.publish(join(small, 'final'))).rejects.toMatchObject({ code: 'NO_SPACE' });
        expect(readdirSync(small)).toEqual([]);
      });
    },
  );
});
