/** File name suffixes of SQLite's side files: a database's content may be in its `-wal` until a checkpoint. */
export const SQLITE_SIDE_SUFFIXES: readonly string[] = ['-wal', '-shm', '-journal'];

/** A database file and its side files' names, the file first: what removing a database copy removes. */
export function withSideFiles(file: string): string[] {
  return [file, ...SQLITE_SIDE_SUFFIXES.map((x) => file + x)];
}
