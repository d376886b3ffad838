/**
 * Where FOLE keeps its own databases in a STORAGE_ROOT. A
 * database is recognised by its header wherever it is (src/sqlite/detect.ts);
 * these places only decide how much is at stake when one is damaged or
 * symlinked: FOLE's own database failing is a STOP, an upload that merely
 * looks like SQLite is not. FOLE's specs disagree on the names, so every name
 * they use counts, most preferred first.
 */

export const CORE_DB = 'core/core.db';
export const PROJECT_DB_NAMES: readonly string[] = ['project.db', 'project.sqlite', 'db.sqlite'];
export const MAP_DB_NAMES: readonly string[] = ['map.db', 'map.sqlite', 'db.sqlite'];
const MODULE_DB_NAMES: readonly string[] = ['module.db'];

/**
 * The places, as path patterns: `*` is one path component. The last
 * component is a list of file names.
 */
const PLACES: readonly (readonly (string | readonly string[])[])[] = [
  ['core', ['core.db']],
  ['projects', '*', PROJECT_DB_NAMES],
  ['projects', '*', 'maps', '*', MAP_DB_NAMES],
  ['modules', '*', MODULE_DB_NAMES],
];

function matches(part: string, pattern: string | readonly string[]): boolean {
  if (typeof pattern !== 'string') return pattern.includes(part);
  return pattern === '*' || pattern === part;
}

/** Whether `rel` ('/'-separated, relative to the root) is the place of one of FOLE's own databases. */
export function isFoleDatabasePath(rel: string): boolean {
  const parts = rel.split('/');
  return PLACES.some(
    (place) =>
      place.length === parts.length && parts.every((p, i) => matches(p, place[i] as string | readonly string[])),
  );
}

/**
 * Whether `rel` is one of FOLE's database places or a directory on the way to
 * one (`core`, `projects`, `projects/<id>`, `projects/<id>/maps`, …): what
 * must never be a symlink, or FOLE's data would lie outside the backup.
 */
export function leadsToFoleDatabase(rel: string): boolean {
  const parts = rel.split('/');
  return PLACES.some(
    (place) =>
      place.length >= parts.length && parts.every((p, i) => matches(p, place[i] as string | readonly string[])),
  );
}
