// What a served bundle offers under which names: every image under its flat
// name (SPEC §3) and under <upstream host>/<path>, its tags, and the digests
// (manifests and blobs) that belong to each repository.
import { parseReference } from '../oci/reference.js';
import type { BundleImage } from '../bundle/format.js';
import { readGraph, type EntryReader } from '../bundle/graph.js';
import type { BundleReader } from '../bundle/reader.js';
import { hostComponent } from '../bundle/targets.js';

export interface TagEntry {
  readonly digest: string;
  readonly mediaType: string;
  /** Upstream registry host, to tell apart images that share a flat name (containerd sends ?ns=). */
  readonly upstream: string;
}

export interface Repo {
  readonly tags: Map<string, TagEntry[]>;
  /** Manifest digest → media type. */
  readonly manifests: Map<string, string>;
  readonly blobs: Set<string>;
}

export class Catalog {
  readonly repos = new Map<string, Repo>();

  /**
   * Reads (and so verifies) every manifest of every image; layers are left for first use.
   * With `entries` (a delta and its bases), external manifests are read from the base that holds them.
   */
  static async build(reader: BundleReader, entries?: EntryReader): Promise<Catalog> {
    const c = new Catalog();
    for (const image of reader.index.images) await c.add(reader, image, entries);
    return c;
  }

  private repo(name: string): Repo {
    let r = this.repos.get(name);
    if (!r) this.repos.set(name, (r = { tags: new Map(), manifests: new Map(), blobs: new Set() }));
    return r;
  }

  private async add(reader: BundleReader, image: BundleImage, entries?: EntryReader): Promise<void> {
    const ref = parseReference(image.ref);
    const names = [ref.repository, `${hostComponent(ref.registry)}/${ref.repository}`];
    const graph = await readGraph(reader, image, entries);
    const manifests = new Map(graph.manifests.map((m) => [m.digest, m.mediaType]));
    const blobs = graph.blobs;
    for (const name of names) {
      const r = this.repo(name);
      for (const [d, t] of manifests) r.manifests.set(d, t);
      for (const b of blobs) r.blobs.add(b);
      if (ref.tag !== undefined) {
        const list = r.tags.get(ref.tag) ?? [];
        list.push({ digest: image.digest, mediaType: image.mediaType, upstream: ref.registry });
        r.tags.set(ref.tag, list);
      }
    }
  }
}
