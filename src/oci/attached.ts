// What hangs off an image (SPEC §9): cosign's tag scheme, OCI 1.1 referrers
// and the referrers fallback index, as pure functions over manifest bytes.
// Everything here reads bytes that came from a registry or a bundle, so each
// shape is checked before it is trusted, and every list is bounded.
import { splitDigest } from './digest.js';
import { parseManifest } from './graph.js';
import { isIndexType, isManifestType, OCI_INDEX } from './mediatypes.js';
import { MAX_MANIFEST_BYTES } from '../http/limits.js';
import { jsonDepthProblem } from '../util/json.js';

export type AttachedKind = 'signature' | 'attestation' | 'sbom' | 'other';
export type TagSuffix = 'sig' | 'att' | 'sbom';

/** cosign's tag-scheme suffixes, in the order they are looked up and pushed. */
export const TAG_SUFFIXES: readonly TagSuffix[] = ['sig', 'att', 'sbom'];

export const COSIGN_SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** A prefix: v0.1 is `…bundle+json;version=0.1`, v0.3 is `…bundle.v0.3+json`. */
export const SIGSTORE_BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
/** The annotation cosign 3 and actions/attest put on a bundle referrer's manifest. */
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
export const DSSE_ENVELOPE = 'application/vnd.dsse.envelope.v1+json';
export const IN_TOTO = 'application/vnd.in-toto+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

/** Entries airlock keeps in one fallback index it writes: the referrers bound of SPEC §9 leaves room for others' entries. */
export const MAX_FALLBACK_ENTRIES = 1000;

/** `sha256-<hex>.sig` etc.: where cosign's tag scheme puts what is attached to `digest`. */
export function tagSchemeTag(digest: string, suffix: TagSuffix): string {
  return `${fallbackTag(digest)}.${suffix}`;
}

/** `sha256-<hex>`: the referrers tag schema (distribution-spec) for registries without the referrers API. */
export function fallbackTag(digest: string): string {
  const { algorithm, hex } = splitDigest(digest);
  return `${algorithm}-${hex}`;
}

/** A manifest from outside, parsed as JSON once its size and nesting were checked; undefined when it is not a JSON object. */
function parseObject(bytes: Buffer): Record<string, unknown> | undefined {
  if (bytes.length > MAX_MANIFEST_BYTES || jsonDepthProblem(bytes)) return undefined;
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
/** Media types compare without parameters and case (`application/spdx+json; charset=utf-8`). */
const bare = (mt: string): string => (mt.split(';')[0] ?? '').trim().toLowerCase();

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'string') out[k] = x;
  return out;
}

const SBOM_TYPE = /(^|[/.+])(spdx|cyclonedx|syft)([+.;]|$)/;

/**
 * What an attached manifest is, from its bytes: the manifest's artifactType,
 * its config's media type and its layers' media types (a manifest that is no
 * JSON object, or not shaped like one, is `other`). Precedence, most specific
 * first:
 * - a cosign simplesigning layer: signature;
 * - a Sigstore bundle (matched by prefix on artifactType, config or any layer:
 *   cosign 2.5 pushed some without artifactType, sigstore/cosign#4422): a
 *   signature when its `dev.sigstore.bundle.predicateType` annotation is
 *   cosign's sign predicate or is missing, an attestation when it names another
 *   predicate (SLSA provenance from actions/attest, `cosign attest`). Missing
 *   counts as a signature because bundles without the annotation are what
 *   cosign 2.5 `sign --new-bundle-format` pushed (message signatures); the
 *   policy check reads the bundle itself, so the kind never decides trust;
 * - a DSSE envelope or in-toto statement: attestation;
 * - an SPDX, CycloneDX or syft type: sbom;
 * - else what the tag-scheme suffix says, when it came by tag; else other.
 */
export function classifyAttached(bytes: Buffer, tagSuffix?: TagSuffix): AttachedKind {
  const doc = parseObject(bytes);
  const types: string[] = [];
  let predicate: string | undefined;
  if (doc) {
    const at = str(doc.artifactType);
    if (at) types.push(bare(at));
    const config = doc.config as { mediaType?: unknown } | undefined;
    const ct = config && typeof config === 'object' ? str(config.mediaType) : undefined;
    if (ct) types.push(bare(ct));
    if (Array.isArray(doc.layers)) {
      for (const l of doc.layers.slice(0, 1000) as unknown[]) {
        const lt = l && typeof l === 'object' ? str((l as { mediaType?: unknown }).mediaType) : undefined;
        if (lt) types.push(bare(lt));
      }
    }
    predicate = stringMap(doc.annotations)?.[BUNDLE_PREDICATE_ANNOTATION];
  }
  if (types.includes(COSIGN_SIMPLESIGNING)) return 'signature';
  if (types.some((t) => t.startsWith(SIGSTORE_BUNDLE_PREFIX))) return predicate === undefined || predicate === COSIGN_SIGN_PREDICATE ? 'signature' : 'attestation';
  if (types.some((t) => t === DSSE_ENVELOPE || t === IN_TOTO || t.startsWith('application/vnd.in-toto.'))) return 'attestation';
  if (types.some((t) => SBOM_TYPE.test(t))) return 'sbom';
  if (tagSuffix === 'sig') return 'signature';
  if (tagSuffix === 'att') return 'attestation';
  if (tagSuffix === 'sbom') return 'sbom';
  return 'other';
}

/** A descriptor as an OCI index (a referrers answer, a fallback index) lists it. */
export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export class AttachedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AttachedError';
  }
}

/**
 * The descriptor a referrers list carries for this manifest (distribution-spec):
 * its artifactType, else its config's media type; its annotations. Throws
 * AttachedError when the bytes are not an image manifest.
 */
export function referrerDescriptor(bytes: Buffer, digest: string, mediaType?: string): ReferrerDescriptor {
  let m;
  try {
    m = parseManifest(bytes, digest, mediaType, { ref: 'attached manifest', advice: 'it is left out' });
  } catch (err) {
    throw new AttachedError((err as Error).message);
  }
  if (m.kind !== 'manifest') throw new AttachedError(`attached manifest ${digest} is an index (${m.mediaType}); airlock carries attached image manifests only`);
  const artifactType = str(m.json.artifactType) ?? m.config?.mediaType;
  const annotations = stringMap(m.json.annotations);
  return {
    mediaType: m.mediaType,
    digest,
    size: bytes.length,
    ...(artifactType !== undefined && { artifactType }),
    ...(annotations && Object.keys(annotations).length > 0 && { annotations }),
  };
}

/** The digest a manifest's `subject` names, if it has a well-formed one. */
export function subjectOf(bytes: Buffer): string | undefined {
  const doc = parseObject(bytes);
  const s = doc?.subject as { digest?: unknown } | undefined;
  const d = s && typeof s === 'object' ? str(s.digest) : undefined;
  return d && /^sha256:[a-f0-9]{64}$/.test(d) ? d : undefined;
}

/**
 * The entries of an OCI index that lists referrers (a referrers API answer or a
 * fallback index), shapes checked: each an image manifest or index descriptor
 * with a sha256 digest and a size. `keep`: read only the first `keep` entries
 * (discovery keeps a bounded number; a busy subject may list thousands);
 * without it an index listing more than MAX_FALLBACK_ENTRIES is refused.
 * `listed` is how many the index lists. Throws AttachedError naming `what`.
 */
export function parseReferrersIndex(bytes: Buffer, what: string, keep?: number): { doc: Record<string, unknown>; entries: ReferrerDescriptor[]; listed: number } {
  const doc = parseObject(bytes);
  if (!doc) throw new AttachedError(`${what} is not a JSON object`);
  if (doc.schemaVersion !== 2) throw new AttachedError(`${what} has schemaVersion ${JSON.stringify(doc.schemaVersion)}, not 2`);
  if (doc.mediaType !== undefined && doc.mediaType !== OCI_INDEX) throw new AttachedError(`${what} has media type ${JSON.stringify(doc.mediaType)}, not ${OCI_INDEX}`);
  if (!Array.isArray(doc.manifests)) throw new AttachedError(`${what} has no "manifests" list`);
  const list = doc.manifests as unknown[];
  if (keep === undefined && list.length > MAX_FALLBACK_ENTRIES) throw new AttachedError(`${what} lists ${list.length} manifests, more than the ${MAX_FALLBACK_ENTRIES} airlock reads`);
  const entries = list.slice(0, keep ?? list.length).map((e, i): ReferrerDescriptor => {
    const x = e as Record<string, unknown> | null;
    if (!x || typeof x !== 'object' || Array.isArray(x)) throw new AttachedError(`${what}: entry ${i} is not an object`);
    const mediaType = str(x.mediaType);
    const digest = str(x.digest);
    if (!mediaType || (!isManifestType(mediaType) && !isIndexType(mediaType))) throw new AttachedError(`${what}: entry ${i} has media type ${JSON.stringify(x.mediaType)}, not a manifest or index`);
    if (!digest || !/^sha256:[a-f0-9]{64}$/.test(digest)) throw new AttachedError(`${what}: entry ${i} has digest ${JSON.stringify(x.digest)}; only sha256 is supported`);
    if (!Number.isSafeInteger(x.size) || (x.size as number) < 0) throw new AttachedError(`${what}: entry ${i} has size ${JSON.stringify(x.size)}`);
    if (x.artifactType !== undefined && typeof x.artifactType !== 'string') throw new AttachedError(`${what}: entry ${i} has an artifactType that is not a string`);
    return x as unknown as ReferrerDescriptor;
  });
  return { doc, entries, listed: list.length };
}

/**
 * Merges `add` into a fallback index (`existing`: its bytes, undefined when
 * the tag does not exist yet). Entries already there stay, in their order and
 * as they are (others' entries are never dropped or rewritten); new ones are
 * appended in the order given; a digest is listed once. "unchanged" when
 * nothing is new, so a rerun writes nothing. Throws AttachedError when the
 * existing bytes are not an OCI index: overwriting it would destroy someone
 * else's content.
 */
export function mergeFallbackIndex(existing: Buffer | undefined, add: readonly ReferrerDescriptor[]): Buffer | 'unchanged' {
  const base = existing ? parseReferrersIndex(existing, 'the existing fallback index') : undefined;
  const seen = new Set(base?.entries.map((e) => e.digest));
  const fresh: ReferrerDescriptor[] = [];
  for (const d of add) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    fresh.push(d);
  }
  if (fresh.length === 0) return 'unchanged';
  if (seen.size > MAX_FALLBACK_ENTRIES) throw new AttachedError(`the fallback index would list ${seen.size} manifests, more than ${MAX_FALLBACK_ENTRIES}`);
  const entries = fresh.map((d) => ({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.artifactType !== undefined && { artifactType: d.artifactType }),
    ...(d.annotations !== undefined && { annotations: d.annotations }),
  }));
  // Compact JSON, fields in a fixed order: the same content gives the same digest on every target.
  const doc = base ? { ...base.doc, manifests: [...(base.doc.manifests as unknown[]), ...entries] } : { schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries };
  return Buffer.from(JSON.stringify(doc));
}
