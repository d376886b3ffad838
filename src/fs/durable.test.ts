/**
 * createDraftFile: a file written piece by piece before its name is known (an open pack). Its bytes reach the
 * disk as they come; publishing gives it its name as writeFileAtomic would; a failure or a discard leaves nothing.
 * writeFileAtomic and writeFileExclusive are drafts written whole: exact bytes or no file, errors that name the
 * file asked for (never the temp file), no temp file left.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRun, onTmpfs } from '../../test/needs.js';
import { scratchDir } from '../../test/scratch.js';
import { createDraftFile, writeFileAtomic, writeFileExclusive } from './durable.js';

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

describe('writeFileAtomic and writeFileExclusive', () => {
  async function* pieces(...parts: Buffer[]): AsyncGenerator<Uint8Array> {
    for (const p of parts) yield p;
  }

  it('write one buffer, parts, or a stream, exactly, at the mode asked, and leave no temp file', async () => {
    const dir = scratch();
    const [a, b] = [randomBytes(70_000), randomBytes(5)];
    await writeFileAtomic(join(dir, 'one'), a);
    await writeFileAtomic(join(dir, 'parts'), [a, Buffer.alloc(0), b], { mode: 0o640 });
    await writeFileAtomic(join(dir, 'stream'), pieces(a, b));
    expect(readFileSync(join(dir, 'one')).equals(a)).toBe(true);
    expect(readFileSync(join(dir, 'parts')).equals(Buffer.concat([a, b]))).toBe(true);
    expect(statSync(join(dir, 'parts')).mode & 0o777).toBe(0o640);
    expect(readFileSync(join(dir, 'stream')).equals(Buffer.concat([a, b]))).toBe(true);
    // atomic replaces what is there
    await writeFileAtomic(join(dir, 'one'), b);
    expect(readFileSync(join(dir, 'one')).equals(b)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['one', 'parts', 'stream']);
  });

  it('exclusive never replaces a file: ALREADY_EXISTS, the first one kept, no temp file left', async () => {
    const dir = scratch();
    await writeFileExclusive(join(dir, 'chain'), Buffer.from('first'));
    await expect(writeFileExclusive(join(dir, 'chain'), Buffer.from('second'))).rejects.toMatchObject({
      code: 'ALREADY_EXISTS',
    });
    expect(readFileSync(join(dir, 'chain'), 'utf8')).toBe('first');
    expect(readdirSync(dir)).toEqual(['chain']);
  });

  it('name the file asked for in errors, leaving nothing, with a missing folder or a failing stream', async () => {
    const dir = scratch();
    const missing = join(dir, 'missing', 'file');
    const err = await writeFileAtomic(missing, randomBytes(10)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NOT_FOUND', path: missing });
    expect((err as Error).message).not.toMatch(/\.tmp-/);
    writeFileSync(join(dir, 'kept'), 'old');
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield randomBytes(1000);
      throw new Error('the upload was cut');
    }
    const cut = await writeFileAtomic(join(dir, 'kept'), failing()).catch((e: unknown) => e);
    expect(cut).toMatchObject({ code: 'WRITE_ERROR', path: join(dir, 'kept') });
    expect((cut as Error).message).toContain('the upload was cut');
    expect(readFileSync(join(dir, 'kept'), 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['kept']);
  });

  it.runIf(canRun(root0, 'root, to mount a small tmpfs'))(
    'fail with NO_SPACE naming the file on a full disk, and leave the old file and no temp file',
    async () => {
      const small = join(scratch(), 'small');
      await onTmpfs(small, '256k', async () => {
        const file = join(small, 'config.json');
        await writeFileAtomic(file, Buffer.from('old'));
        const err = await writeFileAtomic(file, randomBytes(400_000)).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'NO_SPACE', path: file });
        expect(readFileSync(file, 'utf8')).toBe('old');
        expect(readdirSync(small)).toEqual(['config.json']);
      });
    },
  );
});
