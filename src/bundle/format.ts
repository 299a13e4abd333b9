// The bundle (SPEC §4): an uncompressed POSIX tar whose first entry,
// bundle.json, names every other entry with its size and digest.
import type { ArtifactRole, FileRole, KubesprayInfo } from '../manifest/types.js';
import { TAG_SUFFIXES, tagSchemeTag, type AttachedKind } from '../oci/attached.js';
import { parseReference, referenceName } from '../oci/reference.js';

export type { AttachedKind };

export const BUNDLE_SCHEMA_VERSION = 1;
export const BUNDLE_JSON = 'bundle.json';
export const BUNDLE_SIG = 'bundle.json.sig';
export const OCI_LAYOUT_FILE = 'oci-layout';
export const INDEX_JSON = 'index.json';
export const BLOBS_PREFIX = 'blobs/sha256/';
export const FILES_PREFIX = 'files/';

export interface BundleImage {
  /** Full source reference, e.g. `docker.io/library/nginx:1.27` or `quay.io/x/y@sha256:…`. */
  ref: string;
  /** Digest of the root manifest or index in the bundle. */
  digest: string;
  mediaType: string;
  kind: 'image' | 'artifact';
  role?: ArtifactRole;
  /** Set when the index was rewritten to keep only some platforms: the digest upstream published. */
  upstreamDigest?: string;
  /** os/arch[/variant] of each platform held; empty when not known. */
  platforms: string[];
  /** Bytes of every blob of this image (manifests included), shared ones counted. */
  size: number;
  /** A Trivy DB (trivy-db, trivy-java-db): what its metadata.json said at build. */
  trivyDb?: TrivyDbInfo;
}

/** From a Trivy DB layer's metadata.json: either `updatedAt` (and maybe the others) or `problem`. */
export interface TrivyDbInfo {
  /** UpdatedAt, as an ISO 8601 UTC time. */
  updatedAt?: string;
  /** NextUpdate, as an ISO 8601 UTC time. */
  nextUpdate?: string;
  /** metadata.json's Version (the DB schema). */
  version?: number;
  /** Why the dates could not be read (no metadata.json, not JSON, no UpdatedAt, …). */
  problem?: string;
}

export interface BundleFile {
  /** Relative to `files/` in the bundle and to the file server root inside. */
  path: string;
  sha256: string;
  size: number;
  source: string;
  role: FileRole;
  /** How the checksum was known at build: declared in the manifest, fetched from a checksum URL, or pinned at build. */
  checksum: 'manifest' | 'checksum-url' | 'pinned-at-build';
  /** A delta (SPEC §6): a base holds it; it is not in the tar. */
  external?: true;
}

export interface BundleBlob {
  digest: string;
  size: number;
  /** A delta (SPEC §6): a base holds it; it is not in the tar. */
  external?: true;
  /** Where the inside finds an external blob. */
  from?: BlobFrom;
}

/** Where an external blob is at the target: which base held it, and where that base put it. */
export interface BlobFrom {
  /** Index into `bases`. */
  base: number;
  /** A receipt base: the repository (below the registry host) it names for the blob. */
  repository?: string;
  /** A bundle base: the ref of the base image that held it (this unpack's layout and prefix place it). */
  image?: string;
}

/** A signature, attestation, SBOM or other manifest attached to an image (SPEC §9), carried byte for byte. */
export interface BundleAttached {
  /** The digest it is attached to: an image's top digest or a child manifest of its index. */
  subject: string;
  /** Source repository, normalized HOST/PATH (no tag), the same repository as the image it belongs to. */
  repository: string;
  /** The attached manifest's digest; the manifest and its blobs are in blobs[] like any other. */
  digest: string;
  mediaType: string;
  artifactType?: string;
  kind: AttachedKind;
  /** Tag scheme only: `sha256-<hex>.sig|.att|.sbom` of the subject. Absent: an OCI 1.1 referrer (pushed by digest). */
  tag?: string;
  /**
   * A signature of the image's upstream index, which a platform filter rewrote (`subject` is the
   * image's `upstreamDigest`, whose bytes are a blob of the bundle): carried so the policy can
   * check it, never pushed or served (nothing at the target has that digest).
   */
  upstream?: true;
  /** Bytes of the manifest and its blobs. */
  size: number;
}

/** The repository an attached entry names for an image: its ref's normalized HOST/PATH, no tag or digest. */
export function imageRepository(ref: string): string {
  return referenceName(parseReference(ref));
}

/** True when `tag` is cosign's tag-scheme name (`sha256-<hex>.sig`, `.att`, `.sbom`) for `subject`. */
export function isTagSchemeTagOf(tag: string, subject: string): boolean {
  if (!/^sha256:[a-f0-9]{64}$/.test(subject)) return false;
  return TAG_SUFFIXES.some((suffix) => tagSchemeTag(subject, suffix) === tag);
}

export const ATTACHED_KINDS: readonly AttachedKind[] = ['signature', 'attestation', 'sbom', 'other'];

/**
 * bundle.json's order of attached[]: by repository, subject, tag (a referrer,
 * without one, first), digest. One order, so two builds of the same content
 * write the same bytes, and the reader can refuse anything else.
 */
export function compareAttached(a: BundleAttached, b: BundleAttached): number {
  const key = (x: BundleAttached) => [x.repository, x.subject, x.tag ?? '', x.digest];
  const ka = key(a);
  const kb = key(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
  return 0;
}

/**
 * The policy file and the files it names, each a blob of the tar (never
 * external): the inside checks the carried signatures again against exactly
 * these bytes, offline.
 */
export interface BundlePolicy {
  /** The policy file's name as given at build (its last path segment): for messages. */
  name: string;
  digest: string;
  size: number;
  /** What the policy names (`keys`, `trustedRoot`), by the path as written in it. */
  files: BundlePolicyFile[];
}

export interface BundlePolicyFile {
  /** As the policy writes it (relative to the policy file). */
  path: string;
  role: 'key' | 'trusted-root';
  digest: string;
  size: number;
}

export type VerdictKind = 'verified' | 'unsigned' | 'failed' | 'skipped';
export const VERDICT_KINDS: readonly VerdictKind[] = ['verified', 'unsigned', 'failed', 'skipped'];

/** What the policy made of one image's signatures (SPEC §9). */
export interface SignatureVerdict {
  ref: string;
  /** The digest carried (the image's top digest). */
  digest: string;
  /** Index into the policy's rules, or `default` when none matched. */
  rule: number | 'default';
  /** What a verdict other than verified means under that rule. */
  mode: 'enforce' | 'warn' | 'skip';
  verdict: VerdictKind;
  /** Verified: `ISSUER SUBJECT`, or `key:NAME sha256:<fingerprint>`. */
  signer?: string;
  format?: 'tag-scheme' | 'sigstore-bundle';
  /** Verified and timestamped: when (ISO 8601). */
  signedAt?: string;
  /** Verified through the signed upstream index (a platform filter rewrote it), which lists every platform carried. */
  upstreamIndex?: string;
  /** Not verified: each signature tried and why it did not count (or why none was tried). */
  reasons?: string[];
}

/** An earlier bundle or receipt a delta was built against. */
export interface BundleBase {
  kind: 'bundle' | 'receipt';
  name: string;
  version: string;
  /** Hex sha256 of the base's bundle.json bytes (a bundle) or of the receipt file. */
  sha256: string;
}

export interface EntryDigest {
  sha256: string;
  size: number;
}

export interface BundleIndex {
  schemaVersion: typeof BUNDLE_SCHEMA_VERSION;
  name: string;
  version: string;
  created: string;
  tool: string;
  /** sha256 of the signing key's SPKI DER: who signed, as the builder claims (the signature proves it with --pub). */
  signer: { fingerprint: string };
  images: BundleImage[];
  files: BundleFile[];
  /** In tar order (external ones are not in the tar). */
  blobs: BundleBlob[];
  /** Signatures, attestations, SBOMs attached to the images (SPEC §9); absent or empty when none. Sorted by compareAttached. */
  attached?: BundleAttached[];
  /** A delta: the bases its external entries come from. */
  bases?: BundleBase[];
  /** The signature policy the build checked against (SPEC §9), carried with its keys and trusted root as blobs. */
  policy?: BundlePolicy;
  /** One verdict per image and artifact, bundle.json order, when a policy was given (SPEC §9). */
  signatures?: SignatureVerdict[];
  /** spec.kubespray: the Kubespray release whose tables gave the files with role kubespray (SPEC §12). */
  kubespray?: KubesprayInfo;
  layout: { 'oci-layout': EntryDigest; 'index.json': EntryDigest };
}
