// The receipt of an unpack (SPEC §6): what the target holds from this bundle
// and its bases, worked out from the bundle's graphs (and, for a delta's
// external manifests, from the target).
import pLimit from 'p-limit';
import { makeReceipt, type HeldAttached, type HeldImage, type Receipt } from '../delta/receipt.js';
import type { BundleAttached } from '../bundle/format.js';
import { walkGraph } from '../oci/graph.js';
import { RegistryClient } from '../registry/client.js';
import { readGraph, type ImageGraph } from '../bundle/graph.js';
import type { UnpackSource } from './source.js';
import type { TargetName } from '../bundle/targets.js';
import { fromRepository } from './externals.js';
import type { TargetOptions } from './unpack.js';

/**
 * The receipt once every image and file is at the target: each image's
 * manifests and blobs from the bundle (graphs already read are reused; the
 * others are read from their verified, re-hashed manifest entries, after a
 * walk over the tar's headers when the tar was not read yet). `attached`: the
 * attached manifests pushed (SPEC §9), each with the target repository it went to.
 */
export async function receiptFor(
  reader: UnpackSource,
  opts: TargetOptions,
  targets: readonly TargetName[],
  known: ReadonlyMap<string, ImageGraph>,
  scanned: boolean,
  attached: ReadonlyArray<{ entry: BundleAttached; repository: string }> = [],
): Promise<Receipt> {
  if (!scanned) await reader.scan();
  const inIndex = new Set(reader.index.blobs.map((b) => b.digest));
  const client = new RegistryClient(opts.registry.host, opts.http);
  const limit = pLimit(opts.concurrency);
  const held: HeldImage[] = await Promise.all(
    reader.index.images.map(async (image, i) => {
      const g = known.get(image.ref) ?? (await readGraph(reader, image));
      const target = targets[i]!;
      // A delta's external manifests are at the target (checked before pushing): what they list is read from there, so
      // the receipt names this image's repository for it too.
      const below = await Promise.all(g.externalManifests.map((m) => limit(() => belowAtTarget(client, target.repository, image.ref, m))));
      return { target, manifests: [...g.manifests, ...g.externalManifests].map((m) => m.digest), blobs: [...g.blobs, ...below.flat().filter((d) => inIndex.has(d))] };
    }),
  );
  // What still has no repository (a manifest the target would not serve again): where its base put it, when that is one of this bundle's repositories.
  const repositories = new Set(targets.map((t) => t.repository));
  const elsewhere = new Map<string, string>();
  for (const b of reader.index.blobs) {
    const repo = b.from && fromRepository(b.from, opts);
    if (b.external && repo !== undefined && repositories.has(repo)) elsewhere.set(b.digest, repo);
  }
  const heldAttached: HeldAttached[] = [];
  for (const a of attached) {
    const g = await readGraph(reader, { ref: `${a.entry.repository}@${a.entry.digest}`, digest: a.entry.digest, mediaType: a.entry.mediaType });
    heldAttached.push({ entry: a.entry, repository: a.repository, manifests: [...g.manifests, ...g.externalManifests].map((m) => m.digest), blobs: g.blobs });
  }
  return makeReceipt({ bundleJson: reader.bundleJson, index: reader.index, registry: opts.registry, layout: opts.layout, held, attached: heldAttached, elsewhere });
}

/** Every manifest, config and layer below an external manifest, walked at the target (each manifest checked against its digest); none when that fails. */
async function belowAtTarget(client: RegistryClient, repo: string, ref: string, m: { digest: string; mediaType: string }): Promise<string[]> {
  try {
    const root = await client.manifest(repo, m.digest);
    const graph = await walkGraph({ digest: m.digest, bytes: root.bytes, mediaType: m.mediaType }, { ref, advice: 'left out of the receipt', load: async (d) => (await client.manifest(repo, d.digest)).bytes });
    return [...graph.manifests.map((n) => n.digest), ...graph.blobs.map((d) => d.digest)];
  } catch {
    return [];
  }
}

