// The inside's own signature over an image (SPEC §9 "Inside", `unpack --countersign KEY`): a
// cosign tag-scheme signature, so that cosign, Kyverno, Harbor and CRI-O policies that trust one
// key read it as they read any cosign signature. Pure: bytes and a key in, bytes out.
//
// The signature manifest is what cosign writes (sigstore/cosign specs/SIGNATURE_SPEC.md, built
// with go-containerregistry's mutate.Append over empty.Image): an OCI image manifest, one
// simplesigning layer per signature, and an image config whose rootfs lists each layer's digest as
// its diff_id (the layers are not compressed) with one history entry per layer, created at the
// zero time (cosign's default without --record-creation-timestamp). Signing an image that already
// has a `.sig` appends a layer, as cosign does: the layers there stay as they are, the config keeps
// its fields and gains a diff_id and a history entry.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { signBytes, verifyBytes } from './keys.js';
import { ANN } from './publisher/cosign.js';
import { COSIGN_SIMPLESIGNING } from '../oci/attached.js';
import { sha256Digest } from '../oci/digest.js';
import { GraphError, parseManifest, type Descriptor } from '../oci/graph.js';
import { OCI_MANIFEST } from '../oci/mediatypes.js';
import { parseReference, referenceName, ReferenceError } from '../oci/reference.js';

export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** What cosign writes under COSIGN_DOCKER_MEDIA_TYPES=1; such a `.sig` is appended to like any other. */
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** cosign refuses to add a signature to a `.sig` holding this many (pkg/oci/mutate maxLayers). */
export const MAX_SIGNATURE_LAYERS = 1000;
/** go-containerregistry's v1.Time zero value, as cosign leaves `created` by default. */
const ZERO_TIME = '0001-01-01T00:00:00Z';
const SHA256 = /^sha256:[a-f0-9]{64}$/;

export class CountersignError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'CountersignError';
  }
}

/**
 * cosign's simplesigning payload, compact and in cosign's field order, `optional` null: the same
 * reference and digest always give the same bytes, so a rerun finds its layer by digest.
 * `dockerReference` is a repository name, HOST/PATH with no tag or digest (cosign ignores it;
 * CRI-O and podman policies compare it).
 */
export function cosignPayload(dockerReference: string, digest: string): Buffer {
  if (!SHA256.test(digest)) throw new TypeError(`cosignPayload: ${JSON.stringify(digest)} is not a sha256 digest`);
  let name: string | undefined;
  try {
    name = referenceName(parseReference(dockerReference));
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
  }
  if (name !== dockerReference) throw new TypeError(`cosignPayload: ${JSON.stringify(dockerReference)} is not a repository name (HOST/PATH, no tag or digest)`);
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
      optional: null,
    }),
  );
}

/**
 * base64 of the DER ECDSA P-256 SHA-256 signature over the payload bytes, what cosign puts in
 * `dev.cosignproject.cosign/signature`. keys.ts signs with a nonce derived from key and message:
 * signing the same payload again gives the same bytes, so a countersign whose answer was lost
 * and is run again writes the very same manifest.
 */
export function signPayload(key: KeyObject, payload: Buffer): Promise<string> {
  return signBytes(payload, key);
}

/** A `.sig` manifest already at the target, with its config blob. */
export interface ExistingSignatures {
  readonly manifest: Buffer;
  readonly mediaType: string;
  readonly config: Buffer;
}

/** What checkSignatureManifest found in a `.sig` manifest. */
export interface SignatureManifest {
  readonly json: Record<string, unknown>;
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: Descriptor[];
}

/**
 * The `.sig` manifest's shape, checked: an image manifest (OCI or Docker schema 2) with an image
 * config and only simplesigning layers, fewer than MAX_SIGNATURE_LAYERS. Anything else at that
 * tag is someone else's content, not a signature to append to: CountersignError naming `what`.
 */
export function checkSignatureManifest(bytes: Buffer, mediaType: string, what: string, advice = 'it is not a cosign signature manifest, and adding a signature would overwrite it: remove or retag it, or unpack without --countersign'): SignatureManifest {
  let m;
  try {
    m = parseManifest(bytes, sha256Digest(bytes), mediaType, { ref: what, advice });
  } catch (err) {
    if (err instanceof GraphError) throw new CountersignError(err.message);
    throw err;
  }
  const refuse = (problem: string): never => {
    throw new CountersignError(`${what}: ${problem}; ${advice}`);
  };
  // parseManifest answers an index or an OCI or Docker image manifest, which has a config.
  if (m.kind !== 'manifest') refuse(`is an index (${m.mediaType})`);
  const config = m.config!;
  if (config.mediaType !== OCI_CONFIG && config.mediaType !== DOCKER_CONFIG) refuse(`has a config of type ${config.mediaType}, not an image config`);
  const other = m.layers.find((l) => l.mediaType !== COSIGN_SIMPLESIGNING);
  if (other) refuse(`has a layer of type ${other.mediaType}, not ${COSIGN_SIMPLESIGNING}`);
  if (m.layers.length >= MAX_SIGNATURE_LAYERS) {
    throw new CountersignError(`${what} holds ${m.layers.length} signatures already, as many as cosign allows; not adding one`);
  }
  return { json: m.json, mediaType: m.mediaType, config, layers: m.layers };
}

/**
 * True when one of the layers is `publicKey`'s signature over exactly `payload`: a layer with the
 * payload's digest whose signature annotation verifies. ECDSA signatures made elsewhere (cosign,
 * an earlier airlock with random nonces) differ in their bytes, so the signature is verified,
 * not compared.
 */
export function alreadySigned(layers: readonly Descriptor[], payload: Buffer, publicKey: KeyObject): boolean {
  const digest = sha256Digest(payload);
  const pub = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
  return layers.some((l) => {
    const sig = l.digest === digest ? l.annotations?.[ANN.signature] : undefined;
    return typeof sig === 'string' && verifyBytes(payload, sig, pub);
  });
}

/**
 * The `.sig` manifest and config with one more signature layer: a new one when there is no
 * `existing`, else `existing` with the layer appended (its layers, annotations and other fields
 * kept as they are, its config given a new diff_id and history entry). `existing.manifest` must
 * have passed checkSignatureManifest.
 */
export function signatureManifest(existing: ExistingSignatures | undefined, layer: { payload: Buffer; signature: string }): { manifest: Buffer; mediaType: string; config: Buffer } {
  const ours = { mediaType: COSIGN_SIMPLESIGNING, size: layer.payload.length, digest: sha256Digest(layer.payload), annotations: { [ANN.signature]: layer.signature } };
  if (!existing) {
    const config = Buffer.from(JSON.stringify({ architecture: '', created: ZERO_TIME, history: [{ created: ZERO_TIME }], os: '', rootfs: { type: 'layers', diff_ids: [ours.digest] }, config: {} }));
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, size: config.length, digest: sha256Digest(config) }, layers: [ours] };
    return { manifest: Buffer.from(JSON.stringify(manifest)), mediaType: OCI_MANIFEST, config };
  }
  const m = checkSignatureManifest(existing.manifest, existing.mediaType, 'the existing signature manifest');
  const config = Buffer.from(JSON.stringify(appendToConfig(existing.config, m.layers, ours.digest)));
  const manifest = { ...m.json, config: { ...m.config, size: config.length, digest: sha256Digest(config) }, layers: [...(m.json.layers as unknown[]), ours] };
  return { manifest: Buffer.from(JSON.stringify(manifest)), mediaType: m.mediaType, config };
}

/**
 * A signature layer's identity, for telling whether a `.sig` holds it already: its media type,
 * digest, size and annotations (the signature, certificate and Rekor bundle are annotations; two
 * signatures of one payload share a digest and differ there).
 */
export function layerKey(layer: unknown): string {
  const d = (layer ?? {}) as { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: unknown };
  const annotations = d.annotations && typeof d.annotations === 'object' ? Object.entries(d.annotations).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)) : [];
  return JSON.stringify([d.mediaType, d.digest, d.size, annotations]);
}

/**
 * `existing` (a `.sig` at the target) with the layers of `carried` (the bundle's `.sig` of the same
 * image) that it lacks, appended as they are: what cosign does when it signs an image signed
 * already, so that the signatures made at the target (cosign inside, another airlock's
 * countersignature, an earlier publisher signature) are not pushed over. Undefined when it lacks
 * none, or when either is not a cosign signature manifest (CountersignError from the check says
 * why; the caller decides).
 */
export function mergeSignatureManifests(existing: ExistingSignatures, carried: { bytes: Buffer; mediaType: string }, what: string): { manifest: Buffer; mediaType: string; config: Buffer } | undefined {
  const there = checkSignatureManifest(existing.manifest, existing.mediaType, what);
  const ours = checkSignatureManifest(carried.bytes, carried.mediaType, `the carried signature manifest for ${what}`);
  const have = new Set((there.json.layers as unknown[]).map(layerKey));
  const add = (ours.json.layers as unknown[]).filter((l) => !have.has(layerKey(l)));
  if (add.length === 0) return undefined;
  if (there.layers.length + add.length >= MAX_SIGNATURE_LAYERS) {
    throw new CountersignError(`${what} holds ${there.layers.length} signatures; with the ${add.length} carried it would hold more than cosign allows`);
  }
  let config = existing.config;
  let layers: readonly Descriptor[] = there.layers;
  for (const l of add) {
    const digest = (l as Descriptor).digest;
    config = Buffer.from(JSON.stringify(appendToConfig(config, layers, digest)));
    layers = [...layers, l as Descriptor];
  }
  const manifest = { ...there.json, config: { ...there.config, size: config.length, digest: sha256Digest(config) }, layers: [...(there.json.layers as unknown[]), ...add] };
  return { manifest: Buffer.from(JSON.stringify(manifest)), mediaType: there.mediaType, config };
}

/**
 * go-containerregistry's mutate.Append on the config: every field kept, the diff_id and an empty
 * history entry appended. A config that is not a JSON object is refused; diff_ids that are not a
 * list of strings are rebuilt from the layers (each layer is its own diff_id).
 */
function appendToConfig(bytes: Buffer, layers: readonly Descriptor[], diffId: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    // refused below
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new CountersignError('the existing signature manifest\'s config is not a JSON object; not adding a signature to it');
  const cfg = doc as Record<string, unknown>;
  const rootfs = cfg.rootfs && typeof cfg.rootfs === 'object' && !Array.isArray(cfg.rootfs) ? (cfg.rootfs as Record<string, unknown>) : {};
  const listed = rootfs.diff_ids;
  const diffIds = Array.isArray(listed) && listed.every((d) => typeof d === 'string') ? (listed as string[]) : layers.map((l) => l.digest);
  const history = Array.isArray(cfg.history) ? (cfg.history as unknown[]) : [];
  return { ...cfg, history: [...history, { created: ZERO_TIME }], rootfs: { ...rootfs, type: 'layers', diff_ids: [...diffIds, diffId] } };
}
