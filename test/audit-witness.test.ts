/**
 * Witness checkpoints end to end through the real CLI: `audit checkpoint --witness` stores a signed checkpoint
 * of the audit log in a second repository, and `audit verify --witness` catches what the log alone cannot
 * show on a machine that pinned nothing: a tail cut off, or the log rewritten from some entry on with the
 * repository's key (a valid chain). A checkpoint signed by a key the registry does not hold is refused; a wrong
 * witness password, or the repository as its own witness, writes nothing.
 */
import { cpSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../src/backend/local.js';
import { Repository } from '../src/repository/repository.js';
import { appendAudit, auditDigestAt } from '../src/trust/audit-store.js';
import { readRegistry } from '../src/trust/registry-store.js';
import { checkpointName, storeCheckpoint } from '../src/trust/witness-store.js';
import { makeCheckpoint } from '../src/trust/witness.js';
import { runCli, type CliResult } from './cli-helpers.js';
import { FAST_KDF, TEST_PASSWORD } from './repo-helpers.js';
import { testActor } from './trust-helpers.js';
import { makeTrustWorld, type TrustWorld } from './trust-world.js';

const WITNESS_PASSWORD = 'the witness has a password of its own';

let w: TrustWorld;
let witnessDir: string;
let passwordFile: string;
let repositoryId: string;

/** Run the CLI as alice on the world's repository, with the witness password file in the environment. */
const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> =>
  w.cli([...args, ...w.as('alice')], { FOLE_BACKUP_WITNESS_PASSWORD_FILE: passwordFile, ...extra });
/** The same on a machine that never saw the repository: nothing pinned. */
const fresh = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => {
  rmSync(join(w.dir, 'fresh-state'), { recursive: true, force: true });
  return cli(args, { FOLE_BACKUP_STATE_DIR: join(w.dir, 'fresh-state'), ...extra });
};

interface CheckpointJson {
  repositoryId: string;
  trustId: string | null;
  seq: number;
  digest: string;
  signer: string | null;
  witness: string;
  stored: boolean;
}
interface VerifyJson {
  ok: boolean;
  entries: number;
  firstBad?: { seq: number; reason: string };
  witness?: { location: string; checkpoints: number; newest: { seq: number; time: string } | null };
  stop?: { code: string };
}

async function checkpoint(): Promise<CheckpointJson> {
  const r = await cli(['audit', 'checkpoint', '--witness', witnessDir, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as CheckpointJson;
}

async function verify(run = cli): Promise<{ r: CliResult; out: VerifyJson }> {
  const r = await run(['audit', 'verify', '--witness', witnessDir, '--json']);
  return { r, out: JSON.parse(r.stdout) as VerifyJson };
}

const auditDir = (): string => join(w.repoDir, 'audit');
const witnessFiles = (): string[] => readdirSync(join(witnessDir, 'witness')).sort();

/** Delete audit entries (and their disclosures) from `seq` on, as someone with write access to the folder can. */
function cutFrom(seq: number): void {
  for (const n of readdirSync(auditDir()).filter((f) => /^\d{10}/.test(f) && Number(f.slice(0, 10)) >= seq)) {
    rmSync(join(auditDir(), n));
  }
}

/** Run `f` on the main repository's audit log, then put the log back as it was. */
async function withLogRestored(f: () => Promise<void>): Promise<void> {
  const saved = join(w.dir, 'audit-saved');
  rmSync(saved, { recursive: true, force: true });
  cpSync(auditDir(), saved, { recursive: true });
  try {
    await f();
  } finally {
    rmSync(auditDir(), { recursive: true, force: true });
    cpSync(saved, auditDir(), { recursive: true });
  }
}

const openWitnessRepo = (): Promise<Repository> => Repository.open(new LocalBackend(witnessDir), WITNESS_PASSWORD);

beforeAll(async () => {
  w = await makeTrustWorld('fole-audit-witness-', []);
  witnessDir = join(w.dir, 'witness-repo');
  await (await Repository.init(new LocalBackend(witnessDir), WITNESS_PASSWORD, { kdf: FAST_KDF })).close();
  passwordFile = join(w.dir, 'witness.pw');
  writeFileSync(passwordFile, `${WITNESS_PASSWORD}\n`, { mode: 0o600 });
  const repo = await w.openRepo();
  repositoryId = repo.config.id;
  await repo.close();
}, 120_000);

afterAll(() => w.cleanup());

describe('audit checkpoint and audit verify --witness', () => {
  it('stores a checkpoint signed by the caller, and verify agrees with it', async () => {
    const c = await checkpoint();
    expect(c).toMatchObject({ repositoryId, signer: 'alice', witness: witnessDir, stored: true });
    expect(c.trustId).toMatch(/^[0-9a-f]{32}$/);
    expect(c.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(witnessFiles()).toEqual([checkpointName(repositoryId, c.seq)]);
    const { r, out } = await verify();
    expect(r.code, r.stderr).toBe(0);
    expect(out).toMatchObject({ ok: true, witness: { location: witnessDir, checkpoints: 1, newest: { seq: c.seq } } });
    const human = await cli(['audit', 'verify', '--witness', witnessDir]);
    expect(human.stdout).toMatch(
      new RegExp(`and consistent with 1 checkpoint in ${witnessDir} \\(newest: entry ${c.seq}, \\d{4}-\\S+Z\\)`),
    );
  });

  it('audits the commands with the witness location and never its password', async () => {
    const r = await cli(['audit', 'checkpoint', '--witness', witnessDir, '--witness-password-file', passwordFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^checkpoint of audit entry \d+ \(digest [0-9a-f]{16}…\) stored in /);
    const log = await cli(['audit', 'log', '--op', 'audit-checkpoint', '--json']);
    const entries = (JSON.parse(log.stdout) as { entries: { args: unknown[]; result: { status: string } }[] }).entries;
    expect(entries.map((e) => e.result.status)).toEqual(['ok', 'ok']);
    expect(entries[1]?.args.slice(0, 6)).toEqual([
      'audit',
      'checkpoint',
      '--witness',
      witnessDir,
      '--witness-password-file',
      passwordFile,
    ]);
    expect(log.stdout).not.toContain(WITNESS_PASSWORD);
  });

  it('still agrees after more commands: the log grew past the checkpoints', async () => {
    expect((await cli(['list'])).code).toBe(0);
    expect((await cli(['list'])).code).toBe(0);
    const c = await checkpoint();
    expect((await cli(['list'])).code).toBe(0);
    const { r, out } = await verify(fresh);
    expect(r.code, r.stderr).toBe(0);
    expect(out.entries).toBeGreaterThan(c.seq + 1);
    expect(out.witness).toMatchObject({ checkpoints: 3, newest: { seq: c.seq } });
  });

  it('names a log cut before the newest checkpoint as truncated, on a machine that pinned nothing', async () => {
    const newest = (await checkpoint()).seq;
    await withLogRestored(async () => {
      cutFrom(newest - 1);
      // the log alone is a valid chain: only the witness shows what is missing
      expect((await fresh(['audit', 'verify'])).code).toBe(0);
      const { r, out } = await verify(fresh);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('STOP TRUST_BROKEN');
      expect(out.ok).toBe(false);
      expect(out.stop?.code).toBe('TRUST_BROKEN');
      expect(out.firstBad?.seq).toBe(newest);
      // the cut log ends at entry newest - 2, and the plain verify above appended one more
      expect(out.firstBad?.reason).toMatch(
        new RegExp(`^truncated: the witness saw entry ${newest} on \\S+Z; the log ends at entry ${newest - 1}$`),
      );
      expect(out.witness).toMatchObject({ location: witnessDir, checkpoints: 4, newest: { seq: newest } });
      // and a log the witness disagrees with is never checkpointed
      const before = witnessFiles();
      const c = await fresh(['audit', 'checkpoint', '--witness', witnessDir]);
      expect(c.code).toBe(3);
      // the two verifies grew the cut log back to the checkpointed position, with other entries: a fork now
      expect(c.stderr).toContain(`STOP TRUST_BROKEN: audit log entry ${newest}: forked at entry ${newest}`);
      expect(witnessFiles()).toEqual(before);
    });
  });

  it('names the entry where a log rewritten with the repository key (a valid chain) forks', async () => {
    const newest = (await checkpoint()).seq;
    await withLogRestored(async () => {
      cutFrom(newest);
      const repo = await w.openRepo();
      try {
        const registry = await readRegistry(repo);
        for (let i = 0; i < 3; i++) {
          await appendAudit(
            repo,
            {
              time: new Date().toISOString(),
              actor: { name: 'alice', kind: 'human', authenticated: false },
              host: 'elsewhere',
              op: 'list',
              args: ['list'],
              commitments: {},
              result: { status: 'ok' },
              backupIds: [],
              counts: {},
              durationMs: 1,
              registryHead: registry?.head ?? null,
              approvals: [],
            },
            [],
            undefined,
          );
        }
      } finally {
        await repo.close();
      }
      expect((await fresh(['audit', 'verify'])).code).toBe(0);
      const { r, out } = await verify(fresh);
      expect(r.code).toBe(3);
      expect(out.firstBad?.seq).toBe(newest);
      expect(out.firstBad?.reason).toMatch(new RegExp(`^forked at entry ${newest}: the witness saw another entry`));
      expect(out.witness?.newest?.seq).toBe(newest);
      const human = await fresh(['audit', 'verify', '--witness', witnessDir]);
      expect(human.stdout).toMatch(new RegExp(`^audit log BROKEN at entry ${newest}: forked at entry ${newest}`));
    });
  });

  it('refuses a checkpoint signed by a key the registry does not hold', async () => {
    const repo = await w.openRepo();
    const witness = await openWitnessRepo();
    const taken = new Set(witnessFiles());
    const seq = [...Array(20).keys()].find((i) => !taken.has(checkpointName(repositoryId, i))) as number;
    try {
      const registry = await readRegistry(repo);
      const digest = (await auditDigestAt(repo, seq)) as string;
      const mallory = testActor('mallory');
      const { envelope } = makeCheckpoint(repositoryId, registry, { seq, digest }, mallory);
      expect(await storeCheckpoint(witness, repositoryId, seq, envelope)).toBe(true);
    } finally {
      await repo.close();
      await witness.close();
    }
    try {
      const { r, out } = await verify();
      expect(r.code).toBe(3);
      expect(out.firstBad).toEqual({
        seq,
        reason: "the witness's checkpoint of this entry is signed by mallory, who is not in the actor registry",
      });
    } finally {
      rmSync(join(witnessDir, 'witness', checkpointName(repositoryId, seq)));
    }
    expect((await verify()).r.code).toBe(0);
  });

  it('is idempotent: a second checkpoint of the same entry says so and stores nothing', async () => {
    let first: CheckpointJson | undefined;
    let files: string[] = [];
    // the log is put back as it was before the checkpoint's own audit entry: its newest entry is checkpointed
    await withLogRestored(async () => {
      first = await checkpoint();
      files = witnessFiles();
    });
    const again = await fresh(['audit', 'checkpoint', '--witness', witnessDir, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ seq: first?.seq, digest: first?.digest, stored: false });
    const human = await fresh(['audit', 'checkpoint', '--witness', witnessDir]);
    expect(human.stdout).toMatch(/^checkpoint of audit entry \d+ \(digest [0-9a-f]{16}…\) stored in /);
    expect(witnessFiles()).toHaveLength(files.length + 1);
    // this machine pinned the entry the first run wrote, which the log lost when it was put back
    rmSync(join(w.dir, 'state'), { recursive: true, force: true });
    expect((await verify()).r.code).toBe(0);
  });
});

describe('the witness repository', () => {
  it('needs its own password: a wrong one is a clear error, and nothing is written', async () => {
    const before = witnessFiles();
    const wrong = join(w.dir, 'wrong.pw');
    writeFileSync(wrong, 'not the witness password\n', { mode: 0o600 });
    const r = await cli(['audit', 'checkpoint', '--witness', witnessDir], { FOLE_BACKUP_WITNESS_PASSWORD_FILE: wrong });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/STOP PERMISSION_DENIED: witness: open repository .*: wrong password/);
    expect(r.stderr).toMatch(/--witness-password-file/);
    expect(witnessFiles()).toEqual(before);
    const none = await cli(['audit', 'checkpoint', '--witness', witnessDir], {
      FOLE_BACKUP_WITNESS_PASSWORD_FILE: '',
      FOLE_BACKUP_WITNESS_PASSWORD: '',
    });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/usage error: no password for the witness repository/);
    expect(witnessFiles()).toEqual(before);
    // the password itself may come from the environment
    const env = await cli(['audit', 'verify', '--witness', witnessDir], {
      FOLE_BACKUP_WITNESS_PASSWORD_FILE: '',
      FOLE_BACKUP_WITNESS_PASSWORD: WITNESS_PASSWORD,
    });
    expect(env.code, env.stderr).toBe(0);
  });

  it('checks an `audit export` against the witness too, with no password for the repository', async () => {
    const out = join(w.dir, 'audit.jsonl');
    expect((await cli(['audit', 'export', '--out', out])).code).toBe(0);
    const r = await runCli(['audit', 'verify', '--file', out, '--witness', witnessDir, '--json'], {
      FOLE_BACKUP_WITNESS_PASSWORD_FILE: passwordFile,
      FOLE_BACKUP_PASSWORD: '',
    });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as VerifyJson).witness?.checkpoints).toBeGreaterThan(0);
  });

  it('keeps unsigned checkpoints of a repository in single-operator mode', async () => {
    const solo = join(w.dir, 'solo');
    await (await Repository.init(new LocalBackend(solo), TEST_PASSWORD, { kdf: FAST_KDF })).close();
    const env = {
      FOLE_BACKUP_PASSWORD: TEST_PASSWORD,
      FOLE_BACKUP_STATE_DIR: join(w.dir, 'solo-state'),
      FOLE_BACKUP_WITNESS_PASSWORD_FILE: passwordFile,
    };
    const empty = await runCli(['audit', 'checkpoint', '--witness', witnessDir, '--repo', solo], env);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/the audit log is empty: nothing to checkpoint/);
    const c = await runCli(['audit', 'checkpoint', '--witness', witnessDir, '--repo', solo, '--json'], env);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ seq: 0, signer: null, trustId: null, stored: true });
    const v = await runCli(['audit', 'verify', '--witness', witnessDir, '--repo', solo], env);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/consistent with 1 checkpoint in .* \(newest: entry 0, /);
    // the other repository's checkpoints in the same witness are not this one's
    expect((await verify()).out.witness?.checkpoints).toBeGreaterThan(1);
  });

  it('is never the repository itself', async () => {
    const r = await cli(['audit', 'checkpoint', '--witness', w.repoDir], {
      FOLE_BACKUP_WITNESS_PASSWORD_FILE: '',
      FOLE_BACKUP_WITNESS_PASSWORD: TEST_PASSWORD,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/usage error: the witness .* is the repository itself/);
    expect(readdirSync(join(w.repoDir, 'witness'))).toEqual([]);
  });

  it('without a checkpoint of this log is not a pass, until one is stored', async () => {
    const empty = join(w.dir, 'empty-witness');
    await (await Repository.init(new LocalBackend(empty), WITNESS_PASSWORD, { kdf: FAST_KDF })).close();
    // as a repository made before witness/ existed: the folder is made on the first checkpoint
    rmSync(join(empty, 'witness'), { recursive: true });
    const r = await cli(['audit', 'verify', '--witness', empty]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds no checkpoint of this audit log/);
    const c = await cli(['audit', 'checkpoint', '--witness', empty]);
    expect(c.code, c.stderr).toBe(0);
    expect(readdirSync(join(empty, 'witness'))).toHaveLength(1);
    expect((await cli(['audit', 'verify', '--witness', empty])).code).toBe(0);
  });

  it('is explained by --help, with an example', async () => {
    for (const sub of ['checkpoint', 'verify']) {
      const r = await runCli(['audit', sub, '--help']);
      expect(r.stdout).toContain('A witness is a second fole-backup repository');
      expect(r.stdout).toMatch(/fole-backup audit \w+ --witness \/mnt\/offsite\/witness/);
    }
  });
});
