/**
 * Changing a JSON value the way a forger or a flipped byte would, for the
 * validation and fuzz tests of repository objects: any slot deleted or set to
 * any value, or one named slot changed.
 */

type Container = Record<string, unknown> | unknown[];

/** Every (container, key) in a JSON value, containers before what they hold. */
function jsonSlots(v: unknown): [Container, string | number][] {
  const out: [Container, string | number][] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) {
      for (const [i, y] of x.entries()) {
        out.push([x, i]);
        walk(y);
      }
    } else if (typeof x === 'object' && x !== null) {
      for (const [k, y] of Object.entries(x)) {
        out.push([x as Record<string, unknown>, k]);
        walk(y);
      }
    }
  };
  walk(v);
  return out;
}

/** One change: the `which`-th slot (modulo their number) deleted, or set to `value`. */
export interface JsonMutation {
  which: number;
  op: 'delete' | 'set';
  value: unknown;
}

/** Apply `changes` to `v` in place, in order; an element deleted from an array closes the gap. */
export function mutateJson(v: unknown, changes: readonly JsonMutation[]): void {
  for (const c of changes) {
    const all = jsonSlots(v);
    if (all.length === 0) return;
    const [container, key] = all[c.which % all.length] as [Container, string | number];
    if (c.op === 'delete') {
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[key as string];
    } else (container as Record<string | number, unknown>)[key] = c.value;
  }
}

/** Deletes the slot instead of setting it, in setAt. */
export const DELETE: unique symbol = Symbol('delete');

/**
 * Set the slot at `path` (keys joined by dots, array indexes as numbers:
 * `manifest.projects.0.maps.0.path`) to `to`, or delete it when `to` is DELETE.
 * Throws when a container on the way is missing: a test that names a slot its
 * fixture lacks is wrong, and must not pass by changing nothing.
 */
export function setAt(v: unknown, path: string, to: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() as string;
  let at: unknown = v;
  for (const k of keys) {
    if (typeof at !== 'object' || at === null || !(k in at)) throw new Error(`setAt: no ${k} on the way to ${path}`);
    at = (at as Record<string, unknown>)[k];
  }
  if (typeof at !== 'object' || at === null) throw new Error(`setAt: ${path} is not in a container`);
  const container = at as Record<string, unknown>;
  if (to === DELETE) delete container[last];
  else container[last] = to;
}
