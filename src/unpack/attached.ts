// Where an attached manifest (SPEC §9 "Pushed inside") goes at the target, and
// in what order: the one place that decides it, for unpack and sync alike.
//
// An attached manifest goes to the target repository of the image it belongs
// to (the layout and prefix map its source repository as they map the
// image's). Its blobs go up in unpack's one blob pass (so they are verified
// with every other byte before anything is committed); once the images'
// manifests and tags are in, each tag-scheme manifest is PUT by its tag
// (Harbor links a `.sig` as a cosign accessory only when it arrives by that
// tag; a cosign `.sig` there already keeps its signatures and gains the
// carried ones), each referrer by its digest; then, per subject, the `sha256-<hex>`
// fallback index is merged (others' entries kept) and written only when it
// changed, when the target has no referrers API (`auto`) or always. A rerun
// finds everything by tag, by digest and in the fallback index, and writes nothing.
import type { AttachedGraph } from '../bundle/attached.js';
import { BLOBS_PREFIX, imageRepository, type BundleAttached, type BundleIndex } from '../bundle/format.js';
import type { TargetName } from '../bundle/targets.js';
import { ATTACHED_KINDS } from '../bundle/format.js';
import { fallbackTag, parseReferrersIndex, referrerDescriptor, AttachedError, type AttachedKind, type ReferrerDescriptor } from '../oci/attached.js';
import { manifestOrNone, pushReferrer, targetHasReferrersApi, updateFallbackIndex } from '../registry/referrers.js';
import { checkSignatureManifest, CountersignError, layerKey, mergeSignatureManifests, type SignatureManifest } from '../sign/countersign.js';
import { sha256Digest } from '../oci/digest.js';
import { bufferRange, smallBlob } from './countersign.js';
import { RegistryError, type RegistryClient } from '../registry/client.js';
import { BundleError } from '../bundle/tarread.js';
import type { UnpackSource } from './source.js';

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

/** `--referrers-fallback`: write the `sha256-<hex>` index when the target shows no referrers API, always, or never. */
export type ReferrersFallback = 'auto' | 'always' | 'never';
export const REFERRERS_FALLBACK: readonly ReferrersFallback[] = ['auto', 'always', 'never'];

/** An attached entry with the target repository it goes to. */
export interface AttachedTarget {
  readonly entry: BundleAttached;
  readonly repository: string;
}

export interface AttachedStats {
  /** Attached manifests pushed, by kind. */
  readonly pushed: Record<AttachedKind, number>;
  /** Already at the target (by tag, or by digest for a referrer). */
  readonly present: number;
  /** Subjects whose fallback index was written, found up to date, or left alone (the target has the referrers API, or `never`). */
  readonly fallbackIndexes: { written: number; unchanged: number; notNeeded: number };
  readonly referrersFallback: ReferrersFallback;
}

/**
 * Each attached entry with the target repository of its image: an entry's
 * repository is its image's source repository, which the layout maps as for
 * the image. Entries come in bundle.json order.
 */
export function attachedTargets(index: Pick<BundleIndex, 'images' | 'attached'>, targets: readonly TargetName[]): AttachedTarget[] {
  const bySource = new Map<string, string>();
  index.images.forEach((image, i) => {
    const r = imageRepository(image.ref);
    if (!bySource.has(r)) bySource.set(r, targets[i]!.repository);
  });
  // A signature of an upstream index the platform filter rewrote is carried for the policy only: nothing at the target has its subject.
  return (index.attached ?? []).filter((entry) => !entry.upstream).map((entry) => {
    const repository = bySource.get(entry.repository);
    // parseIndex refuses this already: an entry must name the repository of one of the bundle's images.
    if (repository === undefined) throw new BundleError(`attached ${entry.digest}: no image from ${entry.repository} in the bundle`);
    return { entry, repository };
  });
}

/** What lookAttached found: each entry at the target or not; per subject with referrers, its fallback index listing them all, not needed (the referrers API, or `never`), or missing something. */
export interface AttachedLook {
  readonly present: boolean[];
  readonly fallback: Array<'listed' | 'not needed' | 'missing'>;
}

/**
 * Which attached entries the target holds (a tag-scheme one by its tag, a referrer by digest), and whether every fallback index it needs lists its referrers.
 * With `carried` (the bundle's bytes of an entry), a tag-scheme manifest at the tag with another digest counts as present when it holds every
 * layer of the carried one: signatures were added there since (`unpack --countersign`, cosign sign inside), and pushing the carried one
 * again would drop them.
 */
export async function lookAttached(list: readonly AttachedTarget[], client: RegistryClient, mode: ReferrersFallback, limit: Limit, carried?: (a: AttachedTarget) => Promise<Buffer>): Promise<AttachedLook> {
  const present = await Promise.all(
    list.map((a) =>
      limit(async () => {
        const at = await client.resolve(a.repository, a.entry.tag ?? a.entry.digest);
        if (at?.digest === a.entry.digest) return true;
        if (!at || a.entry.tag === undefined || !carried) return false;
        const there = await client.manifest(a.repository, at.digest);
        const ours = await carried(a);
        if (holdsEveryLayer(there.bytes, ours)) return true;
        // A .sig there is merged with the carried one when pushed (tagSchemeToPut): refused now, before anything is pushed, when it cannot be.
        if (a.entry.tag.endsWith('.sig')) mergeable(client, a, there, ours);
        return false;
      }),
    ),
  );
  const fallback = await Promise.all(
    [...bySubject(list)].map(([, group]) =>
      limit(async (): Promise<AttachedLook['fallback'][number]> => {
        if (mode === 'never') return 'not needed';
        const { repository, entry } = group[0]!;
        const found = await fallbackLists(client, repository, entry.subject, group.map((a) => a.entry.digest));
        if (found === true) return 'listed';
        if (mode === 'auto' && (await targetHasReferrersApi(client, repository, entry.subject))) return 'not needed';
        // Refused before anything is pushed, not after the images went in.
        if (found instanceof RegistryError) throw found;
        return 'missing';
      }),
    ),
  );
  return { present, fallback };
}

/** True when manifest `target` lists every layer of `carried` (same media type, digest, size and annotations). */
function holdsEveryLayer(target: Buffer, carried: Buffer): boolean {
  const layers = (bytes: Buffer): string[] | undefined => {
    try {
      const doc = JSON.parse(bytes.toString('utf8')) as { layers?: unknown };
      return Array.isArray(doc.layers) ? doc.layers.map(layerKey) : undefined;
    } catch {
      return undefined;
    }
  };
  const have = layers(target);
  const want = layers(carried);
  if (!have || !want || want.length === 0) return false;
  const set = new Set(have);
  return want.every((l) => set.has(l));
}

/** True when lookAttached found nothing to do. */
export function attachedInPlace(look: AttachedLook): boolean {
  return look.present.every(Boolean) && look.fallback.every((f) => f !== 'missing');
}

/**
 * Pushes the attached manifests the target lacks (`present` from lookAttached;
 * their blobs are in already) and brings the fallback indexes up to date.
 * Call once every image they belong to is pushed. `graphs[i]` is `list[i]`'s,
 * checked by readAttached against its image.
 */
export async function pushAttached(
  list: readonly AttachedTarget[],
  graphs: readonly AttachedGraph[],
  present: readonly boolean[],
  reader: UnpackSource,
  client: RegistryClient,
  mode: ReferrersFallback,
  limit: Limit,
): Promise<AttachedStats> {
  const pushed = Object.fromEntries(ATTACHED_KINDS.map((k) => [k, 0])) as Record<AttachedKind, number>;
  const bytesOf = (i: number) => manifestBytes(list[i]!, graphs[i]!, reader, client);
  const todo = list.map((a, i) => ({ a, i })).filter(({ i }) => !present[i]);
  // Tag-scheme manifests by their tag first, then referrers by digest (what the fallback index lists must exist before it).
  await Promise.all(
    todo
      .filter(({ a }) => a.entry.tag !== undefined)
      .map(({ a, i }) =>
        limit(async () => {
          const put = await tagSchemeToPut(client, a, await bytesOf(i));
          if (put) await client.putManifest(a.repository, a.entry.tag!, put.bytes, put.mediaType);
          pushed[a.entry.kind]++;
        }),
      ),
  );
  const announced = new Set<string>();
  await Promise.all(
    todo
      .filter(({ a }) => a.entry.tag === undefined)
      .map(({ a, i }) =>
        limit(async () => {
          const r = await pushReferrer(client, a.repository, { digest: a.entry.digest, bytes: await bytesOf(i), mediaType: a.entry.mediaType });
          if (r.ociSubject === a.entry.subject) announced.add(`${a.repository}@${a.entry.subject}`);
          pushed[a.entry.kind]++;
        }),
      ),
  );

  const fallbackIndexes = { written: 0, unchanged: 0, notNeeded: 0 };
  const indexOf = new Map(list.map((a, i) => [a, i]));
  await Promise.all(
    [...bySubject(list)].map(([key, group]) =>
      limit(async () => {
        const { repository, entry } = group[0]!;
        const needed = mode === 'always' || (mode === 'auto' && !announced.has(key) && !(await targetHasReferrersApi(client, repository, entry.subject)));
        if (!needed) {
          fallbackIndexes.notNeeded++;
          return;
        }
        const add: ReferrerDescriptor[] = [];
        for (const a of group) add.push(descriptorOf(a, await bytesOf(indexOf.get(a)!)));
        fallbackIndexes[await updateFallbackIndex(client, repository, entry.subject, add)]++;
      }),
    ),
  );
  return { pushed, present: present.filter(Boolean).length, fallbackIndexes, referrersFallback: mode };
}

/**
 * What to PUT at a tag-scheme entry's tag: the carried manifest, except where a `.sig` holds a
 * cosign signature manifest already (signatures made at the target: cosign inside, a
 * countersignature, an earlier release's publisher signature): that one is kept and gains the
 * carried layers it lacks, its new config uploaded first, as cosign appends when it signs; nothing
 * when it lacks none. Anything else at the tag was refused by lookAttached already (mergeable).
 */
async function tagSchemeToPut(client: RegistryClient, a: AttachedTarget, carried: Buffer): Promise<{ bytes: Buffer; mediaType: string } | undefined> {
  const plain = { bytes: carried, mediaType: a.entry.mediaType };
  const tag = a.entry.tag!;
  if (!tag.endsWith('.sig')) return plain;
  // Read again (lookAttached read it before the images went in): what is appended to is what is there now.
  const found = await manifestOrNone(client, a.repository, tag);
  if (!found || found.digest === a.entry.digest) return plain;
  const what = `${client.host}/${a.repository}:${tag}`;
  const there = mergeable(client, a, found, carried);
  const config = await smallBlob(client, a.repository, there.config.digest, there.config.size, `the config of ${what}`);
  const merged = mergeSignatureManifests({ manifest: found.bytes, mediaType: found.mediaType, config }, plain, what);
  if (!merged) return undefined;
  const configDigest = sha256Digest(merged.config);
  if (!(await client.hasBlob(a.repository, configDigest))) await client.uploadBlob(a.repository, configDigest, merged.config.length, bufferRange(merged.config));
  return { bytes: merged.manifest, mediaType: merged.mediaType };
}

/**
 * The `.sig` manifest at the target, checked to be one the carried `.sig` can be merged into (both
 * cosign signature manifests); else a RegistryError naming the tag: something other than a
 * signature there is not ours to overwrite, nor are signatures ours to drop.
 */
function mergeable(client: RegistryClient, a: AttachedTarget, there: { bytes: Buffer; mediaType: string }, carried: Buffer): SignatureManifest {
  const what = `${client.host}/${a.repository}:${a.entry.tag}`;
  const advice = `this unpack would add the carried signatures of ${a.entry.subject} there, and cannot without overwriting it: remove or retag it; nothing was pushed`;
  try {
    checkSignatureManifest(carried, a.entry.mediaType, `the carried ${a.entry.digest} for ${what}`, advice);
    return checkSignatureManifest(there.bytes, there.mediaType, what, advice);
  } catch (err) {
    if (err instanceof CountersignError) throw new RegistryError(err.message);
    throw err;
  }
}

/** What an unpack that found every attached manifest in place reports. */
export function inPlaceStats(look: AttachedLook, mode: ReferrersFallback): AttachedStats {
  const pushed = Object.fromEntries(ATTACHED_KINDS.map((k) => [k, 0])) as Record<AttachedKind, number>;
  const count = (f: AttachedLook['fallback'][number]) => look.fallback.filter((x) => x === f).length;
  return { pushed, present: look.present.length, fallbackIndexes: { written: 0, unchanged: count('listed'), notNeeded: count('not needed') }, referrersFallback: mode };
}

/** The referrers (entries without a tag) grouped by target repository and subject. */
function bySubject(list: readonly AttachedTarget[]): Map<string, AttachedTarget[]> {
  const out = new Map<string, AttachedTarget[]>();
  for (const a of list) {
    if (a.entry.tag !== undefined) continue;
    const key = `${a.repository}@${a.entry.subject}`;
    out.set(key, [...(out.get(key) ?? []), a]);
  }
  return out;
}

/**
 * True when the fallback index of `subject` is there and lists every one of
 * `digests`; false when it is missing or lacks some; the error to refuse with
 * when the tag holds something other than a referrers index (not ours to overwrite).
 */
async function fallbackLists(client: RegistryClient, repo: string, subject: string, digests: readonly string[]): Promise<boolean | RegistryError> {
  const tag = fallbackTag(subject);
  let bytes: Buffer;
  try {
    bytes = (await client.manifest(repo, tag)).bytes;
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) return false;
    throw err;
  }
  try {
    const listed = new Set(parseReferrersIndex(bytes, `${client.host}/${repo}:${tag}`).entries.map((e) => e.digest));
    return digests.every((d) => listed.has(d));
  } catch (err) {
    if (!(err instanceof AttachedError)) throw err;
    return new RegistryError(`${err.message}; the tag holds something other than a referrers index, and this unpack would write the referrers of ${subject} there: remove or retag it, or unpack with --referrers-fallback never; nothing was pushed`);
  }
}

/**
 * The manifest's bytes: from the source (verified with the rest), or, when a
 * delta left it to its base, from the target, where the external check found
 * it (the client checks them against the digest).
 */
async function manifestBytes(a: AttachedTarget, g: AttachedGraph, reader: UnpackSource, client: RegistryClient): Promise<Buffer> {
  if (g.externalManifests.some((m) => m.digest === a.entry.digest)) return (await client.manifest(a.repository, a.entry.digest)).bytes;
  return reader.readEntry(BLOBS_PREFIX + a.entry.digest.slice(7));
}

/** A referrer's fallback-index entry: bundle.json's artifactType when the manifest names none (build took it from the listing it found). */
function descriptorOf(a: AttachedTarget, bytes: Buffer): ReferrerDescriptor {
  const d = referrerDescriptor(bytes, a.entry.digest, a.entry.mediaType);
  return d.artifactType === undefined && a.entry.artifactType !== undefined ? { ...d, artifactType: a.entry.artifactType } : d;
}
