// A Trivy DB's dates, read from its layer once downloaded and signed into bundle.json.
import type { ContentStore } from '../cache/store.js';
import type { ArtifactItem, ImageItem } from '../manifest/types.js';
import type { PulledGraph } from '../registry/pull.js';
import type { TrivyDbInfo } from '../bundle/format.js';
import { isTrivyDbRole, readTrivyDbInfo, TRIVY_DB_LAYER, trivyDbLayer } from '../bundle/trivydb.js';

export const BUILD_DB_ADVICE = 'Trivy publishes a new DB every 6 hours (the Java DB daily): check that the source is not a stale mirror or a pinned digest';

/**
 * A Trivy DB's metadata.json dates, streamed from its layer in the cache once
 * the download is done; undefined for anything that is not a Trivy DB. A failed
 * download leaves it unknown (the failure itself is reported with the item).
 */
export async function readDbInfo(
  item: ImageItem | ArtifactItem,
  graph: PulledGraph,
  store: ContentStore,
  fetched: (digest: string) => Promise<void> | undefined,
  held: ReadonlyMap<string, unknown>,
): Promise<TrivyDbInfo | undefined> {
  const layer = trivyDbLayer(graph.blobs);
  if (!layer) return item.kind === 'artifact' && isTrivyDbRole(item.role) ? { problem: `it has no layer of type ${TRIVY_DB_LAYER} (or the Java DB's)` } : undefined;
  if (held.has(layer.digest) && !(await store.has(layer.digest, layer.size))) return { problem: 'its layer is held by a base and was not downloaded' };
  try {
    await (fetched(layer.digest) ?? graph.downloads);
  } catch {
    return { problem: 'its layer was not downloaded' };
  }
  return store.derived('trivydb', layer.digest, readTrivyDbInfo);
}

