/**
 * The spec §4 manifest. ManifestBuilder collects the head (modules, projects,
 * core) while a backup streams its tree entries; renderManifest streams the
 * whole manifest.json (head + projects[].files + fullFileList) from a snapshot
 * and its tree, without holding the file list in memory.
 *
 * Hash formats follow the spec: database and template hashes as "sha256:<hex>",
 * file-list hashes as plain hex.
 */
import type { Repository } from '../repository/repository.js';
import type { ManifestHead, ProjectHead, Snapshot, TreeEntry } from '../snapshot/snapshot.js';
import { readTree } from '../snapshot/tree.js';

/** Preferred database file names, most preferred first (FOLE's specs disagree on the name). */
const PROJECT_DB_NAMES = ['project.db', 'project.sqlite', 'db.sqlite'];
const MAP_DB_NAMES = ['map.db', 'map.sqlite', 'db.sqlite'];

export const prefixed = (hex: string): string => `sha256:${hex}`;

function rank(name: string, preferred: readonly string[]): number {
  const i = preferred.indexOf(name);
  return i === -1 ? preferred.length : i;
}

export class ManifestBuilder {
  private readonly modules: string[] = [];
  private readonly projects = new Map<string, ProjectHead & { dbName?: string }>();
  private coreDb: string | null = null;
  private readonly templates: Record<string, string> = {};

  /** Feed every tree entry, in tree order. */
  observe(e: TreeEntry): void {
    const parts = e.path.split('/');
    const [top, second] = parts;
    if (e.kind === 'dir') {
      if (top === 'modules' && parts.length === 2 && second !== undefined) this.modules.push(second);
      if (top === 'projects' && parts.length === 2 && second !== undefined) {
        this.projects.set(second, { projectId: second, projectDb: null, mapDbs: [], maps: [] });
      }
      return;
    }
    const hash = e.sha256 ?? '';
    if (top === 'templates' && parts.length >= 2) this.templates[parts.slice(1).join('/')] = prefixed(hash);
    if (e.kind !== 'db') return;
    if (e.path === 'core/core.db') this.coreDb = prefixed(hash);
    if (top !== 'projects' || second === undefined) return;
    const project = this.projects.get(second);
    if (project === undefined) return;
    const name = parts[parts.length - 1] as string;
    if (parts.length === 3) {
      // the project's own database: prefer the conventional names, then the first one found
      if (project.dbName === undefined || rank(name, PROJECT_DB_NAMES) < rank(project.dbName, PROJECT_DB_NAMES)) {
        project.projectDb = prefixed(hash);
        project.dbName = name;
      }
    } else if (parts.length === 5 && parts[2] === 'maps') {
      const mapId = parts[3] as string;
      project.maps.push({ mapId, path: e.path, sha256: prefixed(hash) });
      project.maps.sort((a, b) => (a.mapId < b.mapId ? -1 : a.mapId > b.mapId ? 1 : rank(a.path.split('/')[4] ?? '', MAP_DB_NAMES) - rank(b.path.split('/')[4] ?? '', MAP_DB_NAMES)));
      project.mapDbs = project.maps.map((m) => m.sha256);
    }
  }

  head(fields: Omit<ManifestHead, 'modules' | 'projects' | 'core'>): ManifestHead {
    return {
      ...fields,
      modules: [...this.modules],
      projects: [...this.projects.values()].map(({ projectId, projectDb, mapDbs, maps }) => ({ projectId, projectDb, mapDbs, maps })),
      core: { coreDb: this.coreDb, templates: { ...this.templates } },
    };
  }
}

/** Where rendered text goes; awaited, so a slow stdout applies backpressure. */
export type TextSink = (text: string) => void | Promise<void>;

const fileLine = (e: TreeEntry): string => `{"path":${JSON.stringify(e.path)},"sha256":"${e.sha256 ?? ''}"}`;

function indent(json: string, spaces: number): string {
  return json.replace(/\n/g, '\n' + ' '.repeat(spaces));
}

/**
 * Stream the spec manifest.json of a snapshot. Layout: two-space indented JSON,
 * one file entry per line. Reads the tree twice (projects' files, then the full
 * list) so memory stays bounded.
 */
export async function renderManifest(repo: Repository, snap: Snapshot, write: TextSink): Promise<void> {
  const m = snap.manifest;
  const head = {
    backupId: m.backupId,
    createdAt: m.createdAt,
    createdBy: m.createdBy,
    foleVersion: m.foleVersion,
    storageSpecVersion: m.storageSpecVersion,
    modules: m.modules,
  };
  const headJson = JSON.stringify(head, null, 2);
  await write(headJson.slice(0, -2) + ',\n  "projects": [');

  // projects[] with their files: entries under projects/<id>/ are contiguous in tree order
  const byId = new Map(m.projects.map((p) => [p.projectId, p]));
  let open: string | undefined;
  let firstProject = true;
  let firstFile = true;
  const closeProject = async (): Promise<void> => {
    if (open === undefined) return;
    await write(firstFile ? ']\n    }' : '\n      ]\n    }');
    open = undefined;
  };
  const openProject = async (id: string): Promise<void> => {
    const p = byId.get(id) as ProjectHead;
    const body = JSON.stringify({ projectId: p.projectId, projectDb: p.projectDb, mapDbs: p.mapDbs, maps: p.maps }, null, 2);
    await write(`${firstProject ? '\n' : ',\n'}    ${indent(body.slice(0, -2), 4)},\n      "files": [`);
    firstProject = false;
    firstFile = true;
    open = id;
  };
  for await (const e of readTree(repo, snap.tree)) {
    const parts = e.path.split('/');
    if (parts[0] !== 'projects' || parts.length < 2) {
      await closeProject();
      continue;
    }
    const id = parts[1] as string;
    if (open !== id) {
      await closeProject();
      if (!byId.has(id)) continue;
      await openProject(id);
    }
    if (e.kind === 'dir') continue;
    await write(`${firstFile ? '\n' : ',\n'}        ${fileLine(e)}`);
    firstFile = false;
  }
  await closeProject();
  // projects that had no entries after their directory (empty) were opened by the dir entry itself
  await write(firstProject ? '],\n' : '\n  ],\n');

  await write(`  "core": ${indent(JSON.stringify(m.core, null, 2), 2)},\n  "fullFileList": [`);
  let first = true;
  for await (const e of readTree(repo, snap.tree)) {
    if (e.kind === 'dir') continue;
    await write(`${first ? '\n' : ',\n'}    ${fileLine(e)}`);
    first = false;
  }
  await write(first ? ']\n}\n' : '\n  ]\n}\n');
}

/** The whole manifest as an object (for small backups, tests and the library API). */
export async function readManifest(repo: Repository, snap: Snapshot): Promise<SpecManifest> {
  const parts: string[] = [];
  await renderManifest(repo, snap, (t) => {
    parts.push(t);
  });
  return JSON.parse(parts.join('')) as SpecManifest;
}

export interface SpecManifest {
  backupId: string;
  createdAt: string;
  createdBy: string;
  foleVersion: string;
  storageSpecVersion: string;
  modules: string[];
  projects: (ProjectHead & { files: { path: string; sha256: string }[] })[];
  core: { coreDb: string | null; templates: Record<string, string> };
  fullFileList: { path: string; sha256: string }[];
}
