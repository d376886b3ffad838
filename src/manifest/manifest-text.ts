/**
 * FOLE's manifest.json of a snapshot, rendered from tree entries pushed in
 * tree order instead of read by the renderer itself: renderManifest
 * (src/manifest/manifest.ts) feeds it from two tree walks, and verify feeds it
 * from the walks it makes for its own checks rather than reading the tree
 * twice more for it. Layout: two-space indented JSON, one file entry per line.
 *
 * The manifest lists the files twice (projects[].files, then fullFileList), so
 * it takes two walks: every entry goes to project() in the first, then
 * startFileList(), then every entry to listed() in the second, then end().
 */
import type { ProjectHead, Snapshot, TreeEntry } from '../snapshot/snapshot.js';

/** Where the text goes (verify: into a hash). */
export type TextOut = (text: string) => void;

const fileLine = (e: TreeEntry): string => `{"path":${JSON.stringify(e.path)},"sha256":"${e.sha256 ?? ''}"}`;

function indent(json: string, spaces: number): string {
  return json.replace(/\n/g, `\n${' '.repeat(spaces)}`);
}

export class ManifestText {
  private readonly byId: Map<string, ProjectHead>;
  private open: string | undefined;
  private firstProject = true;
  private firstFile = true;
  private firstListed = true;

  constructor(
    private readonly snap: Snapshot,
    private readonly write: TextOut,
  ) {
    const m = snap.manifest;
    this.byId = new Map(m.projects.map((p) => [p.projectId, p]));
    const head = {
      backupId: m.backupId,
      createdAt: m.createdAt,
      createdBy: m.createdBy,
      foleVersion: m.foleVersion,
      storageSpecVersion: m.storageSpecVersion,
      modules: m.modules,
    };
    write(`${JSON.stringify(head, null, 2).slice(0, -2)},\n  "projects": [`);
  }

  /** First walk: every entry, in tree order (entries under projects/<id>/ are contiguous). */
  project(e: TreeEntry): void {
    const parts = e.path.split('/');
    if (parts[0] !== 'projects' || parts.length < 2) {
      this.closeProject();
      return;
    }
    const id = parts[1] as string;
    if (this.open !== id) {
      this.closeProject();
      if (!this.byId.has(id)) return;
      this.openProject(id);
    }
    if (e.kind === 'dir') return;
    this.write(`${this.firstFile ? '\n' : ',\n'}        ${fileLine(e)}`);
    this.firstFile = false;
  }

  /** Between the walks. */
  startFileList(): void {
    this.closeProject();
    this.write(this.firstProject ? '],\n' : '\n  ],\n');
    this.write(`  "core": ${indent(JSON.stringify(this.snap.manifest.core, null, 2), 2)},\n  "fullFileList": [`);
  }

  /** Second walk: every entry, in tree order. */
  listed(e: TreeEntry): void {
    if (e.kind === 'dir') return;
    this.write(`${this.firstListed ? '\n' : ',\n'}    ${fileLine(e)}`);
    this.firstListed = false;
  }

  end(): void {
    this.write(this.firstListed ? ']\n}\n' : '\n  ]\n}\n');
  }

  private closeProject(): void {
    if (this.open === undefined) return;
    this.write(this.firstFile ? ']\n    }' : '\n      ]\n    }');
    this.open = undefined;
  }

  private openProject(id: string): void {
    const p = this.byId.get(id) as ProjectHead;
    const body = JSON.stringify(
      { projectId: p.projectId, projectDb: p.projectDb, mapDbs: p.mapDbs, maps: p.maps },
      null,
      2,
    );
    this.write(`${this.firstProject ? '\n' : ',\n'}    ${indent(body.slice(0, -2), 4)},\n      "files": [`);
    this.firstProject = false;
    this.firstFile = true;
    this.open = id;
  }
}
