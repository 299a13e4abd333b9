// Signed bundles whose images carry attached manifests (SPEC §9), written
// through build's own composeIndex and writeBundle without a registry: an
// index `example.com/team/app:1` (one linux/amd64 child) with a cosign
// tag-scheme signature on its top digest and a Sigstore-bundle referrer on its
// child, and a plain image `example.com/team/other:1` with nothing attached.
// Options add more (an SPDX referrer on the top digest, annotations) without
// changing what the defaults write.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ContentStore } from '../../src/cache/store.js';
import { writeBundle } from '../../src/bundle/writer.js';
import type { BundleAttached, BundleIndex } from '../../src/bundle/format.js';
import { composeIndex, uniqueBlobs } from '../../src/build/compose.js';
import { heldByBases } from '../../src/build/bases.js';
import type { Base } from '../../src/delta/base.js';
import type { Plan } from '../../src/manifest/types.js';
import type { Descriptor } from '../../src/oci/graph.js';
import { parseReference } from '../../src/oci/reference.js';
import { keygen, loadPrivateKey } from '../../src/sign/keys.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const SPDX = 'application/spdx+json';
export const APP = 'example.com/team/app:1';
export const OTHER = 'example.com/team/other:1';

export interface AttachedBundle {
  readonly bundle: string;
  readonly pub: string;
  readonly index: Omit<BundleIndex, 'layout'>;
  /** The app index's digest, its one child's, the other image's. */
  readonly app: string;
  readonly child: string;
  readonly other: string;
  /** The tag-scheme signature on `app`, and the referrer on `child` (when made). */
  readonly sig: BundleAttached;
  readonly referrer?: BundleAttached;
  /** With `extras`: a tag-scheme attestation on `app`. */
  readonly att?: BundleAttached;
  /** The SBOM referrer on `app` (with `sbom`, or `extras`: one with artifactType). */
  readonly sbom?: BundleAttached;
}

export interface AttachedOptions {
  /** Varies the signature's bytes (a new signature of the same image). */
  readonly signatureSeed?: string;
  readonly referrer?: boolean;
  /** Varies the app image's layer (a new version). */
  readonly appSeed?: string;
  readonly version?: string;
  /** A delta against these. */
  readonly bases?: readonly Base[];
  /** Changes bundle.json before it is signed: a bundle another tool made, signed with the right key. */
  readonly mutate?: (index: Omit<BundleIndex, 'layout'>) => void;
  /** Write it split in parts of this many bytes (SPEC §7). */
  readonly splitSize?: number;
  /** Another key pair to sign with (default: DIR/k). */
  readonly keyName?: string;
  /** Annotations on the Sigstore-bundle referrer's manifest (as cosign 3 puts there). */
  readonly referrerAnnotations?: Record<string, string>;
  /** Also an SPDX SBOM referrer on the app index's top digest, without artifactType (a referrers list names its config media type). */
  readonly sbom?: boolean;
  /** Add a cosign `.att` (DSSE) and an SPDX SBOM referrer with artifactType on the app index (not with `sbom`). */
  readonly extras?: boolean;
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

export async function makeAttachedBundle(dir: string, name: string, opts: AttachedOptions = {}): Promise<AttachedBundle> {
  const store = new ContentStore(path.join(dir, 'cache'));
  await store.init();
  const put = async (bytes: Buffer, mediaType: string, extra: Record<string, unknown> = {}): Promise<Descriptor> => ({ mediaType, digest: await store.putBuffer(bytes), size: bytes.length, ...extra });

  const image = async (seed: string) => {
    // Compressed: skopeo would compress a plain tar layer on the way, and the copy would not be byte for byte.
    const layer = await put(gzipSync(Buffer.from(`layer ${seed}\n`.repeat(64))), 'application/vnd.oci.image.layer.v1.tar+gzip');
    const config = await put(json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }), 'application/vnd.oci.image.config.v1+json');
    const manifest = json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [layer] });
    return { manifest: await put(manifest, OCI_MANIFEST), config, layer };
  };
  const appChild = await image(opts.appSeed ?? 'app');
  const appIndex = await put(json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...appChild.manifest, platform: { os: 'linux', architecture: 'amd64' } }] }), OCI_INDEX);
  const other = await image('other');

  // cosign's tag scheme: one simplesigning layer (the payload), the signature in an annotation.
  const payload = json({ critical: { identity: { 'docker-reference': 'example.com/team/app' }, image: { 'docker-manifest-digest': appIndex.digest }, type: 'cosign container image signature' }, optional: { seed: opts.signatureSeed ?? 'one' } });
  const sigLayer = await put(payload, 'application/vnd.dev.cosign.simplesigning.v1+json', { annotations: { 'dev.cosignproject.cosign/signature': createHash('sha256').update(payload).digest('base64') } });
  const sigConfig = await put(json({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [sigLayer.digest] } }), 'application/vnd.oci.image.config.v1+json');
  const sigManifest = await put(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: sigConfig, layers: [sigLayer] }), OCI_MANIFEST);
  const sig: BundleAttached = {
    subject: appIndex.digest,
    repository: 'example.com/team/app',
    digest: sigManifest.digest,
    mediaType: OCI_MANIFEST,
    kind: 'signature',
    tag: `sha256-${appIndex.digest.slice(7)}.sig`,
    size: sigManifest.size + sigConfig.size + sigLayer.size,
  };
  const attached: BundleAttached[] = [sig];
  const attachedBlobs: Descriptor[] = [sigManifest, sigConfig, sigLayer];
  let referrer: BundleAttached | undefined;
  if (opts.referrer !== false) {
    // A cosign 3 Sigstore bundle referrer: empty config, the bundle JSON as the one layer, the child as subject.
    const empty = await put(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
    const bundleLayer = await put(json({ mediaType: SIGSTORE_BUNDLE, dsseEnvelope: { payloadType: 'application/vnd.in-toto+json', payload: '', signatures: [] } }), SIGSTORE_BUNDLE);
    const annotations = opts.referrerAnnotations && { annotations: opts.referrerAnnotations };
    const m = await put(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: SIGSTORE_BUNDLE, config: empty, layers: [bundleLayer], subject: appChild.manifest, ...annotations }), OCI_MANIFEST);
    referrer = { subject: appChild.manifest.digest, repository: 'example.com/team/app', digest: m.digest, mediaType: OCI_MANIFEST, artifactType: SIGSTORE_BUNDLE, kind: 'signature', size: m.size + empty.size + bundleLayer.size };
    attached.push(referrer);
    attachedBlobs.push(m, empty, bundleLayer);
  }
  let sbom: BundleAttached | undefined;
  if (opts.sbom) {
    // An SBOM pushed the OCI 1.1 way without artifactType: its config's media type says what it is.
    const doc = await put(json({ spdxVersion: 'SPDX-2.3', name: 'app' }), SPDX);
    const config = await put(json({ spdxVersion: 'SPDX-2.3' }), SPDX);
    const m = await put(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers: [doc], subject: appIndex }), OCI_MANIFEST);
    sbom = { subject: appIndex.digest, repository: 'example.com/team/app', digest: m.digest, mediaType: OCI_MANIFEST, artifactType: SPDX, kind: 'sbom', size: m.size + config.size + doc.size };
    attached.push(sbom);
    attachedBlobs.push(m, config, doc);
  }

  let att: BundleAttached | undefined;
  if (opts.extras) {
    if (opts.sbom) throw new Error('makeAttachedBundle: sbom and extras each add an SBOM referrer; give one of them');
    const envelope = await put(json({ payloadType: 'application/vnd.in-toto+json', payload: Buffer.from(JSON.stringify({ predicateType: 'https://slsa.dev/provenance/v1', subject: [{ digest: { sha256: appIndex.digest.slice(7) } }] })).toString('base64'), signatures: [] }), 'application/vnd.dsse.envelope.v1+json', { annotations: { predicateType: 'https://slsa.dev/provenance/v1' } });
    const attConfig = await put(json({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [envelope.digest] } }), 'application/vnd.oci.image.config.v1+json');
    const attManifest = await put(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: attConfig, layers: [envelope] }), OCI_MANIFEST);
    att = { subject: appIndex.digest, repository: 'example.com/team/app', digest: attManifest.digest, mediaType: OCI_MANIFEST, kind: 'attestation', tag: `sha256-${appIndex.digest.slice(7)}.att`, size: attManifest.size + attConfig.size + envelope.size };
    const empty = await put(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
    const spdx = await put(json({ spdxVersion: 'SPDX-2.3', name: 'app', packages: [] }), SPDX);
    const m = await put(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: SPDX, config: empty, layers: [spdx], subject: appIndex }), OCI_MANIFEST);
    sbom = { subject: appIndex.digest, repository: 'example.com/team/app', digest: m.digest, mediaType: OCI_MANIFEST, artifactType: SPDX, kind: 'sbom', size: m.size + empty.size + spdx.size };
    attached.push(att, sbom);
    attachedBlobs.push(attManifest, attConfig, envelope, m, empty, spdx);
  }

  const appBlobs = [appIndex, appChild.manifest, appChild.config, appChild.layer];
  const otherBlobs = [other.manifest, other.config, other.layer];
  const item = (ref: string) => ({ kind: 'image' as const, ref, reference: parseReference(ref), origins: [] });
  const graph = (root: Descriptor, blobs: Descriptor[], platforms: string[]) => ({ digest: root.digest, mediaType: root.mediaType, size: blobs.reduce((n, b) => n + b.size, 0), platforms, blobs, manifests: [root.digest], downloads: Promise.resolve() });
  await keygen(path.join(dir, opts.keyName ?? 'k')).catch(() => undefined); // kept when it exists: every bundle of a test signed alike
  const key = await loadPrivateKey(path.join(dir, `${opts.keyName ?? 'k'}.key`));
  const index = composeIndex({
    plan: { file: 'airlock.yaml', name, version: opts.version ?? '1', registries: {}, vars: {}, items: [] } satisfies Plan,
    tool: 'airlock test',
    key,
    created: new Date(0),
    graphs: [
      { item: item(APP), graph: graph(appIndex, appBlobs, ['linux/amd64']) },
      { item: item(OTHER), graph: graph(other.manifest, otherBlobs, ['linux/amd64']) },
    ],
    files: [],
    blobs: uniqueBlobs([...appBlobs, ...otherBlobs, ...attachedBlobs]),
    // Given in reverse: compose sorts.
    attached: [...attached].reverse(),
    dbInfo: new Map(),
    held: heldByBases(opts.bases ?? []),
    ...(opts.bases && { bases: opts.bases }),
  });
  opts.mutate?.(index);
  const bundle = path.join(dir, `${name}.tar`);
  await writeBundle({ output: bundle, store, index, key, mtime: new Date(0), ...(opts.splitSize !== undefined && { splitSize: opts.splitSize }) });
  return { bundle, pub: path.join(dir, `${opts.keyName ?? 'k'}.pub`), index, app: appIndex.digest, child: appChild.manifest.digest, other: other.manifest.digest, sig, ...(referrer && { referrer }), ...(att && { att }), ...(sbom && { sbom }) };
}
