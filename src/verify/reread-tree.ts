/**
 * A second walk over a tree that readTree (src/snapshot/tree.ts) has already
 * validated in this run. Tree blobs are content-addressed and loadBlob checks
 * each against its id, so the second walk reads the very bytes the first one
 * validated: it parses them and skips the validation (most of readTree's
 * cost). Never use it on a tree that was not validated first.
 */
import type { BlobReader } from '../repository/slices.js';
import type { TreeEntry } from '../snapshot/snapshot.js';
import { treeLines } from '../snapshot/tree.js';

/**
 * The tree's entries, in order; at most `limit` of them (the first walk
 * stopped there when the tree turned out to be damaged).
 */
export async function* rereadTree(
  repo: BlobReader,
  blobIds: readonly string[],
  limit = Infinity,
): AsyncGenerator<TreeEntry> {
  let n = 0;
  for await (const line of treeLines(repo, blobIds)) {
    if (n++ >= limit) return;
    yield JSON.parse(line) as TreeEntry;
  }
}
