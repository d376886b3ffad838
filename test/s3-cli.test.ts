/**
 * The CLI against a real S3 server (OpenStack Swift's s3api over TLS, a CA made at test time): a repository's
 * whole life, and what must never happen with credentials (in output, JSON, errors or the audit log).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backend/open.js';
import { type CliResult, runCli, spawnCli, waitExit } from './cli-helpers.js';
import { copyToTwin } from './life-cycle.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { backedUpFoleTree, makeFoleTree, treeLines } from './restore-helpers.js';
import { startSwiftInEnv, swiftMissing, type SwiftServer } from './servers/swift.js';
import { skipWithout } from './servers/shared.js';

const missing = swiftMissing();
const skip = skipWithout(missing, 'the S3 CLI tests');

describe.skipIf(skip)('the CLI on an S3 repository (Swift s3api over TLS)', () => {
  let swift: SwiftServer;
  let work: string;
  let root: string;
  const outputs: CliResult[] = [];

  beforeAll(async () => {
    swift = await startSwiftInEnv();
    work = mkdtempSync(join(tmpdir(), 'fole-s3-cli-'));
    root = join(work, 'storage');
    makeFoleTree(root, { bigBytes: 3_000_000 }).core.db.close();
    writeFileSync(join(work, 'password'), 'correct horse battery staple\n');
  }, 120_000);

  afterAll(async () => {
    await swift?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  /** The CLI with the server's credentials in the environment but the CA given by --ca-cert, not AWS_CA_BUNDLE. */
  async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    const { AWS_CA_BUNDLE: _, ...creds } = swift.env;
    const r = await runCli([...args, '--ca-cert', swift.caFile, '--password-file', join(work, 'password')], {
      ...creds,
      ...env,
    });
    outputs.push(r);
    return r;
  }

  const repo = (): string => `s3:${swift.endpoint}/fole-backups/host1`;

  it('inits, backs up, lists, verifies every byte, restores exactly, forgets, prunes and checks', async () => {
    const init = await cli(['init', '--repo', repo(), '--json']);
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({
      repository: `${repo()}/`,
      storage: { versioning: 'disabled', objectLock: false },
    });

    const ids: string[] = [];
    for (const n of [1, 2]) {
      writeFileSync(join(root, 'projects', 'p1', 'files', `note-${n}.txt`), `note ${n}\n`);
      const b = await cli(['backup', '--repo', repo(), '--storage-root', root, '--fole-version', '2.3.1', '--json']);
      expect(b.code, b.stderr).toBe(0);
      ids.push((JSON.parse(b.stdout) as { backupId: string }).backupId);
    }

    const list = await cli(['list', '--repo', repo(), '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(ids[0]);
    expect(list.stdout).toContain(ids[1]);

    const verify = await cli(['verify', ids[1] as string, '--repo', repo(), '--read-data', '--json']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);

    const target = join(work, 'restored');
    const restore = await cli([
      'restore',
      ids[1] as string,
      '--repo',
      repo(),
      '--target',
      target,
      '--confirm',
      ids[1] as string,
      '--fole-version',
      '2.3.1',
    ]);
    expect(restore.code, restore.stderr).toBe(0);
    // every file byte for byte, but databases (restored from consistent captures) and what backup leaves out
    // by policy (tmp/ and cache/ folders)
    const files = (dir: string): string[] =>
      treeLines(dir, { ignoreRoot: true })
        .filter((l) => l.startsWith('f ') && !/\.db(-wal|-shm)? /.test(l) && !/\/(tmp|cache)\//.test(l))
        .map((l) =>
          l
            .split(' ')
            .filter((_, i) => i !== 3)
            .join(' '),
        );
    expect(files(target)).toEqual(files(root));
    expect(readFileSync(join(target, 'projects', 'p1', 'files', 'note-2.txt'), 'utf8')).toBe('note 2\n');

    const forget = await cli([
      'forget',
      ids[0] as string,
      '--repo',
      repo(),
      '--prune',
      '--min-pack-age',
      '0',
      '--json',
    ]);
    expect(forget.code, forget.stderr).toBe(0);
    const after = await cli(['list', '--repo', repo(), '--json']);
    expect(after.stdout).not.toContain(ids[0]);

    const check = await cli(['check', '--repo', repo(), '--read-data', '--json']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    // repair over S3 reads every pack, finds them sound and changes nothing
    const repaired = await cli(['repair', '--repo', repo(), '--json']);
    expect(repaired.code, repaired.stderr).toBe(0);
    const r = JSON.parse(repaired.stdout) as { nothingToDo: boolean; packs: { sound: number } };
    expect(r.nothingToDo).toBe(true);
    expect(r.packs.sound).toBeGreaterThan(0);
  });

  it('keeps the repository valid when the server is killed mid-upload, and the next backup completes', async () => {
    const crashRepo = `s3:${swift.endpoint}/fole-crash/host1`;
    const big = join(work, 'big-storage');
    makeFoleTree(big, { bigBytes: 1000 }).core.db.close();
    for (let i = 0; i < 4; i++)
      writeFileSync(join(big, 'projects', 'p1', 'files', `big-${i}.bin`), randomBytes(16 << 20));
    expect((await cli(['init', '--repo', crashRepo])).code).toBe(0);
    const { AWS_CA_BUNDLE: _, ...creds } = swift.env;
    const args = ['backup', '--repo', crashRepo, '--storage-root', big, '--fole-version', '2.3.1', '--json'];
    const child = spawnCli([...args, '--ca-cert', swift.caFile, '--password-file', join(work, 'password')], creds);
    const output = { stdout: '', stderr: '' };
    child.stdout?.on('data', (b: Buffer) => (output.stdout += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (output.stderr += b.toString()));
    const exited = waitExit(child);
    // kill the server once the first pack is stored, while the others upload
    const watcher = openBackend(crashRepo, { caCert: swift.caFile });
    const seen = async (): Promise<number> => {
      let n = 0;
      for await (const _o of watcher.list('data')) n++;
      return n;
    };
    while ((await seen()) === 0) await new Promise((r) => setTimeout(r, 50));
    await watcher.close();
    await swift.killProxy();
    const first = await exited;
    outputs.push({ ...first, ...output, stdoutBytes: Buffer.from(output.stdout) });
    // the retries (about 6 s in all) run out while the server is down: a clear error, exit 1
    expect(first.code, output.stderr).toBe(1);
    expect(output.stderr).toMatch(/retrying/);
    expect(JSON.parse(output.stdout)).toMatchObject({
      error: { code: expect.stringMatching(/WRITE_ERROR|READ_ERROR/) },
    });
    await swift.startProxy();
    const second = await cli(args);
    expect(second.code, second.stderr).toBe(0);
    const check = await cli(['check', '--repo', crashRepo, '--read-data', '--json']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  }, 180_000);

  it('reports wrong credentials as a clear error that names neither secret', async () => {
    const wrong = 'wrong-secret-0123456789';
    const r = await cli(['list', '--repo', repo(), '--json'], { AWS_SECRET_ACCESS_KEY: wrong });
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout) as { error: { code: string; message: string; hint: string } };
    expect(err.error.code).toBe('ACCESS_DENIED');
    expect(err.error.hint).toMatch(/AWS_SECRET_ACCESS_KEY/);
    expect(r.stdout + r.stderr).not.toContain(wrong);
  });

  it('refuses plain http to a host that is not this machine without --insecure-http (usage error)', async () => {
    const r = await cli(['list', '--repo', 's3:http://backup.example.com/bucket', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--insecure-http/);
  });

  it('refuses init --object-lock-days on Swift (no Object Lock) with a clear error', async () => {
    const r = await cli(['init', '--repo', `s3:${swift.endpoint}/fole-locked`, '--object-lock-days', '30', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({
      error: { code: 'USAGE', message: expect.stringMatching(/Object Lock/) },
    });
  });

  it('immutability-probe reports Swift NOT immutable (--json, exit 1)', async () => {
    const r = await cli(['immutability-probe', '--repo', repo(), '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      immutable: false,
      objectLock: false,
      canary: { retention: false, deleted: true },
    });
  });

  it('is the target of an offsite copy from a local repository, and the source of one back to local', async () => {
    const { repoDir, backupId } = await backedUpFoleTree(join(work, 'local'));
    const offsite = `s3:${swift.endpoint}/fole-offsite/host1`;
    // into S3: the local source's password from the environment, the S3 target's from --password-file
    const there = await copyToTwin(
      (args) => cli(args, { FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD }),
      repoDir,
      offsite,
      [backupId],
    );
    // out of S3 into a new local repository, which also gets the S3 repository's audit trail
    const back = join(work, 'back');
    const out = await copyToTwin(
      (args) => cli(args, { FOLE_BACKUP_FROM_PASSWORD_FILE: join(work, 'password') }),
      offsite,
      back,
      [backupId],
    );
    expect(out.trail.origin).toBe(there.to.id);
    expect(out.trail.auditEntries.total).toBeGreaterThan(0);
    const verified = await cli(['audit', 'verify', '--origin', there.to.id, '--repo', back, '--json']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  }, 240_000);

  it('never shows the secret key: not in output, JSON, errors or the audit log', async () => {
    const log = await cli(['audit', 'log', '--repo', repo(), '--json']);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout).toContain('backup');
    expect(outputs.length).toBeGreaterThan(8);
    for (const r of outputs) {
      expect(r.stdout + r.stderr).not.toContain(swift.secret);
    }
  });
});
