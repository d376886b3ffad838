/**
 * Where a chain of trust objects (an actor registry, an audit log) is stored: a repository's own in its own
 * folder (`registry/`, `audit/`), or one carried from another repository behind a prefix naming its origin, in
 * a folder it shares with other objects (carried-trail.ts).
 */
import type { Backend, ObjectType } from '../backend/backend.js';

export interface ObjectPlace {
  type: ObjectType;
  /** Put before every object name ('' for a repository's own chain). */
  prefix: string;
}

/** The names of the objects in `place`, without its prefix; other objects in the folder are skipped. */
export async function* namesIn(backend: Backend, place: ObjectPlace): AsyncIterable<string> {
  for await (const o of backend.list(place.type)) {
    if (o.name.startsWith(place.prefix)) yield o.name.slice(place.prefix.length);
  }
}
