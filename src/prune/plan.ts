// Step 2 of prune (SPEC §11): what to delete, worked out from the receipts and
// what the target holds now. Only what a --from receipt lists is ever a
// candidate; it is deleted when no --keep receipt lists it in that repository,
// no kept index lists it, and no tag a pruned receipt did not record points at
// it (deleting a manifest deletes every tag on it, in distribution and Harbor
// alike). The list comes out in the order to delete in (see ORDER below).
import pLimit from 'p-limit';
import { fallbackTag, parseReferrersIndex } from '../oci/attached.js';
import { isIndexType } from '../oci/mediatypes.js';
import type { RegistryClient } from '../registry/client.js';
import { manifestOrNone } from '../registry/referrers.js';
import { sidecarMatches, type FileTarget } from '../unpack/files-target.js';
import { sidecarPath } from '../manifest/paths.js';
import { childrenAt, graphAt, type TargetGraph } from './graph.js';
import type { LoadedReceipt } from './load.js';

export interface PlannedManifest {
  readonly repository: string;
  readonly digest: string;
  /** image: an image's root; child: a manifest an image's index lists; attached: a signature, attestation, SBOM or referrer (or what its index lists). */
  readonly role: 'image' | 'child' | 'attached';
  /** For people: the image's source reference, or the attached kind and its subject. */
  readonly of: string;
  /** Tags on it that a --from receipt recorded there: deleting the manifest deletes them. */
  readonly tags: readonly string[];
  /** For an image or attached root: what its manifests, config and layers hold (receipts' sizes). */
  readonly bytes: number;
}

/** A `sha256-<hex>` referrers fallback index that lists attached manifests being deleted. */
export interface PlannedFallback {
  readonly repository: string;
  readonly subject: string;
  readonly tag: string;
  /** Its digest now. */
  readonly digest: string;
  /** rewrite: PUT without the entries dropped; delete: nothing else is listed, so the index goes (by its digest). */
  readonly action: 'rewrite' | 'delete';
  readonly dropped: readonly string[];
  /** The rewritten index (rewrite only). */
  readonly bytes?: Buffer;
}

export interface PlannedFile {
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  /** The file is there with the recorded content. */
  readonly file: boolean;
  /** Its `.sha256` is there and records that content. */
  readonly sidecar: boolean;
}

/** Something a --from receipt lists that prune leaves in place, and why. */
export interface LeftAlone {
  readonly what: string;
  readonly why: string;
}

export interface PrunePlan {
  /** In deletion order. */
  readonly fallbacks: readonly PlannedFallback[];
  readonly manifests: readonly PlannedManifest[];
  readonly files: readonly PlannedFile[];
  readonly left: readonly LeftAlone[];
  /** What the --from receipts list that is gone already (a rerun, or deleted by hand). */
  readonly gone: readonly string[];
  /** Bytes of the distinct blobs only deleted manifests list: what the registry's garbage collection can free, at most. */
  readonly bytes: number;
}

export interface PlanInput {
  readonly from: readonly LoadedReceipt[];
  readonly keep: readonly LoadedReceipt[];
  readonly client: RegistryClient;
  readonly files?: FileTarget;
  readonly concurrency: number;
}

const key = (repo: string, digest: string) => `${repo}@${digest}`;

/** Where a graph to delete starts: an image or an attached manifest. */
interface Root {
  repository: string;
  digest: string;
  role: 'image' | 'attached';
  of: string;
  graph?: TargetGraph;
}

/** Attached manifests before images (see ORDER). */
const RANK: Record<Root['role'], number> = { attached: 0, image: 1 };
const FALLBACK_TAG = /^sha256-[a-f0-9]{64}$/;

/**
 * ORDER. A run killed at any point must leave nothing kept pointing at
 * something deleted, and a rerun must still find everything left to delete:
 * 1. fallback indexes rewritten first: one that stays (it lists others'
 *    referrers too) never lists a referrer that is gone;
 * 2. attached manifests next, before the images they are attached to: a
 *    referrer points at its subject, so it goes first, like every pointer
 *    before what it points at (a run cut short leaves an image without its
 *    signature, never a signature of nothing); the receipts list attached
 *    manifests by digest, so a rerun finds them either way;
 * 3. images, each index's children before the index: the children are found
 *    by reading the index at the target, so the index must be the last to go.
 * Kept things cannot point at deleted ones at all: what a kept index lists is
 * kept, and so is the subject of every kept attached manifest.
 */
export async function makePlan(input: PlanInput): Promise<PrunePlan> {
  const { client } = input;
  const limit = pLimit(input.concurrency);
  const sizes = new Map<string, number>();
  for (const r of [...input.from, ...input.keep]) for (const [d, n] of r.sizes) sizes.set(d, n);
  const left: LeftAlone[] = [];
  const gone: string[] = [];

  // What the --keep receipts hold: their manifests, what their indexes list, their attached manifests and those's subjects.
  const kept = new Map<string, string>(); // repo@digest → the keep receipt
  const keptBlobs = new Set<string>();
  await Promise.all(
    input.keep.flatMap((r) => [
      ...r.images.map((img) =>
        limit(async () => {
          const g = await graphAt(client, img.repository, img.digest, img.target);
          // A kept image the target does not serve: keep everything its receipt lists in that repository, to be safe.
          for (const d of g ? g.manifests : [img.digest, ...r.sizes.keys()]) kept.set(key(img.repository, d), r.file);
          for (const b of g?.blobs ?? []) keptBlobs.add(b.digest);
        }),
      ),
      ...r.attached.map((a) =>
        limit(async () => {
          const g = await graphAt(client, a.repository, a.digest, `${a.repository}@${a.digest}`);
          for (const d of [a.subject, ...(g?.manifests ?? [a.digest])]) kept.set(key(a.repository, d), r.file);
          for (const b of g?.blobs ?? []) keptBlobs.add(b.digest);
        }),
      ),
    ]),
  );
  for (const r of input.keep) for (const d of r.sizes.keys()) keptBlobs.add(d);

  // What the --from receipts list, read at the target (each root once per repository).
  const roots = new Map<string, Root>();
  const ours = new Map<string, Map<string, Set<string>>>(); // repo → tag → digests a --from receipt recorded it at
  const recordTag = (repo: string, tag: string, digest: string) => {
    const tags = ours.get(repo) ?? new Map<string, Set<string>>();
    ours.set(repo, tags);
    tags.set(tag, (tags.get(tag) ?? new Set()).add(digest));
  };
  const unkeptAttached = new Map<string, Set<string>>(); // repo → attached digests no kept receipt lists
  for (const r of input.from) {
    for (const a of r.attached) {
      if (!roots.has(key(a.repository, a.digest))) roots.set(key(a.repository, a.digest), { repository: a.repository, digest: a.digest, role: 'attached', of: `${a.kind} of ${a.subject}` });
      if (a.tag !== undefined) recordTag(a.repository, a.tag, a.digest);
      if (!kept.has(key(a.repository, a.digest))) unkeptAttached.set(a.repository, (unkeptAttached.get(a.repository) ?? new Set()).add(a.digest));
    }
    for (const img of r.images) {
      if (!roots.has(key(img.repository, img.digest))) roots.set(key(img.repository, img.digest), { repository: img.repository, digest: img.digest, role: 'image', of: img.ref });
      if (img.tag !== undefined) recordTag(img.repository, img.tag, img.digest);
    }
  }
  await Promise.all([...roots.values()].map((root) => limit(async () => {
    if (kept.has(key(root.repository, root.digest))) return;
    const g = await graphAt(client, root.repository, root.digest, `${client.host}/${root.repository}@${root.digest}`);
    if (g) root.graph = g;
    else gone.push(`${client.host}/${root.repository}@${root.digest} (${root.of})`);
  })));

  // Candidates: every manifest of those graphs that no kept receipt or kept index holds.
  const candidates = new Map<string, { root: Root; digest: string }>();
  for (const root of roots.values()) {
    if (kept.has(key(root.repository, root.digest))) {
      left.push({ what: `${client.host}/${root.repository}@${root.digest} (${root.of})`, why: `a kept receipt lists it: ${kept.get(key(root.repository, root.digest))}` });
      continue;
    }
    for (const d of root.graph?.manifests ?? []) if (!kept.has(key(root.repository, d)) && !candidates.has(key(root.repository, d))) candidates.set(key(root.repository, d), { root, digest: d });
  }

  const keptTags = new Set(input.keep.flatMap((r) => r.images.map((img) => `${img.repository}:${img.tag}`)));
  for (const img of input.from.flatMap((r) => r.images)) {
    if (img.tag !== undefined && kept.has(key(img.repository, img.digest)) && !keptTags.has(`${img.repository}:${img.tag}`)) {
      left.push({ what: `${client.host}/${img.repository}:${img.tag}`, why: `the registry API deletes a tag only with its manifest, and a kept receipt holds ${img.digest}: the tag stays` });
    }
  }

  // Tags: ours go with their manifest while they point at the recorded digest; any other tag on a candidate keeps it (and what it lists).
  const tagsOn = new Map<string, string[]>();
  const protectedBy = new Map<string, string>(); // repo@digest → why
  const repos = new Set([...candidates.values()].map((c) => c.root.repository));
  await Promise.all([...repos].map(async (repo) => {
    const tags = await limit(() => client.tags(repo));
    await Promise.all(tags.map((tag) => limit(async () => {
      if (FALLBACK_TAG.test(tag)) return; // referrers fallback indexes: rewritten below
      const recorded = ours.get(repo)?.get(tag);
      const now = await client.resolve(repo, tag).then((r) => r ?? manifestOrNone(client, repo, tag));
      if (!now) return;
      if (recorded?.has(now.digest)) {
        tagsOn.set(key(repo, now.digest), [...(tagsOn.get(key(repo, now.digest)) ?? []), tag]);
        return;
      }
      if (recorded) left.push({ what: `${client.host}/${repo}:${tag}`, why: `it points at ${now.digest} now, not at ${[...recorded].join(' or ')} as recorded (moved since): left alone` });
      const why = `tag ${client.host}/${repo}:${tag}, which no pruned receipt recorded there`;
      if (candidates.has(key(repo, now.digest))) protectedBy.set(key(repo, now.digest), `${why}, points at it`);
      for (const d of isIndexType(now.mediaType) ? await childrenAt(client, repo, now.digest) : []) if (candidates.has(key(repo, d))) protectedBy.set(key(repo, d), `${why}, is on an index that lists it`);
    })));
  }));
  for (const [k, why] of protectedBy) {
    const c = candidates.get(k)!;
    left.push({ what: `${client.host}/${c.root.repository}@${c.digest} (${c.root.of})`, why });
    candidates.delete(k);
  }

  const manifests: PlannedManifest[] = [];
  const deleted = new Set<string>();
  const ordered = [...roots.values()].sort((a, b) => RANK[a.role] - RANK[b.role]);
  for (const root of ordered) {
    for (const d of root.graph?.manifests ?? []) {
      const k = key(root.repository, d);
      if (!candidates.has(k) || deleted.has(k)) continue;
      deleted.add(k);
      const isRoot = d === root.digest;
      const graphBytes = isRoot && root.graph ? [...root.graph.manifests, ...root.graph.blobs.map((b) => b.digest)].reduce((n, x) => n + (sizes.get(x) ?? 0), 0) : 0;
      manifests.push({ repository: root.repository, digest: d, role: isRoot ? root.role : root.role === 'attached' ? 'attached' : 'child', of: root.of, tags: tagsOn.get(k) ?? [], bytes: graphBytes });
    }
  }

  // Bytes garbage collection can free: blobs of deleted graphs that nothing kept lists.
  const freed = new Set<string>();
  for (const root of roots.values()) {
    if (!root.graph || !deleted.has(key(root.repository, root.digest))) continue;
    for (const d of [...root.graph.manifests.filter((m) => deleted.has(key(root.repository, m))), ...root.graph.blobs.map((b) => b.digest)]) if (!keptBlobs.has(d)) freed.add(d);
  }

  // A fallback entry goes with its referrer: one deleted now, or gone already (a rerun after a crash), never one that stays.
  const goneAttached = new Set([...roots.values()].filter((r) => r.role === 'attached' && !r.graph && unkeptAttached.get(r.repository)?.has(r.digest)).map((r) => key(r.repository, r.digest)));
  const fallbacks = await planFallbacks(client, input.from, (k) => deleted.has(k) || goneAttached.has(k), limit);
  const files = input.files ? await planFiles(input.files, input.from, input.keep, left, gone, limit) : [];
  return { fallbacks, manifests, files, left, gone, bytes: [...freed].reduce((n, d) => n + (sizes.get(d) ?? 0), 0) };
}

/** The fallback index of every subject with an attached manifest that `goes` (repo@digest): its entries for those dropped. */
async function planFallbacks(client: RegistryClient, from: readonly LoadedReceipt[], goes: (k: string) => boolean, limit: <T>(fn: () => Promise<T>) => Promise<T>): Promise<PlannedFallback[]> {
  const subjects = new Map<string, { repository: string; subject: string }>();
  for (const r of from) for (const a of r.attached) if (goes(key(a.repository, a.digest))) subjects.set(key(a.repository, a.subject), { repository: a.repository, subject: a.subject });
  const out = await Promise.all([...subjects.values()].map(({ repository, subject }) => limit(async (): Promise<PlannedFallback | undefined> => {
    const tag = fallbackTag(subject);
    const m = await manifestOrNone(client, repository, tag);
    if (!m) return undefined;
    const what = `${client.host}/${repository}:${tag}`;
    const { doc } = parseReferrersIndex(m.bytes, `the fallback index ${what}`);
    const drop = (d: string) => goes(key(repository, d));
    const entries = doc.manifests as Array<{ digest: string }>;
    const dropped = entries.filter((e) => drop(e.digest)).map((e) => e.digest);
    if (dropped.length === 0) return undefined;
    const rest = entries.filter((e) => !drop(e.digest));
    if (rest.length === 0) return { repository, subject, tag, digest: m.digest, action: 'delete', dropped };
    // Others' entries stay as they are, in their order; only ours go.
    return { repository, subject, tag, digest: m.digest, action: 'rewrite', dropped, bytes: Buffer.from(JSON.stringify({ ...doc, manifests: rest })) };
  })));
  return out.filter((f): f is PlannedFallback => f !== undefined);
}

/** Files a --from receipt lists at a path no kept receipt lists, still holding what a --from receipt recorded there. */
async function planFiles(files: FileTarget, from: readonly LoadedReceipt[], keep: readonly LoadedReceipt[], left: LeftAlone[], gone: string[], limit: <T>(fn: () => Promise<T>) => Promise<T>): Promise<PlannedFile[]> {
  const keptPaths = new Map<string, string>();
  for (const r of keep) for (const f of r.receipt.files) keptPaths.set(f.path, r.file);
  const recorded = new Map<string, Map<string, number>>(); // path → sha256 → size
  for (const r of from) for (const f of r.receipt.files) recorded.set(f.path, (recorded.get(f.path) ?? new Map<string, number>()).set(f.sha256, f.size));
  const out = await Promise.all([...recorded].map(([p, shas]) => limit(async (): Promise<PlannedFile | undefined> => {
    const where = `${files.describe}/${p}`;
    if (keptPaths.has(p)) {
      left.push({ what: where, why: `a kept receipt lists it: ${keptPaths.get(p)}` });
      return undefined;
    }
    const [now, side] = await Promise.all([files.hashOf(p), files.readSmall(sidecarPath(p))]);
    const sideSha = side === undefined ? undefined : [...shas.keys()].find((s) => sidecarMatches(side, p, s));
    if (now && !shas.has(now.sha256)) {
      left.push({ what: where, why: `it holds sha256 ${now.sha256} now, not what a pruned receipt recorded (replaced since): left alone` });
      return undefined;
    }
    if (side !== undefined && sideSha === undefined) {
      left.push({ what: `${where}.sha256`, why: 'it records another checksum than a pruned receipt did (changed since): left alone, with its file' });
      return undefined;
    }
    if (!now && sideSha === undefined) {
      gone.push(where);
      return undefined;
    }
    const sha256 = now?.sha256 ?? sideSha!;
    return { path: p, sha256, size: shas.get(sha256) ?? 0, file: now !== undefined, sidecar: sideSha !== undefined };
  })));
  return out.filter((f): f is PlannedFile => f !== undefined);
}
