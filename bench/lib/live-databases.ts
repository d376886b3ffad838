/**
 * Stands in for the running FOLE server: one idle connection to every
 * database of the tree, held open for the whole run.
 *
 * Why: SQLite checkpoints a WAL database and deletes its -wal when the LAST
 * connection to it closes. Without a live server, the first tool to open a
 * database (fole-backup's capture, or the sqlite3 `.backup` a restic or Borg
 * user runs) would be that last connection and would change the tree the
 * next tool sees. With this holder, the tree stays as a live FOLE leaves it:
 * committed rows in -wal, main files untouched by readers.
 *
 * The connections live in a child process of their own. SQLite marks an open
 * WAL connection with a POSIX lock on the database file, and closing ANY file
 * descriptor of that file in the same process drops the process's locks on it:
 * the harness reading a database's header in its own process (the mutation's
 * scan) would leave every database looking unused to other processes, and the
 * next sqlite3 `.backup` to close would checkpoint the -wal away.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { Readable, Writable } from 'node:stream';

/** The holder: opens every path of the first line of stdin, says `ready`, closes them all when stdin ends. */
const HOLDER = `
const Database = require(process.argv[1]);
const open = [];
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  if (buf === null) return;
  buf += d;
  const nl = buf.indexOf('\\n');
  if (nl < 0) return;
  const paths = JSON.parse(buf.slice(0, nl));
  buf = null;
  try {
    for (const p of paths) {
      const db = new Database(p, { fileMustExist: true });
      // a first read maps the WAL index: from here on this connection counts as open
      db.prepare('SELECT count(*) FROM sqlite_schema').get();
      open.push(db);
    }
  } catch (err) {
    process.stdout.write('error ' + String(err && err.message).replace(/\\n/g, ' ') + '\\n');
    process.exit(1);
  }
  process.stdout.write('ready\\n');
});
process.stdin.on('end', () => {
  for (const db of open) db.close();
  process.exit(0);
});
`;

export class LiveDatabases {
  private constructor(
    private readonly child: ChildProcessByStdio<Writable, Readable, null>,
    /** How many databases are held. */
    readonly count: number,
  ) {}

  /** Open every database of `paths` in a holder process; resolves once all are open. */
  static async open(paths: readonly string[]): Promise<LiveDatabases> {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const child = spawn(process.execPath, ['-e', HOLDER, sqlite], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.write(`${JSON.stringify(paths)}\n`);
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        got += d;
        if (got.includes('\n')) resolve(got);
      });
      child.on('exit', () => resolve(got));
    });
    if (!answer.startsWith('ready')) {
      child.kill();
      throw new Error(`holding the tree's databases open: ${answer.trim() || 'the holder exited'}`);
    }
    return new LiveDatabases(child, paths.length);
  }

  /** Close every connection (the last one to each database checkpoints it) and wait for the holder to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.stdin.end();
    await exited;
  }
}
