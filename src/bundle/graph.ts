// The manifests and blobs of one image in a bundle, from its verified
// entries: what verify checks, unpack pushes and serve offers under the
// image's names. The walk and its shape rules are build's (src/oci/graph.ts),
// so a bundle build wrote is one these accept, and nothing else is.
import { GraphError, walkGraph, type Descriptor } from '../oci/graph.js';
import { BLOBS_PREFIX, type BundleImage } from './format.js';
import { BundleError, type BundleReader } from './reader.js';

export interface ImageGraph {
  /** Every manifest and index, children before their parents, the root last. */
  readonly manifests: Array<{ digest: string; mediaType: string }>;
  /** Configs and layers (external ones included). */
  readonly blobs: Set<string>;
  /**
   * A delta's external manifests met in the walk (the root, or index children):
   * not in the tar, not walked; the target must hold them (and so what they list).
   */
  readonly externalManifests: Array<{ digest: string; mediaType: string }>;
}

const ADVICE = 'airlock does not use this bundle: build it again with this version of airlock';

/** Where a graph's entries are read from: one bundle, or (serve --base) a delta with its bases. */
export type EntryReader = Pick<BundleReader, 'readEntry' | 'has'>;

/**
 * With `entries` (a delta served with its bases), external entries are read
 * through it and walked like the rest; without, they are skipped and listed.
 */
export async function readGraph(reader: Pick<BundleReader, 'index'> & EntryReader, image: Pick<BundleImage, 'ref' | 'digest' | 'mediaType'>, entries?: EntryReader): Promise<ImageGraph> {
  const external = new Set(entries ? [] : reader.index.blobs.filter((b) => b.external).map((b) => b.digest));
  const from: EntryReader = entries ?? reader;
  if (external.has(image.digest)) return { manifests: [], blobs: new Set(), externalManifests: [{ digest: image.digest, mediaType: image.mediaType }] };
  const read = (digest: string): Promise<Buffer> =>
    from.readEntry(BLOBS_PREFIX + digest.slice(7)).catch((err: Error) => {
      throw new BundleError(`${image.ref}: manifest ${digest} is not in the bundle (${err.message})`);
    });
  let graph;
  try {
    graph = await walkGraph({ digest: image.digest, bytes: await read(image.digest), mediaType: image.mediaType }, {
      ref: image.ref,
      advice: ADVICE,
      load: (d: Descriptor) => read(d.digest),
      skip: (d: Descriptor) => external.has(d.digest),
    });
  } catch (err) {
    if (err instanceof GraphError) throw new BundleError(err.message);
    throw err;
  }
  for (const m of graph.manifests) {
    for (const d of m.config ? [m.config, ...m.layers] : m.layers) {
      if (external.has(d.digest)) continue;
      if (!from.has(BLOBS_PREFIX + d.digest.slice(7))) throw new BundleError(`${image.ref}: blob ${d.digest} of manifest ${m.digest} is not in the bundle; ${ADVICE}`);
    }
  }
  return {
    manifests: graph.pushOrder.map((m) => ({ digest: m.digest, mediaType: m.mediaType })),
    blobs: new Set(graph.blobs.map((d) => d.digest)),
    externalManifests: graph.skipped.map((d) => ({ digest: d.digest, mediaType: d.mediaType })),
  };
}
