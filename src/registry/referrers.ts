// What is attached to one digest in one repository (SPEC §9), found and
// fetched through the project's registry client, and the push-side
// primitives unpack needs to make it findable on any target.
//
// Design notes (for the build/unpack wiring):
// - Where to look. cosign's tag scheme (`sha256-<hex>.sig|.att|.sbom`, read
//   by tag: 404 = none) and OCI 1.1 referrers. The referrers API is trusted
//   only on 200 with Content-Type exactly `application/vnd.oci.image.index.v1+json`
//   (as go-containerregistry does): registries without the API answer 404,
//   400, 405, or 200 with an HTML or `application/json` page from a catch-all
//   route or a proxy, and reading those as "no referrers" would silently
//   drop what the fallback index lists. Anything else falls back to the
//   `sha256-<hex>` index (404 = none).
// - Bounds. Per subject at most MAX_REFERRERS attached manifests and
//   MAX_ATTACHED_BYTES of manifests plus blobs, counted in discovery order
//   (tag scheme .sig, .att, .sbom, then referrers as listed); the first one
//   over a bound and everything after it are left out with a warning naming
//   the subject. Without them one hostile or busy subject (a CI that attaches
//   an attestation per run) would make a bundle grow without limit. Declared
//   sizes are checked before a manifest is fetched and again against its bytes.
// - An upstream fallback index is never carried as is: discovery returns the
//   manifests it lists; unpack rebuilds the index inside from what was carried
//   (mergeFallbackIndex keeps what others put there).
// - The order unpack needs: the image (its blobs and manifests) first; then
//   the attached manifests' blobs, tag-scheme manifests PUT by their tag (Harbor
//   links a `.sig` as a cosign accessory only when it is PUT by that tag), then
//   referrers PUT by digest; then, when the target has no referrers API (no
//   `OCI-Subject` on those PUTs and targetHasReferrersApi false) or
//   `--referrers-fallback always`, updateFallbackIndex once per subject, after
//   every referrer it lists exists (distribution refuses an index whose
//   children are missing).
// Nothing is printed here: warnings are returned for the caller to report.
import { GraphError, parseManifest, type Descriptor } from '../oci/graph.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import {
  AttachedError,
  classifyAttached,
  fallbackTag,
  mergeFallbackIndex,
  parseReferrersIndex,
  referrerDescriptor,
  subjectOf,
  tagSchemeTag,
  TAG_SUFFIXES,
  type AttachedKind,
  type ReferrerDescriptor,
} from '../oci/attached.js';
import { RegistryError, type Manifest, type RegistryClient } from './client.js';

/** Attached manifests kept per subject (SPEC §9). */
export const MAX_REFERRERS = 64;
/** Bytes of attached manifests and their blobs kept per subject (SPEC §9). */
export const MAX_ATTACHED_BYTES = 16 * 1024 * 1024;
/** Pages of a referrers answer followed; past the entry bound there is nothing more to keep anyway. */
export const MAX_REFERRERS_PAGES = 16;

export type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

export interface AttachedManifest {
  /** The digest it is attached to. */
  readonly subject: string;
  readonly repository: string;
  readonly digest: string;
  readonly mediaType: string;
  /** As a referrers list carries it: the manifest's artifactType, else its config's media type. */
  readonly artifactType?: string;
  readonly kind: AttachedKind;
  /** The tag-scheme tag it was found under (`sha256-<hex>.sig`); none for a referrer. */
  readonly tag?: string;
  /** The exact bytes, checked against the digest. */
  readonly bytes: Buffer;
  /** Its config and layers, each once, for the caller to fetch like any blob. */
  readonly blobs: Descriptor[];
  /** The descriptor a referrers list or fallback index carries for it. */
  readonly descriptor: ReferrerDescriptor;
}

export interface Discovery {
  readonly subject: string;
  readonly repository: string;
  /** Tag-scheme manifests first (.sig, .att, .sbom), then referrers as the registry listed them. */
  readonly attached: AttachedManifest[];
  /** How the referrers were listed. */
  readonly referrersVia: 'api' | 'fallback';
  /** Things left out, each naming the subject. */
  readonly warnings: string[];
}

interface Candidate {
  readonly digest?: string;
  readonly tag?: string;
  readonly suffix?: (typeof TAG_SUFFIXES)[number];
  /** Declared size (a referrer); a tag-scheme manifest's is known once fetched. */
  readonly size?: number;
  readonly manifest?: Manifest;
}

const direct: Limit = (fn) => fn();

/** GETs a manifest; undefined on 404 (tag or manifest not there). */
export async function manifestOrNone(client: RegistryClient, repo: string, ref: string): Promise<Manifest | undefined> {
  try {
    return await client.manifest(repo, ref);
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * Lists the referrers of `subject`: from the API when it answers as the spec
 * says, else from the fallback tag. Pages are followed while they bring
 * entries under the bound.
 */
export async function listReferrers(client: RegistryClient, repo: string, subject: string): Promise<{ via: 'api' | 'fallback'; entries: ReferrerDescriptor[]; listed: number; more: boolean; warnings: string[] }> {
  const name = `${client.host}/${repo}@${subject}`;
  const warnings: string[] = [];
  const first = await client.referrersPage(repo, subject);
  if (first.status === 200 && first.contentType === OCI_INDEX && first.bytes) {
    const entries: ReferrerDescriptor[] = [];
    let listed = 0;
    /** Pages left unread once the bound was passed. */
    let more = false;
    const seenPages = new Set<string>();
    let page = first;
    for (let n = 1; ; n++) {
      try {
        // One past the bound is enough to know the bound was passed.
        const got = parseReferrersIndex(page.bytes ?? Buffer.alloc(0), `the referrers answer for ${name}`, MAX_REFERRERS + 1 - entries.length);
        entries.push(...got.entries);
        listed += got.listed;
      } catch (err) {
        if (!(err instanceof AttachedError)) throw err;
        warnings.push(`${err.message}; the rest of its referrers are left out`);
        break;
      }
      if (!page.next) break;
      if (entries.length > MAX_REFERRERS) {
        more = true;
        break;
      }
      if (n >= MAX_REFERRERS_PAGES || seenPages.has(page.next)) {
        warnings.push(`the referrers answer for ${name} runs past ${n} pages; the rest are left out`);
        break;
      }
      seenPages.add(page.next);
      try {
        page = await client.referrersPage(repo, subject, page.next);
      } catch (err) {
        if (!(err instanceof RegistryError && err.code === 'AIRLOCK_FOREIGN_LINK')) throw err;
        warnings.push(`${err.message}; the rest are left out`);
        break;
      }
      if (page.status !== 200 || page.contentType !== OCI_INDEX) {
        warnings.push(`page ${n + 1} of the referrers answer for ${name} came back as HTTP ${page.status} ${page.contentType ?? ''}; the rest are left out`);
        break;
      }
    }
    return { via: 'api', entries, listed, more, warnings };
  }
  const tag = fallbackTag(subject);
  const index = await manifestOrNone(client, repo, tag);
  if (!index) return { via: 'fallback', entries: [], listed: 0, more: false, warnings };
  try {
    const got = parseReferrersIndex(index.bytes, `the fallback index ${client.host}/${repo}:${tag}`, MAX_REFERRERS + 1);
    return { via: 'fallback', entries: got.entries, listed: got.listed, more: false, warnings };
  } catch (err) {
    if (!(err instanceof AttachedError)) throw err;
    warnings.push(`${err.message}; the referrers of ${name} it would list are left out`);
    return { via: 'fallback', entries: [], listed: 0, more: false, warnings };
  }
}

/**
 * Everything attached to `subject` in `repo`: tag-scheme manifests and
 * referrers, each fetched byte for byte with the list of its blobs, bounded
 * as SPEC §9 says. `limit` runs the manifest fetches under the caller's
 * concurrency limit.
 */
export async function discoverAttached(client: RegistryClient, repo: string, subject: string, opts: { limit?: Limit } = {}): Promise<Discovery> {
  const limit = opts.limit ?? direct;
  const name = `${client.host}/${repo}@${subject}`;
  const [tagged, listed] = await Promise.all([
    Promise.all(TAG_SUFFIXES.map((suffix) => limit(() => manifestOrNone(client, repo, tagSchemeTag(subject, suffix))))),
    limit(() => listReferrers(client, repo, subject)),
  ]);
  const warnings = [...listed.warnings];

  const candidates: Candidate[] = [];
  const seen = new Set<string>();
  TAG_SUFFIXES.forEach((suffix, i) => {
    const m = tagged[i];
    if (!m || seen.has(m.digest)) return;
    seen.add(m.digest);
    candidates.push({ tag: tagSchemeTag(subject, suffix), suffix, manifest: m });
  });
  const byTag = candidates.length;
  for (const e of listed.entries) {
    if (seen.has(e.digest)) continue;
    seen.add(e.digest);
    candidates.push({ digest: e.digest, size: e.size });
  }
  if (candidates.length > MAX_REFERRERS) {
    const total = Math.max(candidates.length, byTag + listed.listed);
    warnings.push(`${name} has ${total}${listed.more ? ' or more' : ''} attached manifests, more than the ${MAX_REFERRERS} airlock carries per subject; the first ${MAX_REFERRERS} are kept, the rest left out`);
    candidates.length = MAX_REFERRERS;
  }
  // Declared sizes first: nothing past the byte bound is fetched at all.
  let declared = 0;
  for (let i = 0; i < candidates.length; i++) {
    declared += candidates[i]?.manifest?.size ?? candidates[i]?.size ?? 0;
    if (declared > MAX_ATTACHED_BYTES) {
      warnings.push(byteWarning(name, candidates.length - i));
      candidates.length = i;
      break;
    }
  }

  const fetched = await Promise.all(
    candidates.map((c) => (c.manifest ? Promise.resolve(c.manifest) : limit(() => manifestOrNone(client, repo, c.digest as string)))),
  );
  const attached: AttachedManifest[] = [];
  const blobsSeen = new Set<string>();
  let bytes = 0;
  for (const [i, c] of candidates.entries()) {
    const m = fetched[i];
    const what = c.tag ? `${client.host}/${repo}:${c.tag}` : `referrer ${c.digest} of ${name}`;
    if (!m) {
      warnings.push(`${what} is listed but not in the registry; left out`);
      continue;
    }
    if (c.size !== undefined && c.size !== m.size) {
      warnings.push(`${what} is listed as ${c.size} bytes but is ${m.size}; left out`);
      continue;
    }
    if (!c.tag && subjectOf(m.bytes) !== subject) {
      warnings.push(`${what} does not name ${subject} as its subject; left out`);
      continue;
    }
    let descriptor: ReferrerDescriptor;
    let blobs: Descriptor[];
    try {
      const parsed = parseManifest(m.bytes, m.digest, m.mediaType, { ref: what, advice: 'it is left out' });
      descriptor = referrerDescriptor(m.bytes, m.digest, m.mediaType);
      blobs = dedupe(parsed.config ? [parsed.config, ...parsed.layers] : parsed.layers);
    } catch (err) {
      if (err instanceof GraphError) warnings.push(err.message);
      else if (err instanceof AttachedError) warnings.push(`${what}: ${err.message}; left out`);
      else throw err;
      continue;
    }
    const added = m.size + blobs.filter((b) => !blobsSeen.has(b.digest)).reduce((n, b) => n + b.size, 0);
    if (bytes + added > MAX_ATTACHED_BYTES) {
      warnings.push(byteWarning(name, candidates.length - i));
      break;
    }
    bytes += added;
    for (const b of blobs) blobsSeen.add(b.digest);
    attached.push({
      subject,
      repository: repo,
      digest: m.digest,
      mediaType: m.mediaType,
      ...(descriptor.artifactType !== undefined && { artifactType: descriptor.artifactType }),
      kind: classifyAttached(m.bytes, c.suffix),
      ...(c.tag !== undefined && { tag: c.tag }),
      bytes: m.bytes,
      blobs,
      descriptor,
    });
  }
  return { subject, repository: repo, attached, referrersVia: listed.via, warnings };
}

function byteWarning(name: string, left: number): string {
  return `${name} has more than ${MAX_ATTACHED_BYTES / (1024 * 1024)} MiB of attached manifests and blobs, the most airlock carries per subject; ${left} attached manifest(s) left out`;
}

function dedupe(list: Descriptor[]): Descriptor[] {
  const out = new Map<string, Descriptor>();
  for (const d of list) if (!out.has(d.digest)) out.set(d.digest, d);
  return [...out.values()];
}

// ---- push side ----

/**
 * True when the target has the referrers API for `repo`: the PUT of a
 * manifest with a subject came back with `OCI-Subject` naming it, or (when it
 * did not say) the referrers endpoint answers 200 with the OCI index type.
 */
export async function targetHasReferrersApi(client: RegistryClient, repo: string, subject: string, ociSubject?: string): Promise<boolean> {
  if (ociSubject === subject) return true;
  const page = await client.referrersPage(repo, subject);
  return page.status === 200 && page.contentType === OCI_INDEX;
}

/** PUTs a referrer by its digest; `ociSubject`: what the registry's `OCI-Subject` header said. */
export async function pushReferrer(client: RegistryClient, repo: string, m: Pick<AttachedManifest, 'digest' | 'bytes' | 'mediaType'>): Promise<{ ociSubject?: string }> {
  return client.putManifest(repo, m.digest, m.bytes, m.mediaType);
}

/**
 * Brings the `sha256-<hex>` fallback index of `subject` in `repo` up to date:
 * reads it (404: none yet), merges `add` (others' entries kept, none listed
 * twice) and PUTs it only when something was added. Every manifest in `add`
 * must already be in the repository. Throws when the tag holds something that
 * is not an OCI index: that is not ours to overwrite.
 */
export async function updateFallbackIndex(client: RegistryClient, repo: string, subject: string, add: readonly ReferrerDescriptor[]): Promise<'written' | 'unchanged'> {
  const tag = fallbackTag(subject);
  const existing = await manifestOrNone(client, repo, tag);
  let merged: Buffer | 'unchanged';
  try {
    merged = mergeFallbackIndex(existing?.bytes, add);
  } catch (err) {
    if (!(err instanceof AttachedError)) throw err;
    throw new RegistryError(`${client.host}/${repo}:${tag}: ${err.message}; the tag holds something other than a referrers index: remove or retag it, or unpack with --referrers-fallback never`);
  }
  if (merged === 'unchanged') return 'unchanged';
  await client.putManifest(repo, tag, merged, OCI_INDEX);
  return 'written';
}
