// kubespray/offline.yml from a hand-made bundle index (no Kubespray checkout
// needed): every base and recorded URL points where build landed its files,
// what airlock cannot point is a manual step, and Cilium's chart is named.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { emitConfig } from '../src/emit/write.js';
import type { BundleFile, BundleImage, BundleIndex } from '../src/bundle/format.js';
import { makeTempDir, removeTempDir } from './support/proc.js';

const image = (ref: string): BundleImage => ({ ref, digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', kind: 'image', platforms: [], size: 1 });
const file = (url: string): BundleFile => {
  const u = new URL(url);
  return { path: `${u.host}${u.pathname}`, sha256: 'b'.repeat(64), size: 1, source: url, role: 'kubespray', checksum: 'manifest' };
};

const INDEX: BundleIndex = {
  schemaVersion: 1,
  name: 'platform',
  version: '1',
  created: '2026-12-04T00:00:00Z',
  tool: 'airlock test',
  signer: { fingerprint: 'f'.repeat(64) },
  images: [image('quay.io/cilium/cilium:v1.19.3'), image('registry.k8s.io/pause:3.10.1')],
  files: [
    file('https://dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubelet'),
    file('https://mirror.example/github/cilium/cilium-cli/releases/download/v0.18.9/cilium-linux-amd64.tar.gz'),
    file('https://raw.githubusercontent.com/argoproj/argo-cd/v2.14.21/manifests/install.yaml'),
    file('https://elsewhere.example/tool.tgz'),
  ],
  blobs: [],
  kubespray: {
    version: 'v2.31.0',
    kubeVersion: '1.35.4',
    archs: ['amd64'],
    // The inventory moved github_url to a proxy.
    bases: { github_url: 'mirror.example/github', dl_k8s_io_url: 'dl.k8s.io', storage_googleapis_url: 'storage.googleapis.com', get_helm_url: 'get.helm.sh' },
    urls: { argocd_install_url: 'raw.githubusercontent.com/argoproj/argo-cd/v2.14.21/manifests/install.yaml' },
  },
  layout: { 'oci-layout': { sha256: 'c'.repeat(64), size: 30 }, 'index.json': { sha256: 'd'.repeat(64), size: 100 } },
};

describe('--emit-config: kubespray/offline.yml', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('airlock-kubespray-emit-');
  });
  after(async () => removeTempDir(dir));

  it('points each base and recorded URL at its landing place, names the rest and Cilium\'s chart as manual steps', async () => {
    const out = path.join(dir, 'cfg');
    await emitConfig(out, { index: INDEX, registry: { host: 'registry.internal', prefix: 'k8s' }, layout: 'flat', registryScheme: 'https', registryInsecure: false, fileserverUrl: 'https://files.internal' });
    const text = await readFile(path.join(out, 'kubespray', 'offline.yml'), 'utf8');
    assert.match(text, /^# Kubespray offline variables written by airlock for platform 1, Kubespray v2\.31\.0, Kubernetes 1\.35\.4, amd64; see \.\.\/README\.md\.$/m);
    const vars = parse(text) as Record<string, unknown>;
    assert.equal(vars.files_repo, 'https://files.internal');
    assert.equal(vars.github_url, '{{ files_repo }}/mirror.example/github');
    assert.equal(vars.dl_k8s_io_url, '{{ files_repo }}/dl.k8s.io');
    assert.equal(vars.argocd_install_url, '{{ files_repo }}/raw.githubusercontent.com/argoproj/argo-cd/v2.14.21/manifests/install.yaml');
    assert.equal(vars.registry_host, 'registry.internal/k8s');
    const mirrors = vars.containerd_registries_mirrors as Array<{ prefix: string; server: string; mirrors: Array<{ host: string; override_path?: boolean }> }>;
    assert.deepEqual(mirrors.map((m) => [m.prefix, m.server, m.mirrors[0]?.host, m.mirrors[0]?.override_path]), [
      ['quay.io', 'https://quay.io', 'https://registry.internal/v2/k8s', true],
      ['registry.k8s.io', 'https://registry.k8s.io', 'https://registry.internal/v2/k8s', true],
    ]);
    const readme = await readFile(path.join(out, 'README.md'), 'utf8');
    assert.match(readme, /`kubespray\/offline\.yml`: Kubespray offline variables/);
    assert.match(readme, /Kubespray fetches https:\/\/elsewhere\.example\/tool\.tgz through variables airlock could not point/);
    assert.doesNotMatch(readme, /fetches [^\n]*kubelet/);
    assert.match(readme, /https:\/\/helm\.cilium\.io\/cilium-1\.19\.3\.tgz/);
    assert.match(readme, /quay\.io\/cilium\/operator-generic:v1\.19\.3/);
    assert.match(readme, /OS packages/);
    assert.match(readme, /requirements\.txt/);
  });

  it('without a file server URL, offline.yml is left out and the README says why', async () => {
    const out = path.join(dir, 'nofs');
    await emitConfig(out, { index: INDEX, registry: { host: 'registry.internal', prefix: '' }, layout: 'flat', registryScheme: 'https', registryInsecure: false });
    await assert.rejects(readFile(path.join(out, 'kubespray', 'offline.yml')), { code: 'ENOENT' });
    const readme = await readFile(path.join(out, 'README.md'), 'utf8');
    assert.match(readme, /`kubespray\/offline\.yml`\n {2}- Why: files_repo needs the file server URL/);
  });
});
