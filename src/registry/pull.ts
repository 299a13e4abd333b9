// Pulls one image or artifact graph into the content store: the root
// manifest or index (exact bytes), its children, and every config and layer
// blob. With a platform filter, an index is rewritten to keep only those
// platforms; the upstream digest is kept alongside.
import type { ContentStore } from '../cache/store.js';
import { formatPlatform, parsePlatform, type Platform } from '../oci/platform.js';
import { parseManifest, walkGraph, type Descriptor } from '../oci/graph.js';
import { isIndexType, isManifestType } from '../oci/mediatypes.js';
import { formatReference, type Reference } from '../oci/reference.js';
import { RegistryError, type RegistryClient } from './client.js';

export type { Descriptor };

export interface PulledGraph {
  /** Root in the bundle (the rewritten index when platforms were filtered). */
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly upstreamDigest?: string;
  readonly platforms: string[];
  /** Every blob of the graph, manifests first in walk order, then configs and layers; each once. */
  readonly blobs: Descriptor[];
  /** The digests of its manifests, the root first: what signatures and referrers hang off (SPEC §9). */
  readonly manifests: string[];
  /** Set when the platform filter was ignored because the reference pins the index digest. */
  readonly note?: string;
  /**
   * Settles when every blob of the graph is in the store. pullGraph returns as
   * soon as the manifests are resolved, so the bundle can be written while
   * layers still arrive.
   */
  readonly downloads: Promise<void>;
}

export interface PullHooks {
  /** Runs a transfer under the shared concurrency limit. */
  limit<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Fetches one blob into the store (deduplicated across images by the caller);
   * `urgent`: the walk waits for it (a config), so it must not queue behind layers.
   */
  fetchBlob(client: RegistryClient, repo: string, d: Descriptor, urgent?: boolean): Promise<void>;
  /** Dry run: resolve manifests only. */
  readonly dryRun: boolean;
  /** Told the upstream root digest as soon as it is known, before the walk: lookups about it can start then. */
  rootKnown?(digest: string): void;
}

export async function pullGraph(
  client: RegistryClient,
  reference: Reference,
  store: ContentStore,
  hooks: PullHooks,
  platforms: readonly string[] | undefined,
): Promise<PulledGraph> {
  const repo = reference.repository;
  const ctx = { ref: formatReference(reference), advice: BUILD_ADVICE };
  const root = await loadRoot(client, repo, reference.digest ?? reference.tag ?? 'latest', store, hooks);
  const top = parseManifest(root.bytes, root.digest, root.mediaType, ctx);

  let digest = root.digest;
  let bytes = root.bytes;
  let upstreamDigest: string | undefined;
  let note: string | undefined;
  if (top.kind === 'index' && platforms && platforms.length > 0) {
    const children = top.children;
    const wanted = platforms.map(parsePlatform);
    const keep = children.filter((c) => c.platform && wanted.some((w) => platformMatches(w, c.platform ?? {})));
    if (keep.length === 0) {
      const offered = children.map((c) => (c.platform?.os ? formatPlatform(c.platform as Platform) : '?')).join(', ');
      throw new RegistryError(`${formatReference(reference)}: none of the platforms ${platforms.join(', ')} is in its index (it has ${offered || 'none'}); change platforms`);
    }
    if (reference.digest) {
      note = `kept every platform: the reference pins the index digest ${reference.digest}, which a filtered index could not match`;
    } else if (keep.length < children.length) {
      // The one place airlock writes a manifest: a new index, new digest; the upstream one is recorded.
      bytes = Buffer.from(JSON.stringify({ ...top.json, manifests: keep }, null, 2));
      upstreamDigest = root.digest;
      digest = await store.putBuffer(bytes);
    }
  }

  // One walk, the same one verify, unpack and serve make over the bundle: each manifest loaded once, bounded, shapes checked.
  const graph = await walkGraph(
    { digest, bytes, mediaType: top.mediaType },
    {
      ...ctx,
      load: async (d) => {
        if (await store.has(d.digest)) return store.read(d.digest);
        const m = await hooks.limit(() => client.manifest(repo, d.digest));
        await store.putBuffer(m.bytes, m.digest);
        return m.bytes;
      },
    },
  );

  const seenPlatforms: string[] = [];
  for (const n of graph.manifests) {
    for (const c of n.children) {
      const p = c.platform;
      if (graph.byDigest.get(c.digest)?.kind !== 'manifest' || !p?.os || !p.architecture) continue;
      const name = formatPlatform(p as Platform);
      if (name !== 'unknown/unknown') seenPlatforms.push(name);
    }
  }

  let downloads: Promise<void> = Promise.resolve();
  if (!hooks.dryRun) {
    const config = graph.root.config;
    const needConfig = seenPlatforms.length === 0 && graph.root.kind === 'manifest' && config !== undefined;
    // The config first and out of the layers' queue: this walk waits for it, and bundle.json waits for every walk.
    const configFetch = needConfig ? hooks.fetchBlob(client, repo, config, true) : undefined;
    const fetches = new Map(graph.blobs.map((d) => [d.digest, d.digest === config?.digest && configFetch ? configFetch : hooks.fetchBlob(client, repo, d)]));
    downloads = Promise.all(fetches.values()).then(() => undefined);
    downloads.catch(() => undefined);
    if (needConfig && config) {
      // Only the (small) config is waited for here, to read the platform from it.
      await fetches.get(config.digest);
      const p = await configPlatform(store, config);
      if (p) seenPlatforms.push(p);
    }
  }
  const all: Descriptor[] = [...graph.manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size })), ...graph.blobs];
  return {
    digest,
    mediaType: graph.root.mediaType,
    size: all.reduce((n, d) => n + d.size, 0),
    ...(upstreamDigest && { upstreamDigest }),
    platforms: [...new Set(seenPlatforms)].sort(),
    blobs: all,
    manifests: graph.manifests.map((m) => m.digest),
    ...(note && { note }),
    downloads,
  };
}

const BUILD_ADVICE = 'airlock cannot carry it: remove the reference from the build manifest or point it at a well-formed image';

/** The root manifest by tag or digest: from the store when we know its digest, else from the registry, stored verified. */
async function loadRoot(client: RegistryClient, repo: string, ref: string, store: ContentStore, hooks: PullHooks): Promise<{ digest: string; bytes: Buffer; mediaType?: string }> {
  let digest = ref.startsWith('sha256:') ? ref : undefined;
  let mediaType: string | undefined;
  if (!digest) {
    const head = await hooks.limit(() => client.resolve(repo, ref));
    if (head) {
      digest = head.digest;
      // A registry that cannot say answers application/json; the manifest's own mediaType decides then.
      if (isIndexType(head.mediaType) || isManifestType(head.mediaType)) mediaType = head.mediaType;
    }
  }
  if (digest) hooks.rootKnown?.(digest);
  if (digest && (await store.has(digest))) return { digest, bytes: await store.read(digest), ...(mediaType && { mediaType }) };
  const m = await hooks.limit(() => client.manifest(repo, digest ?? ref));
  if (!digest) hooks.rootKnown?.(m.digest);
  await store.putBuffer(m.bytes, m.digest);
  return { digest: m.digest, bytes: m.bytes, mediaType: m.mediaType };
}

/** linux/arm64 matches linux/arm64/v8 and a missing variant; a requested variant must match. */
export function platformMatches(want: Platform, have: { os?: string; architecture?: string; variant?: string }): boolean {
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  if (!want.variant) return true;
  const norm = (v: string | undefined) => v ?? (have.architecture === 'arm64' ? 'v8' : undefined);
  return norm(have.variant) === want.variant;
}

async function configPlatform(store: ContentStore, config: Descriptor | undefined): Promise<string | undefined> {
  if (!config || config.size > 1024 * 1024 || !(await store.has(config.digest))) return undefined;
  try {
    const c = JSON.parse((await store.read(config.digest)).toString('utf8')) as { os?: unknown; architecture?: unknown; variant?: unknown };
    if (typeof c.os === 'string' && typeof c.architecture === 'string') {
      return formatPlatform({ os: c.os, architecture: c.architecture, ...(typeof c.variant === 'string' && { variant: c.variant }) });
    }
  } catch {
    // Not an image config (an artifact's): no platform.
  }
  return undefined;
}
