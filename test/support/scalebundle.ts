// A real, signed bundle of many small images from several upstream registries,
// with a signature policy's verdicts, a Trivy DB, attached signatures and
// files: the scale a report must handle (200 images: a Welkin platform's
// worth), without an upstream registry. Every blob is in the tar.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ContentStore } from '../../src/cache/store.js';
import { writeBundle } from '../../src/bundle/writer.js';
import type { BundleAttached, BundleBlob, BundleFile, BundleImage, BundleIndex, SignatureVerdict } from '../../src/bundle/format.js';
import { fingerprint, keygen, loadPrivateKey } from '../../src/sign/keys.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const REGISTRIES = ['docker.io/library', 'quay.io/prometheus', 'ghcr.io/fluxcd', 'registry.k8s.io', 'harbor.example.org/welkin'];

export interface ScaleBundle {
  bundle: string;
  pub: string;
  index: Omit<BundleIndex, 'layout'>;
}

export async function makeScaleBundle(dir: string, opts: { images: number; name?: string; seed?: string; mutate?: (i: Omit<BundleIndex, 'layout'>) => void }): Promise<ScaleBundle> {
  const store = new ContentStore(path.join(dir, 'cache'));
  await store.init();
  const blobs: BundleBlob[] = [];
  const put = async (bytes: Buffer) => {
    const digest = await store.putBuffer(bytes);
    if (!blobs.some((b) => b.digest === digest)) blobs.push({ digest, size: bytes.length });
    return { digest, size: bytes.length };
  };
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const seed = opts.seed ?? 'one';
  const images: BundleImage[] = [];
  const attached: BundleAttached[] = [];
  const verdicts: SignatureVerdict[] = [];
  const shared = await put(Buffer.from(`shared base layer ${'x'.repeat(2000)}`));
  for (let n = 0; n < opts.images; n++) {
    const layer = await put(Buffer.from(`layer ${n} ${seed} ${'y'.repeat(500 + n)}`));
    const config = await put(json({ architecture: 'amd64', os: 'linux', n, rootfs: { type: 'layers', diff_ids: [shared.digest, layer.digest] } }));
    const manifest = await put(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [shared, layer].map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })) }));
    const repo = `${REGISTRIES[n % REGISTRIES.length]}/app-${n}`;
    const ref = `${repo}:v${n}.0`;
    images.push({ ref, digest: manifest.digest, mediaType: OCI_MANIFEST, kind: 'image', platforms: ['linux/amd64'], size: shared.size + layer.size + config.size + manifest.size });
    const verdict = (['verified', 'verified', 'unsigned', 'failed', 'skipped'] as const)[n % 5]!;
    verdicts.push({
      ref,
      digest: manifest.digest,
      rule: verdict === 'skipped' ? 'default' : 0,
      mode: verdict === 'skipped' ? 'skip' : 'warn',
      verdict,
      ...(verdict === 'verified' ? { signer: `key:publisher sha256:${createHash('sha256').update('publisher').digest('hex')}`, format: 'tag-scheme' as const } : {}),
      ...(verdict === 'unsigned' || verdict === 'failed' ? { reasons: [verdict === 'failed' ? 'the signature does not verify with key publisher' : 'no signature found (tag scheme, referrers)'] } : {}),
    });
    if (verdict === 'verified') {
      const sig = await put(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: [], n, seed }));
      attached.push({ subject: manifest.digest, repository: repo, digest: sig.digest, mediaType: OCI_MANIFEST, kind: 'signature', tag: `sha256-${manifest.digest.slice(7)}.sig`, size: sig.size + config.size });
    }
  }
  const dbLayer = await put(Buffer.from(`trivy db ${seed}`));
  const dbConfig = await put(json({}));
  const dbManifest = await put(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.aquasec.trivy.config.v1+json', ...dbConfig }, layers: [{ mediaType: 'application/vnd.aquasec.trivy.db.layer.v1.tar+gzip', ...dbLayer }] }));
  images.push({ ref: 'ghcr.io/aquasecurity/trivy-db:2', digest: dbManifest.digest, mediaType: OCI_MANIFEST, kind: 'artifact', role: 'trivy-db', platforms: [], size: dbLayer.size + dbConfig.size + dbManifest.size, trivyDb: { updatedAt: '2026-12-01T06:00:00.000Z', nextUpdate: '2026-12-01T12:00:00.000Z', version: 2 } });
  verdicts.push({ ref: 'ghcr.io/aquasecurity/trivy-db:2', digest: dbManifest.digest, rule: 'default', mode: 'skip', verdict: 'skipped' });
  const files: BundleFile[] = [];
  for (const [p, source] of [
    ['opensearch/plugins/prometheus-exporter.zip', 'https://github.com/opensearch-project/opensearch-prometheus-exporter/releases/download/2.19.0/prometheus-exporter-2.19.0.zip'],
    ['falco/drivers/falco_debian_6.1.0-27-amd64_1.ko', 'https://download.falco.org/driver/8.0.0/x86_64/falco_debian_6.1.0-27-amd64_1.ko'],
  ] as const) {
    const bytes = Buffer.from(`${p} ${seed}`);
    const digest = await store.putBuffer(bytes);
    files.push({ path: p, sha256: digest.slice(7), size: bytes.length, source, role: p.startsWith('falco') ? 'falco-driver' : 'opensearch-plugin', checksum: 'pinned-at-build' });
  }
  const policy = await put(Buffer.from('apiVersion: airlock/v1\nkind: SignaturePolicy\n'));
  const policyKey = await put(Buffer.from('-----BEGIN PUBLIC KEY-----\n'));
  await keygen(path.join(dir, 'k')).catch(() => undefined);
  const key = await loadPrivateKey(path.join(dir, 'k.key'));
  attached.sort((a, b) => (a.repository < b.repository ? -1 : a.repository > b.repository ? 1 : 0));
  const index: Omit<BundleIndex, 'layout'> = {
    schemaVersion: 1,
    name: opts.name ?? 'platform',
    version: '2026.12',
    created: '2026-12-02T10:00:00.000Z',
    tool: 'airlock test',
    signer: { fingerprint: fingerprint(key) },
    images,
    files,
    blobs,
    attached,
    policy: { name: 'policy.yaml', digest: policy.digest, size: policy.size, files: [{ path: 'publisher.pub', role: 'key', digest: policyKey.digest, size: policyKey.size }] },
    signatures: verdicts,
  };
  opts.mutate?.(index);
  const bundle = path.join(dir, `${index.name.replace(/[^a-z0-9-]/gi, '_')}.tar`);
  await writeBundle({ output: bundle, store, index, key, mtime: new Date(0) });
  return { bundle, pub: path.join(dir, 'k.pub'), index };
}
