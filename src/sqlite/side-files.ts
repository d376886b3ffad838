/** File name suffixes of SQLite's side files: a database's content may be in its `-wal` until a checkpoint. */
export const SQLITE_SIDE_SUFFIXES: readonly string[] = ['-wal', '-shm', '-journal'];
