// What a manifest at the target lists, read from the target itself: prune
// deletes an image's child manifests too (distribution keeps an untagged
// manifest through a plain garbage-collect), and keeps whatever a kept index
// lists. A child already gone (a run killed half-way deleted it) is skipped,
// not an error: the rerun must get past it.
import { MAX_DEPTH, parseManifest, type Descriptor } from '../oci/graph.js';
import type { RegistryClient } from '../registry/client.js';
import { manifestOrNone } from '../registry/referrers.js';

export interface TargetGraph {
  readonly root: string;
  /** Every manifest present, children before their parents, the root last: the order to delete them in. */
  readonly manifests: readonly string[];
  /** Configs and layers the present manifests list. */
  readonly blobs: readonly Descriptor[];
}

/** The graph under `repo@digest` as the target holds it; undefined when the root is not there. */
export async function graphAt(client: RegistryClient, repo: string, digest: string, ref: string): Promise<TargetGraph | undefined> {
  const manifests: string[] = [];
  const blobs: Descriptor[] = [];
  const seen = new Set<string>();
  const ctx = { ref, advice: 'prune leaves it and what it lists alone; fix or delete it by hand' };
  const walk = async (d: string, declared: string | undefined, depth: number): Promise<boolean> => {
    if (seen.has(d)) return true;
    seen.add(d);
    const m = await manifestOrNone(client, repo, d);
    if (!m) return false;
    const parsed = parseManifest(m.bytes, d, declared ?? m.mediaType, ctx);
    if (depth < MAX_DEPTH) for (const c of parsed.children) await walk(c.digest, c.mediaType, depth + 1);
    if (parsed.config) blobs.push(parsed.config);
    blobs.push(...parsed.layers);
    manifests.push(d);
    return true;
  };
  return (await walk(digest, undefined, 0)) ? { root: digest, manifests, blobs } : undefined;
}

/** Index children of `repo@digest` (one level), for an index someone else tagged; none when it is not an index or not there. */
export async function childrenAt(client: RegistryClient, repo: string, digest: string): Promise<string[]> {
  const m = await manifestOrNone(client, repo, digest);
  if (!m) return [];
  return parseManifest(m.bytes, digest, m.mediaType, { ref: `${client.host}/${repo}@${digest}`, advice: 'prune keeps everything it might list' }).children.map((c) => c.digest);
}
