/**
 * The commands that look inside backups without restoring them: ls, find, diff and dump. Each streams: a listing
 * of a 1M-file backup is written as it is read, never built in memory first (with --json too: JsonListWriter).
 */
import type { Command } from 'commander';
import type { TreeChange } from '../../browse/diff.js';
import type { Repository } from '../../repository/repository.js';
import type { Snapshot, TreeEntry } from '../../snapshot/snapshot.js';
import { printablePath } from '../../snapshot/validate.js';
import { exitWhenStdoutCloses } from '../closed-pipes.js';
import type { Context, Runner } from '../context.js';
import { collect } from '../repeatable.js';
import { formatBytes, JsonListWriter, terminalSafe, UsageError, writeStdout } from '../output.js';

/** `drwxr-xr-x` of an entry, as ls -l prints it. */
function modeString(e: TreeEntry): string {
  const bits = 'rwxrwxrwx'.split('').map((c, i) => ((e.mode >> (8 - i)) & 1 ? c : '-'));
  return (e.kind === 'dir' ? 'd' : '-') + bits.join('');
}

/** An entry as --json shows it: what it is, never its chunk list. */
function entryJson(e: TreeEntry): Record<string, unknown> {
  return {
    path: e.path,
    kind: e.kind,
    mode: e.mode,
    mtime: new Date(e.mtimeMs).toISOString(),
    ...(e.uid === undefined ? {} : { uid: e.uid, gid: e.gid }),
    ...(e.size === undefined ? {} : { size: e.size }),
    ...(e.sha256 === undefined ? {} : { sha256: e.sha256 }),
    ...(e.db === undefined ? {} : { pageSize: e.db.pageSize, pages: e.db.pageCount }),
  };
}

function entryLine(e: TreeEntry, long: boolean): string {
  const name = `${printablePath(e.path)}${e.kind === 'dir' ? '/' : ''}`;
  if (!long) return name;
  const owner = e.uid === undefined ? '-' : `${e.uid}:${e.gid}`;
  const size = e.kind === 'dir' ? '' : formatBytes(e.size ?? 0);
  const what = e.kind === 'db' ? '  (SQLite database, captured)' : '';
  const time = new Date(e.mtimeMs).toISOString();
  return `${modeString(e)}  ${owner.padStart(11)}  ${size.padStart(10)}  ${time}  ${name}${what}`;
}

async function snapshotOf(repo: Repository, ref: string): Promise<Snapshot> {
  const { loadSnapshot, resolveBackupId } = await import('../../snapshot/store.js');
  return loadSnapshot(repo, await resolveBackupId(repo, ref));
}

/** Run a read-only listing: a reader that has seen enough (`| head`) ends it. */
async function browsing(ctx: Context, op: 'browse' | 'dump', work: (repo: Repository) => Promise<void>): Promise<void> {
  exitWhenStdoutCloses();
  const repo = await ctx.openRepo(op);
  try {
    await work(repo);
  } finally {
    await repo.close();
  }
}

function registerLs(program: Command, run: Runner): void {
  program
    .command('ls')
    .argument('<backup>', 'backup id (or a unique prefix of at least 8 characters) or "latest"')
    .argument('[path]', 'a directory, file or database inside the backup (default: the STORAGE_ROOT itself)')
    .option('-l, --long', 'mode, owner, size and modification time of each entry')
    .option('-R, --recursive', 'everything under the path, not only what is directly in it')
    .description('list what a backup holds under a path, as `ls` would, without restoring it')
    .addHelpText(
      'after',
      `
Examples:
  fole-backup ls latest                       the top of the STORAGE_ROOT
  fole-backup ls latest projects/p1 -l        one project, with sizes and times
  fole-backup ls 3f2a9c1e projects -R --json  everything under projects/, one JSON document`,
    )
    .action(function (this: Command, ref: string, given: string | undefined) {
      const opts = this.opts<{ long?: boolean; recursive?: boolean }>();
      return run((ctx) =>
        browsing(ctx, 'browse', async (repo) => {
          const { treePathArg } = await import('../../browse/tree-path.js');
          const { listBackup } = await import('../../browse/ls.js');
          const path = treePathArg(given);
          const snap = await snapshotOf(repo, ref);
          const entries = listBackup(repo, snap, { path, recursive: opts.recursive === true });
          if (ctx.out.json) {
            const doc = new JsonListWriter({ backupId: snap.backupId, path }, 'entries');
            for await (const e of entries) await doc.item(entryJson(e));
            await doc.end();
          } else
            for await (const e of entries) await writeStdout(`${terminalSafe(entryLine(e, opts.long === true))}\n`);
        }),
      );
    });
}

function registerFind(program: Command, run: Runner): void {
  program
    .command('find')
    .argument('<pattern...>', 'a glob (*, **, ?, [abc], {a,b}); without a "/" it matches the last name of a path')
    .option('--backup <id>', 'look only in this backup (repeatable; default: every backup)', collect, [])
    .option('-l, --long', 'mode, owner, size and modification time of each entry')
    .description('which backups hold a path or a glob, newest backup first')
    .addHelpText(
      'after',
      `
Examples:
  fole-backup find project.db                   every project database, in every backup
  fole-backup find 'projects/p1/**'             everything under one project
  fole-backup find '*.png' --backup latest      the tiles of the newest backup`,
    )
    .action(function (this: Command, patterns: string[]) {
      const opts = this.opts<{ backup: string[]; long?: boolean }>();
      return run((ctx) =>
        browsing(ctx, 'browse', async (repo) => {
          const { findInBackups, pathMatcher } = await import('../../browse/find.js');
          const { scanSnapshots } = await import('../../snapshot/store.js');
          const matches = pathMatcher(patterns);
          const chosen =
            opts.backup.length === 0
              ? [...(await scanSnapshots(repo)).snapshots].reverse()
              : await Promise.all(opts.backup.map((ref) => snapshotOf(repo, ref)));
          const doc = ctx.out.json ? new JsonListWriter({ patterns }, 'matches') : undefined;
          let shown: string | undefined;
          let hits = 0;
          for await (const { snapshot, entry } of findInBackups(repo, chosen, matches, ctx.interruptible())) {
            hits++;
            if (doc !== undefined) {
              await doc.item({ backupId: snapshot.backupId, createdAt: snapshot.createdAt, ...entryJson(entry) });
              continue;
            }
            if (shown !== snapshot.backupId) {
              shown = snapshot.backupId;
              await writeStdout(`backup ${snapshot.backupId} (${snapshot.createdAt}):\n`);
            }
            await writeStdout(`  ${terminalSafe(entryLine(entry, opts.long === true))}\n`);
          }
          if (doc !== undefined) await doc.end({ backupsSearched: chosen.length, hits });
          else if (hits === 0) ctx.out.info(`no match in ${chosen.length} backup${chosen.length === 1 ? '' : 's'}`);
        }),
      );
    });
}

const OP_MARK = { added: '+', removed: '-' } as const;

function changeLine(c: TreeChange): string {
  if (c.op !== 'changed') {
    const e = c.op === 'added' ? c.after : c.before;
    const size = e.kind === 'dir' ? '' : `  ${formatBytes(e.size ?? 0)}`;
    return `${OP_MARK[c.op]} ${entryLine(e, false)}${size}${e.kind === 'db' ? '  (database)' : ''}`;
  }
  const mark = c.aspects.includes('kind') ? 'T' : c.aspects.includes('content') ? 'M' : 'U';
  const { before: a, after: b } = c;
  let detail = '';
  if (a.db !== undefined && b.db !== undefined) detail = `  (database: ${a.db.pageCount} → ${b.db.pageCount} pages)`;
  else if (mark === 'M') detail = `  ${formatBytes(a.size ?? 0)} → ${formatBytes(b.size ?? 0)}`;
  else if (mark === 'U') detail = `  (${c.aspects.join(', ')})`;
  return `${mark} ${entryLine(b, false)}${detail}`;
}

function registerDiff(program: Command, run: Runner): void {
  program
    .command('diff')
    .argument('<a>', 'the older backup (id, unique prefix or "latest")')
    .argument('<b>', 'the newer backup')
    .option('--metadata', 'also list entries whose only change is their mode, owner or modification time')
    .description(
      'what changed from backup A to backup B: files added (+), removed (-), changed (M), of another kind (T)',
    )
    .addHelpText(
      'after',
      `
A database is one item: M when its captured content differs, with its page counts.
With --metadata, U marks an entry whose only change is its mode, owner or time.

Example:
  fole-backup diff 3f2a9c1e latest`,
    )
    .action(function (this: Command, refA: string, refB: string) {
      const opts = this.opts<{ metadata?: boolean }>();
      return run((ctx) =>
        browsing(ctx, 'browse', async (repo) => {
          const { countChange, diffTrees, emptyDiffStats, isContentChange } = await import('../../browse/diff.js');
          const { readTree } = await import('../../snapshot/tree.js');
          const [a, b] = [await snapshotOf(repo, refA), await snapshotOf(repo, refB)];
          const stats = emptyDiffStats();
          const doc = ctx.out.json ? new JsonListWriter({ from: a.backupId, to: b.backupId }, 'changes') : undefined;
          for await (const c of diffTrees(readTree(repo, a.tree), readTree(repo, b.tree))) {
            countChange(stats, c);
            if (!isContentChange(c) && opts.metadata !== true) continue;
            if (doc !== undefined) {
              const e = c.op === 'removed' ? c.before : c.op === 'added' ? c.after : c.after;
              await doc.item({
                op: c.op,
                ...entryJson(e),
                ...(c.op === 'changed' ? { aspects: c.aspects, before: entryJson(c.before) } : {}),
              });
            } else await writeStdout(`${terminalSafe(changeLine(c))}\n`);
          }
          if (doc !== undefined) await doc.end({ stats });
          else {
            await writeStdout(
              `${stats.added} added, ${stats.removed} removed, ${stats.changed} changed` +
                `${opts.metadata === true ? `, ${stats.metadataOnly} with new metadata only` : ''}` +
                ` (${formatBytes(stats.addedBytes)} added, ${formatBytes(stats.removedBytes)} removed)\n`,
            );
          }
        }),
      );
    });
}

function registerDump(program: Command, run: Runner): void {
  program
    .command('dump')
    .argument('<backup>', 'backup id (or a unique prefix of at least 8 characters) or "latest"')
    .argument('<path>', 'a file or database inside the backup; a directory (or "/") is written as a tar stream')
    .description("write one file's bytes (or a directory as a tar stream) from a backup to stdout")
    .addHelpText(
      'after',
      `
Every chunk is checked as it is read, and the file's SHA-256 against the backup's; a
mismatch ends the output with exit status 3 (what was written is then not the file).
A database comes out as the consistent copy captured at backup time.

Examples:
  fole-backup dump latest projects/p1/project.db > project.db
  fole-backup dump latest projects/p1 | tar -x -C /tmp/p1-restored`,
    )
    .action((ref: string, given: string) =>
      run((ctx) =>
        browsing(ctx, 'dump', async (repo) => {
          if (process.stdout.isTTY === true) {
            throw new UsageError('dump writes raw bytes; stdout is a terminal', 'redirect it: `> FILE` or `| tar -x`');
          }
          const { dumpPath } = await import('../../browse/dump.js');
          const { treePathArg } = await import('../../browse/tree-path.js');
          const snap = await snapshotOf(repo, ref);
          const r = await dumpPath(repo, snap, treePathArg(given), process.stdout, ctx.interruptible());
          ctx.out.info(
            r.kind === 'tar'
              ? `wrote a tar of ${r.files} files (${formatBytes(r.bytes)} of content), each checked`
              : `wrote ${formatBytes(r.bytes)}, checked against the backup's SHA-256`,
          );
        }),
      ),
    );
}

export function registerBrowse(program: Command, run: Runner): void {
  registerLs(program, run);
  registerFind(program, run);
  registerDiff(program, run);
  registerDump(program, run);
}
