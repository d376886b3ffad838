/**
 * A repository on an SSH server as it is used: the real CLI against a real OpenSSH sshd on 127.0.0.1
 * (test/servers/sshd.ts). The whole life cycle works over sftp://; a server whose host key is not trusted is
 * refused before anything is sent, and a key the server does not accept is a clear ACCESS_DENIED.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshdMissing, startSshd, type SshdServer } from './servers/sshd.js';
import { skipWithout } from './servers/shared.js';
import { copyToTwin, initBackupRestore } from './life-cycle.js';
import { backedUpFoleTree, makeFoleTree } from './restore-helpers.js';
import { TEST_PASSWORD } from './repo-helpers.js';
import { runCli } from './cli-helpers.js';

const missing = sshdMissing();
const skip = skipWithout(missing, 'the SFTP CLI tests');

let sshd: SshdServer;
let work: string;
let root: string;
let location: string;

const cli = (args: string[], extra: string[] = ['--ssh-key', sshd.clientKey, '--ssh-known-hosts', sshd.knownHosts]) =>
  runCli([...args, '--repo', location, ...extra], { FOLE_BACKUP_PASSWORD: TEST_PASSWORD });

beforeAll(async () => {
  if (skip) return;
  sshd = await startSshd();
  work = mkdtempSync(join(tmpdir(), 'fole-sftp-cli-'));
  root = join(work, 'src');
  makeFoleTree(root, { bigBytes: 2_000_000 }).core.db.close();
  location = `sftp://${sshd.user}@127.0.0.1:${sshd.port}${join(sshd.home, 'repo')}`;
}, 60_000);

afterAll(async () => {
  await sshd?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skip)('a repository over sftp://', () => {
  it('refuses a server whose host key is not known, before anything is written', async () => {
    const empty = join(work, 'known_hosts-empty');
    writeFileSync(empty, '');
    const r = await cli(['init'], ['--ssh-key', sshd.clientKey, '--ssh-known-hosts', empty]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('UNTRUSTED_HOST');
    expect(r.stderr).toMatch(/is not in .*known_hosts-empty/);
    expect(r.stderr).toContain(`ssh-keyscan -p ${sshd.port} 127.0.0.1`);
    expect(existsSync(join(sshd.home, 'repo'))).toBe(false);
  });

  it('says the server refused a key it does not accept', async () => {
    const stranger = join(work, 'stranger');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    const r = await cli(['init'], ['--ssh-key', stranger, '--ssh-known-hosts', sshd.knownHosts]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ACCESS_DENIED');
    expect(r.stderr).toContain(`the server refused the key for ${sshd.user}`);
    expect(r.stderr).not.toContain(readFileSync(stranger, 'utf8').split('\n')[1] as string);
  });

  it('takes init, backup, verify, a byte-exact restore, forget, prune and check', async () => {
    const backupId = await initBackupRestore(cli, root, join(work, 'restored'));
    // a second backup, then the first forgotten and its data pruned
    writeFileSync(join(root, 'config', 'server.json'), '{"port":8081}');
    const b2 = await cli(['backup', '--storage-root', root, '--fole-version', '2.3.1']);
    expect(b2.code, b2.stderr).toBe(0);
    const f = await cli(['forget', backupId, '--prune', '--min-pack-age', '0']);
    expect(f.code, f.stderr).toBe(0);
    const c = await cli(['check', '--read-data']);
    expect(c.code, c.stderr).toBe(0);

    // a byte flipped in the largest pack on the server: found and recorded, repaired over SFTP, checked clean
    const data = join(sshd.home, 'repo', 'data');
    const packs = readdirSync(data).flatMap((d) => readdirSync(join(data, d)).map((f) => join(data, d, f)));
    const largest = packs.sort((x, y) => statSync(y).size - statSync(x).size)[0] as string;
    const bytes = readFileSync(largest);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(largest, bytes);
    expect((await cli(['check', '--read-data'])).code).toBe(3);
    const r = await cli(['repair', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { movedAside: string[] }).movedAside).toEqual([basename(largest)]);
    const healed = await cli(['check', '--read-data']);
    expect(healed.code, healed.stderr).toBe(0);
    expect(readdirSync(join(sshd.home, 'repo', 'quarantine'))).toEqual([`data.${basename(largest)}`]);
  }, 240_000);

  it('is the target of an offsite copy from a local repository; a second run copies nothing', async () => {
    const { repoDir, backupId } = await backedUpFoleTree(join(work, 'local'));
    const offsite = `sftp://${sshd.user}@127.0.0.1:${sshd.port}${join(sshd.home, 'offsite')}`;
    const flags = ['--ssh-key', sshd.clientKey, '--ssh-known-hosts', sshd.knownHosts];
    const env = { FOLE_BACKUP_PASSWORD: 'the offsite password', FOLE_BACKUP_FROM_PASSWORD: TEST_PASSWORD };
    await copyToTwin((args) => runCli([...args, ...flags], env), repoDir, offsite, [backupId]);
  }, 240_000);
});
