/**
 * The servers of `npm run bench -- --offsite s3,sftp`, started by the test suites' own helpers (test/servers/):
 * OpenStack Swift with s3api over TLS (a CA made at start) and OpenSSH sshd, both on 127.0.0.1. For each: how
 * fole-backup and restic name a repository on it, and the raw upload a `fole-backup copy` is compared with —
 * the same bytes sent by the AWS SDK alone (put-s3.ts) or by OpenSSH's `sftp -b` alone.
 */
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { sshdMissing, startSshd } from '../../../test/servers/sshd.js';
import { startSwift, swiftMissing } from '../../../test/servers/swift.js';
import type { OffsiteTargetName } from '../options.js';
import { failed, num, type RemoteRepo, type StepOutcome, type StepRunner } from '../tools/tool.js';

const PUT_S3 = fileURLToPath(new URL('./put-s3.ts', import.meta.url));
/** One bucket for every repository of a run; each tool's repository is a prefix in it. */
const BUCKET = 'fole-bench';

export interface OffsiteTarget {
  name: OffsiteTargetName;
  /** What the report calls the server. */
  title: string;
  /** What the report calls the raw upload. */
  rawTitle: string;
  /** The environment the raw upload needs beside the harness's own (S3 credentials). */
  rawEnv: Readonly<Record<string, string>>;
  /** fole-backup's repository `name` on the server. */
  fole(name: string): RemoteRepo;
  /** restic's repository `name` on the server. */
  restic(name: string): RemoteRepo;
  /**
   * Upload every file under `dir` to a new place `name` on the server, measured by `runner` (whose environment
   * holds `rawEnv`). Info: `bytes` sent
   * and `transferS`, the seconds of the transfer itself.
   */
  rawUpload(runner: StepRunner, dir: string, name: string): Promise<StepOutcome>;
  stop(): Promise<void>;
}

/** Bytes of the files under `dir` (no directory entries: what was sent). */
function fileBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0);
}

/** The first program `name` needs that this machine lacks, or undefined. */
export function targetMissing(name: OffsiteTargetName): string | undefined {
  return name === 's3' ? swiftMissing() : sshdMissing();
}

export async function startTarget(name: OffsiteTargetName): Promise<OffsiteTarget> {
  return name === 's3' ? startS3() : startSftp();
}

async function startS3(): Promise<OffsiteTarget> {
  const swift = await startSwift();
  const creds = { AWS_ACCESS_KEY_ID: swift.env.AWS_ACCESS_KEY_ID ?? '', AWS_SECRET_ACCESS_KEY: swift.secret };
  return {
    name: 's3',
    title: `S3: OpenStack Swift s3api over TLS on 127.0.0.1 (${swift.endpoint})`,
    rawTitle: 'AWS SDK v3 alone (bench/lib/offsite/put-s3.ts)',
    rawEnv: creds,
    fole: (n) => ({
      location: `s3:${swift.endpoint}/${BUCKET}/${n}`,
      args: ['--ca-cert', swift.caFile],
      env: creds,
      dir: null,
    }),
    // Swift's s3api answers path-style requests only
    restic: (n) => ({
      location: `s3:${swift.endpoint}/${BUCKET}/${n}`,
      args: ['--cacert', swift.caFile, '-o', 's3.bucket-lookup=path'],
      env: creds,
      dir: null,
    }),
    async rawUpload(runner, dir, n) {
      const p = await runner.measure('put-s3', process.execPath, [
        '--import',
        'tsx',
        PUT_S3,
        swift.endpoint,
        BUCKET,
        n,
        dir,
        swift.caFile,
      ]);
      if (!p.ok) return failed([p], 'put-s3.ts', p.t);
      const r = JSON.parse(p.t.stdout) as Record<string, unknown>;
      return { status: 'ok', parts: [p], info: { bytes: num(r.bytes), transferS: num(r.transferS) } };
    },
    stop: () => swift.stop(),
  };
}

async function startSftp(): Promise<OffsiteTarget> {
  const sshd = await startSshd();
  const host = `${sshd.user}@127.0.0.1`;
  const ssh = ['-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'];
  return {
    name: 'sftp',
    title: `SFTP: OpenSSH sshd (internal-sftp) on 127.0.0.1:${sshd.port}`,
    rawTitle: 'OpenSSH sftp -b alone (put -r)',
    rawEnv: {},
    fole: (n) => ({
      location: `sftp://${host}:${sshd.port}${join(sshd.home, n)}`,
      args: ['--ssh-key', sshd.clientKey, '--ssh-known-hosts', sshd.knownHosts],
      env: {},
      dir: join(sshd.home, n),
    }),
    restic: (n) => ({
      location: `sftp:${host}:${join(sshd.home, n)}`,
      args: ['-o', `sftp.command=ssh -i ${sshd.clientKey} -p ${sshd.port} ${ssh.join(' ')} ${host} -s sftp`],
      env: {},
      dir: join(sshd.home, n),
    }),
    async rawUpload(runner, dir, n) {
      const batch = join(sshd.home, `${n}.batch`);
      writeFileSync(batch, `put -r ${dir} ${join(sshd.home, n)}\n`);
      const p = await runner.measure('sftp', 'sftp', [
        '-b',
        batch,
        '-i',
        sshd.clientKey,
        '-P',
        String(sshd.port),
        ...ssh,
        host,
      ]);
      if (!p.ok) return failed([p], 'sftp -b', p.t);
      // sftp's only start-up is the SSH handshake: the whole command is the transfer
      return { status: 'ok', parts: [p], info: { bytes: fileBytes(join(sshd.home, n)), transferS: p.t.wallS } };
    },
    stop: () => sshd.stop(),
  };
}
