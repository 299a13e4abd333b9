// The manifests and blobs of one image in a bundle, from its verified
// entries: what unpack pushes and what serve offers under the image's names.
import { isIndexType } from '../oci/mediatypes.js';
import { BLOBS_PREFIX, type BundleImage } from './format.js';
import { BundleError, type BundleReader } from './reader.js';

export interface ImageGraph {
  /** Every manifest and index, children before their parents, the root last. */
  readonly manifests: Array<{ digest: string; mediaType: string }>;
  /** Configs and layers. */
  readonly blobs: Set<string>;
}

interface ManifestDoc {
  mediaType?: string;
  manifests?: Array<{ digest: string; mediaType: string }>;
  config?: { digest: string };
  layers?: Array<{ digest: string }>;
}

export async function readGraph(reader: BundleReader, image: BundleImage): Promise<ImageGraph> {
  const manifests: ImageGraph['manifests'] = [];
  const blobs = new Set<string>();
  const seen = new Set<string>();
  const visit = async (digest: string, mediaType: string, depth: number): Promise<void> => {
    if (depth > 4) throw new BundleError(`${image.ref}: manifests nest deeper than airlock follows`);
    if (seen.has(digest)) return;
    seen.add(digest);
    const bytes = await reader.readEntry(BLOBS_PREFIX + digest.slice(7)).catch((err: Error) => {
      throw new BundleError(`${image.ref}: manifest ${digest} is not in the bundle (${err.message})`);
    });
    let doc: ManifestDoc;
    try {
      doc = JSON.parse(bytes.toString('utf8')) as ManifestDoc;
    } catch {
      throw new BundleError(`${image.ref}: manifest ${digest} is not JSON`);
    }
    const type = doc.mediaType ?? mediaType;
    if (isIndexType(type) || Array.isArray(doc.manifests)) {
      for (const c of doc.manifests ?? []) await visit(c.digest, c.mediaType, depth + 1);
    } else {
      for (const d of [doc.config, ...(doc.layers ?? [])]) {
        if (!d) continue;
        try {
          reader.entry(BLOBS_PREFIX + d.digest.slice(7));
        } catch {
          throw new BundleError(`${image.ref}: blob ${d.digest} of manifest ${digest} is not in the bundle`);
        }
        blobs.add(d.digest);
      }
    }
    manifests.push({ digest, mediaType: type });
  };
  await visit(image.digest, image.mediaType, 0);
  return { manifests, blobs };
}
