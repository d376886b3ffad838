/**
 * FOLE's backup manifest, manifest.json (docs/REPOSITORY_FORMAT.md, "The spec
 * manifest"). ManifestBuilder collects the head (modules, projects,
 * core) while a backup streams its tree entries; renderManifest streams the
 * whole manifest.json (head + projects[].files + fullFileList) from a snapshot
 * and its tree, without holding the file list in memory.
 *
 * Hash formats are the ones FOLE's manifest uses: database and template hashes as "sha256:<hex>",
 * file-list hashes as plain hex.
 */
import type { BlobReader } from '../repository/slices.js';
import type { ManifestHead, ProjectHead, Snapshot, TreeEntry } from '../snapshot/snapshot.js';
import { readTree } from '../snapshot/tree.js';
import { ManifestText } from './manifest-text.js';
import { CORE_DB, MAP_DB_NAMES, PROJECT_DB_NAMES } from '../storage/fole-layout.js';

const prefixed = (hex: string): string => `sha256:${hex}`;

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
    // most entries are plain files outside templates/ (tiles, uploads): nothing to note, and
    // splitting each path would make a few strings per file of a million-file tree
    if (e.kind === 'file' && !e.path.startsWith('templates/')) return;
    if (e.kind === 'dir' && e.path.indexOf('/') !== e.path.lastIndexOf('/')) return;
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
    if (e.path === CORE_DB) this.coreDb = prefixed(hash);
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
      project.maps.sort((a, b) =>
        a.mapId < b.mapId
          ? -1
          : a.mapId > b.mapId
            ? 1
            : rank(a.path.split('/')[4] ?? '', MAP_DB_NAMES) - rank(b.path.split('/')[4] ?? '', MAP_DB_NAMES),
      );
      project.mapDbs = project.maps.map((m) => m.sha256);
    }
  }

  head(fields: Omit<ManifestHead, 'modules' | 'projects' | 'core'>): ManifestHead {
    return {
      ...fields,
      modules: [...this.modules],
      projects: [...this.projects.values()].map(({ projectId, projectDb, mapDbs, maps }) => ({
        projectId,
        projectDb,
        mapDbs,
        maps,
      })),
      core: { coreDb: this.coreDb, templates: { ...this.templates } },
    };
  }
}

/** Where rendered text goes; awaited, so a slow stdout applies backpressure. */
export type TextSink = (text: string) => void | Promise<void>;

/** Rendered text is handed to the sink in pieces of about this many characters. */
const SINK_CHUNK = 64 * 1024;

/**
 * Stream FOLE's manifest.json of a snapshot (layout: ManifestText,
 * src/manifest/manifest-text.ts). Reads the tree twice (projects' files, then
 * the full list) so memory stays bounded.
 */
export async function renderManifest(repo: BlobReader, snap: Snapshot, write: TextSink): Promise<void> {
  let pending = '';
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const text = pending;
    pending = '';
    await write(text);
  };
  const text = new ManifestText(snap, (t) => {
    pending += t;
  });
  for await (const e of readTree(repo, snap.tree)) {
    text.project(e);
    if (pending.length >= SINK_CHUNK) await flush();
  }
  text.startFileList();
  for await (const e of readTree(repo, snap.tree)) {
    text.listed(e);
    if (pending.length >= SINK_CHUNK) await flush();
  }
  text.end();
  await flush();
}

/** The whole manifest as an object (for small backups, tests and the library API). */
export async function readManifest(repo: BlobReader, snap: Snapshot): Promise<SpecManifest> {
  const parts: string[] = [];
  await renderManifest(repo, snap, (t) => {
    parts.push(t);
  });
  return JSON.parse(parts.join('')) as SpecManifest;
}

/** A backup's manifest in the spec's shape: the backup's identity, its databases and every file with its SHA-256. */
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
