/**
 * The audit log end to end through the real CLI: every command that opens the
 * repository leaves an entry (refusals too), sensitive paths are redactable
 * without touching the chain, and every way of breaking the log — a flipped
 * byte, a deleted entry, two swapped, a dropped tail, an export edited — is
 * found and named.
 */
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from './cli-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { makeTrustWorld, type TrustWorld } from './trust-world.js';

let w: TrustWorld;
let dir: string;
let repoDir: string;
let storageRoot: string;
const as = (name: string): string[] => w.as(name);
const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => w.cli(args, extra);

interface Entry {
  seq: number;
  op: string;
  actor: { name: string; kind: string; authenticated: boolean };
  result: { status: string; code?: string };
  args: (string | { redactable: string })[];
  disclosed: Record<string, string>;
  signedBy: string | null;
  backupIds: string[];
}

async function entries(args: string[] = []): Promise<Entry[]> {
  const r = await cli(['audit', 'log', '--json', ...args, ...as('alice')]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { entries: Entry[] }).entries;
}

const auditDir = (): string => join(repoDir, 'audit');
const digestOf = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

beforeAll(async () => {
  w = await makeTrustWorld('fole-audit-cli-', ['olga']);
  ({ dir, repoDir, storageRoot } = w);
  await w.add('olga', 'human', 'auditor');
  const b = await cli(['backup', '--storage-root', storageRoot, '--fole-version', '2.3.1', ...as('alice')]);
  expect(b.code, b.stderr).toBe(0);
  expect((await cli(['list'])).code).toBe(3); // refused: no identity
  expect((await cli(['prune', ...as('olga')])).code).toBe(3); // refused: no permission
}, 120_000);

afterAll(() => w.cleanup());

describe('what the log records', () => {
  it('has an entry for every command that opened the repository, refusals too, signed if authenticated', async () => {
    const e = await entries();
    expect(e.map((x) => [x.op, x.actor.name, x.result.status, x.result.code ?? null, x.signedBy])).toEqual([
      ['actor-bootstrap', expect.any(String), 'ok', null, null],
      ['actor-add', 'alice', 'ok', null, 'alice'],
      ['backup', 'alice', 'ok', null, 'alice'],
      ['list', 'unknown', 'stop', 'PERMISSION_DENIED', null],
      ['prune', 'olga', 'stop', 'PERMISSION_DENIED', null],
    ]);
    // the refused caller is recorded unauthenticated, whatever name they gave
    expect(e[4]?.actor).toEqual({ name: 'olga', kind: 'human', authenticated: false });
    expect(e[2]?.backupIds).toHaveLength(1);
    expect(e.map((x) => x.seq)).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps a sensitive path out of the entry: a commitment in it, the value in a disclosure', async () => {
    const b = (await entries(['--op', 'backup']))[0] as Entry;
    expect(b.args).toContainEqual({ redactable: 'storageRoot' });
    expect(b.args).not.toContain(storageRoot);
    expect(b.disclosed).toEqual({ storageRoot });
    // no entry object holds the path, nor the password
    for (const f of readdirSync(auditDir())) {
      const text = readFileSync(join(auditDir(), f)).toString('latin1');
      expect(text).not.toContain(TEST_PASSWORD);
    }
  });

  it('filters by time, actor and operation', async () => {
    expect((await entries(['--by', 'olga'])).map((x) => x.op)).toEqual(['prune']);
    expect(await entries(['--since', '2999-01-01'])).toEqual([]);
    const bad = await cli(['audit', 'log', '--since', 'yesterday-ish', ...as('alice')]);
    expect(bad.code).toBe(2);
  });
});

describe('redaction', () => {
  it('deletes only the disclosure: the entry stays byte-identical and the chain verifies', async () => {
    const b = (await entries(['--op', 'backup']))[0] as Entry;
    const entryFile = join(auditDir(), String(b.seq).padStart(10, '0'));
    const before = digestOf(entryFile);
    // an auditor may read but not redact
    const denied = await cli(['audit', 'redact', String(b.seq), '--field', 'storageRoot', ...as('olga')]);
    expect(denied.code).toBe(3);
    expect(denied.stderr).toMatch(/audit\.redact/);
    const r = await cli(['audit', 'redact', String(b.seq), '--field', 'storageRoot', ...as('alice')]);
    expect(r.code, r.stderr).toBe(0);
    expect(digestOf(entryFile)).toBe(before);
    const after = (await entries(['--op', 'backup']))[0] as Entry;
    expect(after.disclosed).toEqual({});
    const text = await cli(['audit', 'log', '--op', 'backup', ...as('alice')]);
    expect(text.stdout).toContain('<redacted storageRoot>');
    expect(text.stdout).not.toContain(storageRoot);
    const v = await cli(['audit', 'verify', ...as('alice')]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // the redaction is audited itself
    expect((await entries(['--op', 'audit-redact'])).map((x) => x.result.status)).toEqual(['stop', 'ok']);
    const again = await cli(['audit', 'redact', String(b.seq), '--field', 'storageRoot', ...as('alice')]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no disclosed value storageRoot/);
  });
});

describe('tampering', () => {
  /** Break the log with `damage`, expect `audit verify` to name entry `seq`, then put it back. */
  async function expectBroken(damage: () => void, seq: number, reason: RegExp): Promise<void> {
    const saved = join(dir, 'audit-saved');
    rmSync(saved, { recursive: true, force: true });
    cpSync(auditDir(), saved, { recursive: true });
    try {
      damage();
      // a fresh machine: nothing pinned, so the log itself must show the damage
      const r = await cli(['audit', 'verify', '--json', ...as('alice')], { FOLE_BACKUP_STATE_DIR: join(dir, 'fresh') });
      expect(r.code, r.stderr).toBe(3);
      const out = JSON.parse(r.stdout) as {
        ok: boolean;
        firstBad: { seq: number; reason: string };
        stop: { code: string };
      };
      expect(out.ok).toBe(false);
      expect(out.stop.code).toBe('TRUST_BROKEN');
      expect(out.firstBad.seq).toBe(seq);
      expect(out.firstBad.reason).toMatch(reason);
    } finally {
      rmSync(auditDir(), { recursive: true, force: true });
      cpSync(saved, auditDir(), { recursive: true });
      rmSync(join(dir, 'fresh'), { recursive: true, force: true });
    }
  }
  const entryPath = (seq: number): string => join(auditDir(), String(seq).padStart(10, '0'));

  it('names a flipped byte, a deleted entry and two swapped entries', async () => {
    await expectBroken(
      () => {
        const b = readFileSync(entryPath(2));
        b[b.length - 5] = (b[b.length - 5] as number) ^ 1;
        writeFileSync(entryPath(2), b);
      },
      2,
      /unreadable/,
    );
    await expectBroken(() => rmSync(entryPath(1)), 1, /missing/);
    await expectBroken(
      () => {
        renameSync(entryPath(1), join(dir, 'tmp-entry'));
        renameSync(entryPath(3), entryPath(1));
        renameSync(join(dir, 'tmp-entry'), entryPath(3));
      },
      1,
      /unreadable/,
    );
  });

  it('catches a log cut back before a backup began, even on a machine that saw nothing', async () => {
    // the backup recorded the newest entry as it began (entry 1, the actor-add): cut the log back to entry 0
    await expectBroken(
      () => {
        for (const n of readdirSync(auditDir()).filter((f) => /^\d{10}/.test(f) && Number(f.slice(0, 10)) >= 1)) {
          rmSync(join(auditDir(), n));
        }
      },
      1,
      /^backup [0-9a-f-]{36} recorded this entry, which the log no longer holds$/,
    );
  });

  it('catches a dropped tail on a machine that saw it, as TRUST_ROLLBACK', async () => {
    const saved = join(dir, 'audit-tail');
    cpSync(auditDir(), saved, { recursive: true });
    try {
      const last = readdirSync(auditDir())
        .filter((n) => /^\d{10}$/.test(n))
        .sort()
        .at(-1) as string;
      rmSync(join(auditDir(), last));
      const r = await cli(['list', ...as('alice')]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/STOP TRUST_ROLLBACK: the audit log of .* has lost entry/);
    } finally {
      rmSync(auditDir(), { recursive: true, force: true });
      cpSync(saved, auditDir(), { recursive: true });
    }
  });
});

describe('a deleted registry', () => {
  it('is caught by the audit log on a machine that never pinned it', async () => {
    const saved = join(dir, 'registry-saved');
    cpSync(join(repoDir, 'registry'), saved, { recursive: true });
    try {
      rmSync(join(repoDir, 'registry'), { recursive: true });
      const r = await cli(['list'], { FOLE_BACKUP_STATE_DIR: join(dir, 'never-pinned') });
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        /STOP TRUST_ROLLBACK: the actor registry of .* is gone, but audit entry \d+ was checked/,
      );
    } finally {
      rmSync(join(repoDir, 'registry'), { recursive: true, force: true });
      cpSync(saved, join(repoDir, 'registry'), { recursive: true });
      rmSync(join(dir, 'never-pinned'), { recursive: true, force: true });
    }
  });
});

describe('export', () => {
  it('verifies offline with no repository or password, and names an edited entry', async () => {
    const out = join(dir, 'audit.jsonl');
    const r = await cli(['audit', 'export', '--out', out, ...as('olga')]);
    expect(r.code, r.stderr).toBe(0);
    const ok = await runCli(['audit', 'verify', '--file', out]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/audit log OK: \d+ entries/);
    // never over an existing file
    expect((await cli(['audit', 'export', '--out', out, ...as('olga')])).code).toBe(2);
    // change who did it in entry 2: its payload no longer matches the signature or the next entry's prev
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    const line = JSON.parse(lines[3] as string) as { envelope: { payload: string } };
    const body = JSON.parse(Buffer.from(line.envelope.payload, 'base64').toString()) as Record<string, unknown>;
    body.op = 'list';
    const sorted = Object.fromEntries(Object.entries(body).sort(([a], [b]) => (a < b ? -1 : 1)));
    line.envelope.payload = Buffer.from(JSON.stringify(sorted)).toString('base64');
    lines[3] = JSON.stringify(line);
    const edited = join(dir, 'edited.jsonl');
    writeFileSync(edited, `${lines.join('\n')}\n`);
    const bad = await runCli(['audit', 'verify', '--file', edited, '--json']);
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, firstBad: { seq: 2, reason: 'bad signature by alice' } });
  });
});
