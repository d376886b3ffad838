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
 */
import Database from 'better-sqlite3';

export class LiveDatabases {
  private readonly open: Database.Database[] = [];

  constructor(paths: readonly string[]) {
    try {
      for (const p of paths) {
        const db = new Database(p, { fileMustExist: true });
        // a first read maps the WAL index: from here on this connection counts as open
        db.prepare('SELECT count(*) FROM sqlite_schema').get();
        this.open.push(db);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  get count(): number {
    return this.open.length;
  }

  close(): void {
    for (const db of this.open.splice(0)) {
      try {
        db.close();
      } catch {
        // closing is best effort: the tree is about to be removed
      }
    }
  }
}
