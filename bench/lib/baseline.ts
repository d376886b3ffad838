/**
 * `--baseline REF`: another commit of fole-backup, built apart from this one,
 * so that one benchmark run measures both on the same tree, the same disk and
 * the same minutes of machine noise ("no regression" is then a ratio within
 * one run, not a comparison of two runs made hours apart).
 *
 *   git rev-parse REF                 → the commit (a moving ref is pinned once)
 *   git worktree add --detach DIR C   → DIR under --out, beside the work directories
 *   DIR/node_modules → this repository's node_modules (no install: the baseline
 *                      runs with today's dependencies)
 *   npm run install                   → DIR/native/build (where the commit has native/)
 *   npx tsc -p tsconfig.build.json    → DIR/dist/cli/main.js
 *
 * The worktree is removed at the end (kept with --keep; then remove it with
 * `git worktree remove --force DIR`).
 */
import { existsSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './measure.js';
import { foleCommands, type FoleBuild } from './tools/fole.js';
import { fileSafe, type FoleName } from './tools/tool.js';

export interface BaselineBuild extends FoleBuild {
  ref: string;
  commit: string;
  /** The worktree the baseline was built in. */
  dir: string;
  /** Remove the worktree and git's record of it. */
  remove(): void;
}

/** Build `ref` of the repository at `repoRoot` in a detached worktree under `outDir`; throws if it cannot. */
export function buildBaseline(repoRoot: string, ref: string, outDir: string, log: (m: string) => void): BaselineBuild {
  const resolved = run('git', ['-C', repoRoot, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], {
    allowFail: true,
  });
  const commit = resolved.stdout.trim();
  if (resolved.status !== 0 || commit === '') throw new Error(`--baseline ${ref}: not a commit in ${repoRoot}`);
  const short = commit.slice(0, 7);
  const name: FoleName = `fole@${ref}`;
  const dir = join(outDir, `baseline-${fileSafe(name)}-${short}-${process.pid}`);
  log(`baseline ${ref} = ${short}: git worktree add --detach ${dir}`);
  rmSync(dir, { recursive: true, force: true });
  run('git', ['-C', repoRoot, 'worktree', 'add', '--detach', '--quiet', dir, commit]);
  const remove = (): void => {
    const r = run('git', ['-C', repoRoot, 'worktree', 'remove', '--force', dir], { allowFail: true });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      run('git', ['-C', repoRoot, 'worktree', 'prune'], { allowFail: true });
    }
  };
  try {
    // the link's target, not the link: the repository's own node_modules may itself be a symlink
    symlinkSync(realpathSync(join(repoRoot, 'node_modules')), join(dir, 'node_modules'), 'dir');
    if (!existsSync(join(dir, 'tsconfig.build.json'))) throw new Error(`${short} has no tsconfig.build.json`);
    if (existsSync(join(dir, 'native', 'binding.gyp'))) {
      // its own AES-GCM module, built as `npm install` builds it (the package's install script)
      log(`baseline ${ref}: npm run install (native/)`);
      const n = run('npm', ['run', 'install'], { cwd: dir, allowFail: true });
      if (n.status !== 0) throw new Error(`building native/ failed: ${(n.stdout + n.stderr).trim().slice(-2000)}`);
    }
    log(`baseline ${ref}: npx tsc -p tsconfig.build.json`);
    const b = run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: dir, allowFail: true });
    if (b.status !== 0) throw new Error(`tsc failed: ${(b.stdout + b.stderr).trim().slice(-2000)}`);
    const cli = join(dir, 'dist', 'cli', 'main.js');
    if (!existsSync(cli)) throw new Error(`the build has no ${cli}`);
    const version = `fole-backup ${run(process.execPath, [cli, '--version']).stdout.trim()} (${ref} = ${short})`;
    return { name, cli, version, commands: foleCommands(cli), ref, commit, dir, remove };
  } catch (err) {
    remove();
    throw new Error(`--baseline ${ref}: ${(err as Error).message}`, { cause: err });
  }
}
