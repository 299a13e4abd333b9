// The demo's "internet": a tiny read-only registry and file server in this
// process, on 127.0.0.1, seeded with an image index, a Trivy DB artifact,
// Falco rules, an OpenSearch plugin with its .sha512 and a Falco driver. It
// needs nothing installed, so the demo runs on a fresh machine.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { jsonBytes, makeLayer, MediaTypes, pseudoRandomBytes } from '../../test/support/seed.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Repo {
  tags: Map<string, string>;
  manifests: Map<string, { bytes: Buffer; mediaType: string }>;
  blobs: Map<string, Buffer>;
}

export interface DemoUpstream {
  readonly registryHost: string;
  readonly filesUrl: string;
  readonly images: { index: string; trivy: string; rules: string };
  /** The publisher's public key (SPKI PEM): demo/hello:1.0 carries a cosign signature made with it. */
  readonly publisherKey: string;
  stop(): Promise<void>;
}

export async function startDemoUpstream(): Promise<DemoUpstream> {
  const repos = new Map<string, Repo>();
  const repo = (name: string) => {
    let r = repos.get(name);
    if (!r) repos.set(name, (r = { tags: new Map(), manifests: new Map(), blobs: new Map() }));
    return r;
  };
  const blob = (name: string, bytes: Buffer, mediaType: string) => {
    repo(name).blobs.set(sha(bytes), bytes);
    return { mediaType, digest: sha(bytes), size: bytes.length };
  };
  const manifest = (name: string, tag: string | undefined, value: unknown, mediaType: string) => {
    const bytes = jsonBytes(value);
    repo(name).manifests.set(sha(bytes), { bytes, mediaType });
    if (tag) repo(name).tags.set(tag, sha(bytes));
    return { mediaType, digest: sha(bytes), size: bytes.length };
  };

  // demo/hello:1.0, an OCI index for amd64 and arm64 sharing a base layer.
  const base = await makeLayer('demo-base', 200_000);
  const children = [];
  for (const arch of ['amd64', 'arm64']) {
    const own = await makeLayer(`demo-${arch}`, 50_000);
    const config = blob('demo/hello', jsonBytes({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }), MediaTypes.ociConfig);
    const m = manifest('demo/hello', undefined, { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [blob('demo/hello', base, MediaTypes.ociLayerGzip), blob('demo/hello', own, MediaTypes.ociLayerGzip)] }, MediaTypes.ociManifest);
    children.push({ ...m, platform: { os: 'linux', architecture: arch } });
  }
  const index = manifest('demo/hello', '1.0', { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: children }, MediaTypes.ociIndex);

  // The publisher signs its release as `cosign sign --key` does: a simplesigning payload naming the
  // index digest, its ECDSA signature in the layer's annotation, under the tag sha256-<hex>.sig.
  const publisher = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const host = { name: '' };
  const signIndex = () => {
    const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': `${host.name}/demo/hello` }, image: { 'docker-manifest-digest': index.digest }, type: 'cosign container image signature' }, optional: null }));
    const signature = sign('sha256', payload, publisher.privateKey).toString('base64');
    const layer = { ...blob('demo/hello', payload, 'application/vnd.dev.cosign.simplesigning.v1+json'), annotations: { 'dev.cosignproject.cosign/signature': signature } };
    const config = blob('demo/hello', jsonBytes({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [sha(payload)] }, config: {} }), MediaTypes.ociConfig);
    manifest('demo/hello', `${index.digest.replace(':', '-')}.sig`, { schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [layer] }, MediaTypes.ociManifest);
  };

  // The Trivy DB as oras pushes it, and Falco rules as falcoctl does.
  const empty = blob('aquasecurity/trivy-db', Buffer.from('{}'), MediaTypes.ociEmpty);
  manifest('aquasecurity/trivy-db', '2', {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: 'application/vnd.aquasec.trivy.config.v1+json',
    config: empty,
    layers: [{ ...blob('aquasecurity/trivy-db', await makeLayer('demo-trivy', 60_000), 'application/vnd.aquasec.trivy.db.layer.v1.tar+gzip'), annotations: { 'org.opencontainers.image.title': 'db.tar.gz' } }],
  }, MediaTypes.ociManifest);
  manifest('falcosecurity/rules/falco-rules', '4.0.0', {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: blob('falcosecurity/rules/falco-rules', Buffer.from('{"name":"falco-rules","version":"4.0.0"}'), 'application/vnd.cncf.falco.rulesfile.config.v1+json'),
    layers: [{ ...blob('falcosecurity/rules/falco-rules', await makeLayer('demo-rules', 20_000), 'application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz'), annotations: { 'org.opencontainers.image.title': 'falco_rules.yaml.tar.gz' } }],
  }, MediaTypes.ociManifest);

  const files = new Map<string, Buffer>();
  const plugin = pseudoRandomBytes('demo-plugin', 120_000);
  files.set('/releases/plugins/repository-s3/2.19.4/repository-s3-2.19.4.zip', plugin);
  files.set('/releases/plugins/repository-s3/2.19.4/repository-s3-2.19.4.zip.sha512', Buffer.from(`${createHash('sha512').update(plugin).digest('hex')}  repository-s3-2.19.4.zip\n`));
  files.set('/driver/8.1.0+driver/x86_64/falco_debian_6.1.0-13-amd64_1.ko', pseudoRandomBytes('demo-driver', 40_000));

  const send = (res: http.ServerResponse, status: number, body: Buffer, headers: Record<string, string>, head: boolean) => {
    res.writeHead(status, { 'content-length': String(body.length), ...headers });
    res.end(head ? undefined : body);
  };
  const registry = http.createServer((req, res) => {
    const head = req.method === 'HEAD';
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/v2/') return send(res, 200, Buffer.from('{}'), { 'content-type': 'application/json' }, head);
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    const r = m ? repos.get(m[1] ?? '') : undefined;
    if (m && r && m[2] === 'manifests') {
      const digest = m[3]?.startsWith('sha256:') ? m[3] : r.tags.get(m[3] ?? '');
      const mf = digest ? r.manifests.get(digest) : undefined;
      if (mf && digest) return send(res, 200, mf.bytes, { 'content-type': mf.mediaType, 'docker-content-digest': digest }, head);
    }
    if (m && r && m[2] === 'blobs') {
      const b = r.blobs.get(m[3] ?? '') ?? r.manifests.get(m[3] ?? '')?.bytes;
      if (b) return send(res, 200, b, { 'content-type': 'application/octet-stream', 'docker-content-digest': m[3] ?? '' }, head);
    }
    send(res, 404, Buffer.from('{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}'), { 'content-type': 'application/json' }, head);
  });
  const fileServer = http.createServer((req, res) => {
    const f = files.get(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (f) return send(res, 200, f, { 'content-type': 'application/octet-stream' }, req.method === 'HEAD');
    send(res, 404, Buffer.from('not found\n'), { 'content-type': 'text/plain' }, req.method === 'HEAD');
  });
  const listen = (s: http.Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
  const regPort = await listen(registry);
  const filePort = await listen(fileServer);
  host.name = `127.0.0.1:${regPort}`;
  signIndex();
  return {
    registryHost: `127.0.0.1:${regPort}`,
    filesUrl: `http://127.0.0.1:${filePort}`,
    images: { index: 'demo/hello:1.0', trivy: 'aquasecurity/trivy-db:2', rules: 'falcosecurity/rules/falco-rules:4.0.0' },
    publisherKey: publisher.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    async stop() {
      for (const s of [registry, fileServer]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}
