/**
 * Attaches supply-chain artifacts to a subject digest through the raw
 * distribution API (the Seeder; no code from src/), in every shape SPEC §9
 * carries:
 * - a cosign tag-scheme signature `sha256-<hex>.sig`, its layer the REAL
 *   captured signature of test/fixtures/sigstore (see its README);
 * - a tag-scheme attestation `sha256-<hex>.att` (a DSSE envelope layer);
 * - an SBOM referrer (artifactType application/spdx+json);
 * - a Sigstore-bundle referrer (artifactType …sigstore.bundle.v0.3+json);
 * - a Sigstore-bundle referrer without artifactType, as cosign 2.5 pushed
 *   some (sigstore/cosign#4422): only its layer says what it is.
 * With `fallback`, the referrers are also listed in the `sha256-<hex>`
 * fallback index, as a client does on a registry without the referrers API
 * (distribution 2.8).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonBytes, MediaTypes, sha256, type Descriptor, type Seeder } from './seed.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'sigstore');

export const AttachedTypes = {
  simplesigning: 'application/vnd.dev.cosign.simplesigning.v1+json',
  dsse: 'application/vnd.dsse.envelope.v1+json',
  spdx: 'application/spdx+json',
  bundle: 'application/vnd.dev.sigstore.bundle.v0.3+json',
} as const;

export interface SeededBlob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export interface SeededAttached {
  /** The exact manifest bytes pushed. */
  manifest: Buffer;
  digest: string;
  mediaType: string;
  /** The tag it was pushed under (tag scheme), else undefined (a referrer, pushed by digest). */
  tag?: string;
  /** artifactType as a referrers list carries it. */
  artifactType: string;
  blobs: SeededBlob[];
}

export interface SeededSet {
  sig: SeededAttached;
  att: SeededAttached;
  sbom: SeededAttached;
  bundle: SeededAttached;
  /** cosign 2.5 style: no top-level artifactType. */
  bundleNoType: SeededAttached;
  /** The fallback index pushed (with `fallback`). */
  fallbackIndex?: Buffer;
}

/** The real captured signed image manifest: its digest is what the real signature names. */
export function realSignedManifest(): { bytes: Buffer; digest: string; mediaType: string } {
  const bytes = readFileSync(path.join(FIXTURES, 'cosign-fulcio-rekor-valid.manifest.json'));
  return { bytes, digest: sha256(bytes), mediaType: MediaTypes.dockerManifest };
}

/** The real signature layer: containers/image's `\0sigstore-json\n{mimeType, payload, annotations}` turned back into blob + annotations. */
export function realSignatureLayer(): { payload: Buffer; mediaType: string; annotations: Record<string, string> } {
  const raw = readFileSync(path.join(FIXTURES, 'cosign-fulcio-rekor-valid.signature-1'));
  const prefix = Buffer.from('\0sigstore-json\n');
  if (!raw.subarray(0, prefix.length).equals(prefix)) throw new Error('signature-1: not containers/image sigstore-json form');
  const doc = JSON.parse(raw.subarray(prefix.length).toString('utf8')) as { mimeType: string; payload: string; annotations: Record<string, string> };
  return { payload: Buffer.from(doc.payload, 'base64'), mediaType: doc.mimeType, annotations: doc.annotations };
}

export function tagFor(subject: string, suffix?: 'sig' | 'att' | 'sbom'): string {
  const base = subject.replace(':', '-');
  return suffix ? `${base}.${suffix}` : base;
}

async function blob(seeder: Seeder, repo: string, bytes: Buffer, mediaType: string, annotations?: Record<string, string>): Promise<SeededBlob> {
  const d = await seeder.pushBlob(repo, bytes, mediaType);
  return { descriptor: { ...d, ...(annotations && { annotations }) }, bytes };
}

/** Pushes an OCI manifest over already-built blobs, by `tag` or by its digest. */
async function manifest(
  seeder: Seeder,
  repo: string,
  o: { tag?: string; artifactType?: string; config: SeededBlob; layers: SeededBlob[]; subject?: Descriptor; annotations?: Record<string, string> },
): Promise<SeededAttached> {
  const mediaType = MediaTypes.ociManifest;
  const bytes = jsonBytes({
    schemaVersion: 2,
    mediaType,
    ...(o.artifactType && { artifactType: o.artifactType }),
    config: o.config.descriptor,
    layers: o.layers.map((l) => l.descriptor),
    ...(o.subject && { subject: { mediaType: o.subject.mediaType, digest: o.subject.digest, size: o.subject.size } }),
    ...(o.annotations && { annotations: o.annotations }),
  });
  const d = await seeder.pushManifest(repo, o.tag ?? sha256(bytes), bytes, mediaType);
  return {
    manifest: bytes,
    digest: d.digest,
    mediaType,
    ...(o.tag && { tag: o.tag }),
    artifactType: o.artifactType ?? o.config.descriptor.mediaType,
    blobs: [o.config, ...o.layers],
  };
}

/** The tag-scheme `.sig` carrying the real captured signature layer, in the manifest shape cosign writes. */
export async function pushRealSignature(seeder: Seeder, repo: string, subject: string): Promise<SeededAttached> {
  const sig = realSignatureLayer();
  const layer = await blob(seeder, repo, sig.payload, sig.mediaType, sig.annotations);
  const config = await blob(
    seeder,
    repo,
    Buffer.from(JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: [sha256(sig.payload)] }, config: {} })),
    MediaTypes.ociConfig,
  );
  return manifest(seeder, repo, { tag: tagFor(subject, 'sig'), config, layers: [layer] });
}

/** A referrer with an empty config and one layer. */
async function referrer(
  seeder: Seeder,
  repo: string,
  subject: Descriptor,
  o: { artifactType?: string; layerType: string; layer: Buffer; annotations?: Record<string, string> },
): Promise<SeededAttached> {
  const config = await blob(seeder, repo, Buffer.from('{}'), MediaTypes.ociEmpty);
  const layer = await blob(seeder, repo, o.layer, o.layerType);
  return manifest(seeder, repo, { ...(o.artifactType && { artifactType: o.artifactType }), config, layers: [layer], subject, ...(o.annotations && { annotations: o.annotations }) });
}

/** Pushes one SBOM referrer (its SPDX document names `n`); for many-referrers tests. */
export function pushSbomReferrer(seeder: Seeder, repo: string, subject: Descriptor, n: number): Promise<SeededAttached> {
  const spdx = jsonBytes({ spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', name: `airlock-test-${n}`, documentNamespace: `https://airlock.invalid/spdx/${n}`, creationInfo: { created: '2024-01-01T00:00:00Z', creators: ['Tool: airlock-test'] }, packages: [] });
  return referrer(seeder, repo, subject, { artifactType: AttachedTypes.spdx, layerType: AttachedTypes.spdx, layer: spdx, annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' } });
}

/**
 * A Sigstore bundle v0.3 pushed as cosign 3 pushes an image signature: a referrer of `subject`
 * with artifactType and one layer the bundle's media type, annotated with what it holds.
 */
export function pushBundleReferrer(seeder: Seeder, repo: string, subject: Descriptor, bundle: unknown): Promise<SeededAttached> {
  return referrer(seeder, repo, subject, {
    artifactType: AttachedTypes.bundle,
    layerType: AttachedTypes.bundle,
    layer: jsonBytes(bundle),
    annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' },
  });
}

/** A fallback index listing `entries` in order, pushed under `sha256-<hex>` (its children must exist). */
export async function pushFallbackIndex(seeder: Seeder, repo: string, subject: string, entries: Descriptor[]): Promise<Buffer> {
  const bytes = jsonBytes({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: entries });
  await seeder.pushManifest(repo, tagFor(subject), bytes, MediaTypes.ociIndex);
  return bytes;
}

/** The descriptor a referrers list carries for a seeded referrer. */
export function referrerEntry(a: SeededAttached): Descriptor {
  const annotations = (JSON.parse(a.manifest.toString('utf8')) as { annotations?: Record<string, string> }).annotations;
  return { mediaType: a.mediaType, digest: a.digest, size: a.manifest.length, artifactType: a.artifactType, ...(annotations && { annotations }) };
}

/** Every kind SPEC §9 carries, attached to `subject` in `repo`. */
export async function seedAttached(seeder: Seeder, repo: string, subject: Descriptor, opts: { fallback: boolean }): Promise<SeededSet> {
  const sig = await pushRealSignature(seeder, repo, subject.digest);

  const statement = jsonBytes({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: repo, digest: { sha256: subject.digest.slice(7) } }], predicateType: 'https://slsa.dev/provenance/v1', predicate: { buildDefinition: { buildType: 'https://airlock.invalid/test' } } });
  const envelope = Buffer.from(JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: statement.toString('base64'), signatures: [{ keyid: '', sig: 'MEUCIQCtest' }] }));
  const attLayer = await blob(seeder, repo, envelope, AttachedTypes.dsse, { predicateType: 'https://slsa.dev/provenance/v1' });
  const attConfig = await blob(seeder, repo, Buffer.from(JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', os: '', rootfs: { type: 'layers', diff_ids: [sha256(envelope)] }, config: {} })), MediaTypes.ociConfig);
  const att = await manifest(seeder, repo, { tag: tagFor(subject.digest, 'att'), config: attConfig, layers: [attLayer] });

  const sbom = await pushSbomReferrer(seeder, repo, subject, 0);
  // Shaped like a cosign 3 bundle referrer; the bundle content is synthetic (carriage is byte for byte, nothing verifies it here).
  const bundleJson = (n: string) => jsonBytes({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', verificationMaterial: { certificate: { rawBytes: Buffer.from(`test certificate ${n}`).toString('base64') }, tlogEntries: [] }, dsseEnvelope: { payloadType: 'application/vnd.in-toto+json', payload: Buffer.from(`{"subject":"${subject.digest}"}`).toString('base64'), signatures: [{ sig: 'MEUCIQCtest' }] } });
  const bundle = await referrer(seeder, repo, subject, {
    artifactType: AttachedTypes.bundle,
    layerType: AttachedTypes.bundle,
    layer: bundleJson('v3'),
    annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' },
  });
  const bundleNoType = await referrer(seeder, repo, subject, { layerType: AttachedTypes.bundle, layer: bundleJson('2.5') });

  const set: SeededSet = { sig, att, sbom, bundle, bundleNoType };
  if (opts.fallback) set.fallbackIndex = await pushFallbackIndex(seeder, repo, subject.digest, [sbom, bundle, bundleNoType].map(referrerEntry));
  return set;
}
