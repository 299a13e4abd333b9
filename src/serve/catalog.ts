// What a served bundle offers under which names: every image under its flat
// name (SPEC §3) and under <upstream host>/<path>, its tags, and the digests
// (manifests and blobs) that belong to each repository. The manifests attached
// to an image (SPEC §9) belong to its repository: a tag-scheme one
// (`sha256-<hex>.sig`) under its tag as well, and every one whose manifest
// names a `subject` in the referrers list of that subject. The fallback tag
// (`sha256-<hex>`, an index of referrers) is not offered: it stands in for
// the referrers API on registries without one, and serve has the API, so
// clients never look for it.
import { BLOBS_PREFIX, type BundleImage } from '../bundle/format.js';
import { readAttached, type AttachedGraph } from '../bundle/attached.js';
import { readGraph, type EntryReader, type ImageGraph } from '../bundle/graph.js';
import { BundleError, type BundleReader } from '../bundle/reader.js';
import { hostComponent } from '../bundle/targets.js';
import { AttachedError, referrerDescriptor, subjectOf, type ReferrerDescriptor } from '../oci/attached.js';
import { parseReference } from '../oci/reference.js';
import { printable } from '../util/printable.js';

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
  /**
   * Subject digest → descriptors (as a referrers list carries them, from the
   * carried bytes) of the attached manifests that name it as their `subject`,
   * sorted by digest, each once.
   */
  readonly referrers: Map<string, ReferrerDescriptor[]>;
}

export class Catalog {
  readonly repos = new Map<string, Repo>();

  /**
   * Reads (and so verifies) every manifest of every image and every attached
   * manifest, each attached one checked against its image's graph
   * (readAttached) before it is offered; layers are left for first use. With
   * `entries` (a delta and its bases), external manifests are read from the
   * base that holds them. Throws BundleError naming what is wrong.
   */
  static async build(reader: BundleReader, entries?: EntryReader): Promise<Catalog> {
    const c = new Catalog();
    const graphs = new Map<string, ImageGraph>();
    for (const image of reader.index.images) {
      const graph = await readGraph(reader, image, entries);
      graphs.set(image.ref, graph);
      c.addImage(image, graph);
    }
    // A signature of an upstream index a platform filter rewrote is checked with the rest, but not served: no manifest here has its subject.
    for (const a of await readAttached(reader, graphs, entries)) if (!a.entry.upstream) await c.addAttached(a, entries ?? reader);
    return c;
  }

  private repo(name: string): Repo {
    let r = this.repos.get(name);
    if (!r) this.repos.set(name, (r = { tags: new Map(), manifests: new Map(), blobs: new Set(), referrers: new Map() }));
    return r;
  }

  /** The repositories an image (by its ref) is offered under, and its upstream host. */
  private reposOf(ref: string): { repos: Repo[]; upstream: string; tag?: string } {
    const r = parseReference(ref);
    return { repos: [r.repository, `${hostComponent(r.registry)}/${r.repository}`].map((n) => this.repo(n)), upstream: r.registry, ...(r.tag !== undefined && { tag: r.tag }) };
  }

  private addImage(image: BundleImage, graph: ImageGraph): void {
    const { repos, upstream, tag } = this.reposOf(image.ref);
    for (const r of repos) {
      for (const m of graph.manifests) r.manifests.set(m.digest, m.mediaType);
      for (const b of graph.blobs) r.blobs.add(b);
      if (tag !== undefined) addTag(r, tag, { digest: image.digest, mediaType: image.mediaType, upstream });
    }
  }

  private async addAttached(a: AttachedGraph, entries: EntryReader): Promise<void> {
    const { entry } = a;
    const bytes = await entries.readEntry(BLOBS_PREFIX + entry.digest.slice(7));
    // readAttached checked that a subject the manifest names is the entry's.
    const subject = subjectOf(bytes);
    let descriptor: ReferrerDescriptor | undefined;
    try {
      if (subject !== undefined) descriptor = referrerDescriptor(bytes, entry.digest, entry.mediaType);
    } catch (err) {
      if (!(err instanceof AttachedError)) throw err;
      throw new BundleError(printable(`attached ${entry.digest} (in ${entry.repository}): ${err.message}; airlock does not use this bundle: build it again with this version of airlock`));
    }
    const { repos, upstream } = this.reposOf(a.image);
    for (const r of repos) {
      for (const m of a.manifests) r.manifests.set(m.digest, m.mediaType);
      for (const b of a.blobs) r.blobs.add(b);
      if (entry.tag !== undefined) addTag(r, entry.tag, { digest: entry.digest, mediaType: entry.mediaType, upstream });
      if (subject !== undefined && descriptor) {
        const list = r.referrers.get(subject) ?? [];
        if (!list.some((d) => d.digest === descriptor.digest)) {
          list.push(descriptor);
          list.sort((x, y) => (x.digest < y.digest ? -1 : x.digest > y.digest ? 1 : 0));
        }
        r.referrers.set(subject, list);
      }
    }
  }
}

function addTag(r: Repo, tag: string, t: TagEntry): void {
  const list = r.tags.get(tag) ?? [];
  list.push(t);
  r.tags.set(tag, list);
}
