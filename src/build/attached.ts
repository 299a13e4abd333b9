// What is attached to the images a build carries (SPEC §9): for the top
// digest and every child manifest of each image and artifact, the cosign tag
// scheme and the OCI 1.1 referrers, found in the SOURCE repository and carried
// byte for byte. The attached manifests go into the content store (verified by
// discovery), their blobs through the build's BlobFetcher like any layer.
//
// Failures, as an operator expects when no policy requires signatures (a
// policy is the step after this one): a lookup that fails for another reason
// than "none there" (a 5xx after retries, a hostile answer) is a warning naming
// the subject, and the image is carried without what is attached to it. A blob
// of an attached manifest that is found but fails its digest (or cannot be
// fetched) fails the item like any of its blobs: what the bundle lists must be
// what upstream served.
import type { BundleAttached } from '../bundle/format.js';
import { imageRepository } from '../bundle/format.js';
import type { ContentStore } from '../cache/store.js';
import type { ArtifactItem, ImageItem } from '../manifest/types.js';
import { isIndexType } from '../oci/mediatypes.js';
import type { RegistryClient } from '../registry/client.js';
import type { Descriptor, PulledGraph } from '../registry/pull.js';
import { discoverAttached, type Discovery } from '../registry/referrers.js';
import type { BlobFetcher } from './fetch.js';
import { errorText } from './report.js';

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

export interface ItemAttached {
  /** bundle.json attached[] entries of this item. */
  readonly entries: BundleAttached[];
  /** The attached manifests and their blobs, each once: the bundle's blobs after the images'. */
  readonly blobs: Descriptor[];
  /** Settles when every blob of every attached manifest is in the store. */
  readonly downloads: Promise<void>;
}

/**
 * One lookup per source repository and subject for the whole build (an image
 * listed twice, or two images sharing a child, is asked about once), on slots
 * of its own so that it neither waits behind layers nor holds a slot one needs.
 */
export class AttachedFinder {
  private readonly lookups = new Map<string, Promise<Discovery | undefined>>();

  constructor(
    private readonly store: ContentStore,
    private readonly fetcher: Pick<BlobFetcher, 'fetch'>,
    private readonly limit: Limit,
    private readonly warn: (message: string) => void,
    /**
     * A signature policy is checked (build --policy, sync --policy): the attached blobs are fetched
     * on the manifests' slots, ahead of layers (the verdicts go into bundle.json, the tar's first
     * entry), and the signatures of an upstream index a platform filter rewrote are carried, with
     * that index's bytes, so that it can vouch for the platforms kept.
     */
    private readonly forPolicy = false,
  ) {}

  /** Starts the lookup of what hangs off an item's upstream root while its walk goes on. */
  start(client: RegistryClient, item: ImageItem | ArtifactItem, digest: string): void {
    // Awaited by find; a failure here (the cache refusing a write) is reported there, or not at all when the walk failed.
    this.lookup(client, item.reference.repository, digest, item.ref).catch(() => undefined);
  }

  async find(client: RegistryClient, item: ImageItem | ArtifactItem, graph: PulledGraph): Promise<ItemAttached> {
    const repo = item.reference.repository;
    // A platform filter rewrote the index: what hangs off the upstream one is looked for, to say it is not carried.
    const subjects = graph.upstreamDigest ? [graph.upstreamDigest, ...graph.manifests.slice(1)] : graph.manifests;
    const found = await Promise.all(subjects.map((s) => this.lookup(client, repo, s, item.ref)));
    const repository = imageRepository(item.ref);
    const entries: BundleAttached[] = [];
    const blobs = new Map<string, Descriptor>();
    const fetches: Promise<void>[] = [];
    for (const d of found) {
      if (!d || d.attached.length === 0) continue;
      const upstream = d.subject === graph.upstreamDigest;
      const carried = upstream && this.forPolicy ? d.attached.filter((a) => a.kind === 'signature' && !isIndexType(a.mediaType)) : upstream ? [] : d.attached;
      if (upstream && carried.length < d.attached.length) {
        this.warn(
          `${item.ref}: ${d.attached.length - carried.length} signature(s), attestation(s) or SBOM(s) are attached to its upstream index ${d.subject}, which the platform filter rewrote; they are left out (they are about the whole index, not the one carried). Keep every platform to carry them`,
        );
      }
      if (upstream && carried.length > 0) {
        // The index they sign travels as a blob: inside, the policy checks that it lists every platform carried.
        const bytes = await this.store.read(d.subject);
        if (!blobs.has(d.subject)) blobs.set(d.subject, { mediaType: indexMediaType(bytes), digest: d.subject, size: bytes.length });
      }
      for (const a of carried) {
        if (isIndexType(a.mediaType)) {
          this.warn(`${item.ref}: ${a.tag ?? `referrer ${a.digest}`} attached to ${a.subject} is an index (${a.mediaType}); airlock carries attached manifests, not indexes; left out`);
          continue;
        }
        const manifest: Descriptor = { mediaType: a.mediaType, digest: a.digest, size: a.bytes.length };
        entries.push({
          subject: a.subject,
          repository,
          digest: a.digest,
          mediaType: a.mediaType,
          ...(a.artifactType !== undefined && { artifactType: a.artifactType }),
          kind: a.kind,
          ...(a.tag !== undefined && { tag: a.tag }),
          size: [manifest, ...a.blobs].reduce((n, b) => n + b.size, 0),
          ...(upstream && { upstream: true as const }),
        });
        for (const b of [manifest, ...a.blobs]) if (!blobs.has(b.digest)) blobs.set(b.digest, b);
        for (const b of a.blobs) fetches.push(this.fetcher.fetch(client, repo, b, this.forPolicy));
      }
    }
    const downloads = Promise.all(fetches).then(() => undefined);
    downloads.catch(() => undefined);
    return { entries, blobs: [...blobs.values()], downloads };
  }


  private lookup(client: RegistryClient, repo: string, subject: string, ref: string): Promise<Discovery | undefined> {
    const key = `${client.host}/${repo}\0${subject}`;
    let p = this.lookups.get(key);
    if (!p) {
      p = this.discover(client, repo, subject, ref);
      this.lookups.set(key, p);
    }
    return p;
  }

  private async discover(client: RegistryClient, repo: string, subject: string, ref: string): Promise<Discovery | undefined> {
    let d: Discovery;
    try {
      d = await discoverAttached(client, repo, subject, { limit: this.limit });
    } catch (err) {
      this.warn(`${errorText(err, ref)}; looking for what is attached to ${client.host}/${repo}@${subject} failed, so it is carried without its signatures, attestations and SBOMs`);
      return undefined;
    }
    for (const w of d.warnings) this.warn(w);
    // Discovery checked each manifest against its digest: stored as served, like the walk's manifests.
    for (const a of d.attached) await this.store.putBuffer(a.bytes, a.digest);
    return d;
  }
}

/** The media type an index's own bytes declare (OCI index or Docker manifest list); OCI's when it says none. */
function indexMediaType(bytes: Buffer): string {
  try {
    const m = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof m === 'string' && isIndexType(m)) return m;
  } catch {
    // The walk parsed it already; a descriptor needs some type.
  }
  return 'application/vnd.oci.image.index.v1+json';
}
