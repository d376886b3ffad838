/**
 * The tree stage: takes the saved entries in tree order and writes them as tree
 * blobs (restic's tree saver), feeding the manifest and counting the snapshot's
 * figures on the way.
 */
import { ManifestBuilder } from '../manifest/manifest.js';
import type { BlobWriter } from '../repository/slices.js';
import type { SnapshotDatabase } from '../snapshot/snapshot.js';
import { TreeWriter } from '../snapshot/tree.js';
import type { SavedEntry } from './save-files.js';

/** The snapshot's figures a tree knows. */
export interface TreeCounts {
  files: number;
  dirs: number;
  /** Bytes of content (files + database copies). */
  bytes: number;
  filesNew: number;
  filesChanged: number;
  filesUnchanged: number;
  dbsCaptured: number;
  dbsUnchanged: number;
  /** Files and databases the parent backup held too. */
  inParent: number;
}

export interface SavedTree {
  /** Tree blob ids, in order. */
  tree: string[];
  /** Every database, in tree order. */
  databases: SnapshotDatabase[];
  counts: TreeCounts;
  /** Fed with every entry; gives the snapshot's manifest head. */
  manifest: ManifestBuilder;
}

export class TreeSaver {
  private readonly writer: TreeWriter;
  private readonly manifest = new ManifestBuilder();
  private readonly databases: SnapshotDatabase[] = [];
  private readonly counts: TreeCounts = {
    files: 0,
    dirs: 0,
    bytes: 0,
    filesNew: 0,
    filesChanged: 0,
    filesUnchanged: 0,
    dbsCaptured: 0,
    dbsUnchanged: 0,
    inParent: 0,
  };

  constructor(repo: BlobWriter) {
    this.writer = new TreeWriter(repo);
  }

  /** Add the next entry; entries must come in tree order. */
  add({ entry, kind, database, inParent }: SavedEntry): Promise<void> {
    if (kind !== 'dir') this.counts[kind]++;
    if (inParent === true) this.counts.inParent++;
    if (database !== undefined) this.databases.push(database);
    if (entry.kind === 'dir') this.counts.dirs++;
    else {
      this.counts.files++;
      this.counts.bytes += entry.size ?? 0;
    }
    this.manifest.observe(entry);
    return this.writer.add(entry);
  }

  /** Store what is left of the tree; the figures are final then. */
  async finish(): Promise<SavedTree> {
    const tree = await this.writer.finish();
    return { tree, databases: this.databases, counts: { ...this.counts }, manifest: this.manifest };
  }
}
