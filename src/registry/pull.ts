// Pulls one image or artifact graph into the content store: the root
// manifest or index (exact bytes), its children, and every config and layer
// blob. With a platform filter, an index is rewritten to keep only those
// platforms; the upstream digest is kept alongside.
import type { ContentStore } from '../cache/store.js';
import { formatPlatform, parsePlatform, type Platform } from '../oci/platform.js';
import { isIndexType, isManifestType, OCI_INDEX, OCI_MANIFEST } from '../oci/mediatypes.js';
import { formatReference, type Reference } from '../oci/reference.js';
import { RegistryError, type RegistryClient } from './client.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface PulledGraph {
  /** Root in the bundle (the rewritten index when platforms were filtered). */
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly upstreamDigest?: string;
  readonly platforms: string[];
  /** Every blob of the graph, manifests first in walk order, then configs and layers; each once. */
  readonly blobs: Descriptor[];
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
  /** Fetches one blob into the store (deduplicated across images by the caller). */
  fetchBlob(client: RegistryClient, repo: string, d: Descriptor): Promise<void>;
  /** Dry run: resolve manifests only. */
  readonly dryRun: boolean;
}

export async function pullGraph(
  client: RegistryClient,
  reference: Reference,
  store: ContentStore,
  hooks: PullHooks,
  platforms: readonly string[] | undefined,
): Promise<PulledGraph> {
  const repo = reference.repository;
  const rootRef = reference.digest ?? reference.tag ?? 'latest';
  const root = await loadManifest(client, repo, rootRef, store, hooks, undefined);
  const blobs = new Map<string, Descriptor>();
  const addBlob = (d: Descriptor) => {
    if (!blobs.has(d.digest)) blobs.set(d.digest, d);
  };
  const manifestsFirst: Descriptor[] = [];
  const seenPlatforms: string[] = [];

  let digest = root.digest;
  let bytes = root.bytes;
  let upstreamDigest: string | undefined;
  let note: string | undefined;

  const walk = async (m: Loaded, platformHint?: string): Promise<void> => {
    manifestsFirst.push({ mediaType: m.mediaType, digest: m.digest, size: m.bytes.length });
    const doc = m.json;
    if (isIndexType(m.mediaType)) {
      const children = (doc.manifests ?? []) as Descriptor[];
      for (const c of children) checkDescriptor(c, `${reference.registry}/${repo}@${m.digest}`);
      // Fetch children in parallel, walk them in index order: the bundle's byte order must not depend on timing.
      const loaded = await Promise.all(children.map((c) => loadManifest(client, repo, c.digest, store, hooks, c)));
      for (const [i, child] of loaded.entries()) {
        const p = children[i]?.platform;
        await walk(child, p?.os && p.architecture ? formatPlatform(p as Platform) : undefined);
      }
      return;
    }
    if (platformHint && platformHint !== 'unknown/unknown') seenPlatforms.push(platformHint);
    const parts: Descriptor[] = [];
    if (doc.config) parts.push(doc.config as Descriptor);
    for (const l of (doc.layers ?? []) as Descriptor[]) parts.push(l);
    for (const d of parts) {
      checkDescriptor(d, `${reference.registry}/${repo}@${m.digest}`);
      addBlob(d);
    }
  };

  if (isIndexType(root.mediaType) && platforms && platforms.length > 0) {
    const children = (root.json.manifests ?? []) as Descriptor[];
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
      const rewritten = Buffer.from(JSON.stringify({ ...root.json, manifests: keep }, null, 2));
      upstreamDigest = root.digest;
      digest = await store.putBuffer(rewritten);
      bytes = rewritten;
      root.json = { ...root.json, manifests: keep };
    }
  }
  const top: Loaded = { ...root, digest, bytes };
  await walk(top);

  let downloads: Promise<void> = Promise.resolve();
  if (!hooks.dryRun) {
    const fetches = new Map([...blobs.values()].map((d) => [d.digest, hooks.fetchBlob(client, repo, d)]));
    downloads = Promise.all(fetches.values()).then(() => undefined);
    downloads.catch(() => undefined);
    const config = root.json.config as Descriptor | undefined;
    if (seenPlatforms.length === 0 && isManifestType(root.mediaType) && config) {
      // Only the (small) config is waited for here, to read the platform from it.
      await fetches.get(config.digest);
      const p = await configPlatform(store, config);
      if (p) seenPlatforms.push(p);
    }
  }
  const all = [...manifestsFirst, ...blobs.values()];
  return {
    digest,
    mediaType: root.mediaType,
    size: all.reduce((n, d) => n + d.size, 0),
    ...(upstreamDigest && { upstreamDigest }),
    platforms: [...new Set(seenPlatforms)].sort(),
    blobs: all,
    ...(note && { note }),
    downloads,
  };
}

interface Loaded {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  json: { manifests?: unknown; config?: unknown; layers?: unknown; [k: string]: unknown };
}

/** A manifest by tag or digest: from the store when we have its digest, else from the registry, stored verified. */
async function loadManifest(
  client: RegistryClient,
  repo: string,
  ref: string,
  store: ContentStore,
  hooks: PullHooks,
  descriptor: Descriptor | undefined,
): Promise<Loaded> {
  let digest = ref.startsWith('sha256:') ? ref : undefined;
  let mediaType = descriptor?.mediaType;
  if (!digest) {
    const head = await hooks.limit(() => client.resolve(repo, ref));
    if (head) {
      digest = head.digest;
      mediaType = head.mediaType;
    }
  }
  if (digest && (await store.has(digest))) {
    const bytes = await store.read(digest);
    const json = parseJson(bytes, `${client.host}/${repo}@${digest}`);
    return { digest, bytes, json, mediaType: (typeof json.mediaType === 'string' ? json.mediaType : mediaType) ?? guessType(json) };
  }
  const m = await hooks.limit(() => client.manifest(repo, digest ?? ref));
  if (descriptor && m.size !== descriptor.size) {
    throw new RegistryError(`${client.host}/${repo}@${m.digest}: the manifest is ${m.size} bytes but its index says ${descriptor.size}`);
  }
  await store.putBuffer(m.bytes, m.digest);
  return { digest: m.digest, bytes: m.bytes, json: parseJson(m.bytes, `${client.host}/${repo}@${m.digest}`), mediaType: m.mediaType };
}

function parseJson(bytes: Buffer, what: string): Loaded['json'] {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Loaded['json'];
  } catch {
    // fall through
  }
  throw new RegistryError(`${what}: the manifest is not a JSON object`);
}

/** OCI manifests may omit mediaType; their shape says which they are. */
function guessType(json: Loaded['json']): string {
  return Array.isArray(json.manifests) ? OCI_INDEX : OCI_MANIFEST;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function checkDescriptor(d: Descriptor, where: string): void {
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string' || !DIGEST_RE.test(d.digest) || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new RegistryError(`${where}: a descriptor has a bad digest or size (${JSON.stringify(d)?.slice(0, 200)}); only sha256 content is supported`);
  }
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
