// Kubespray's own tables, evaluated by airlock, against what Kubespray's own
// contrib/offline/generate_list.sh printed for the same tag, arch and
// kube_version (ground truth), through `airlock build --list --json`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { KUBESPRAY_SKIP, kubesprayList, kubesprayTag, type ListedJson } from './support/kubespray.js';
import { runAirlock } from './support/cli.js';

const HERE = path.join(import.meta.dirname, 'fixtures', 'kubespray');

/**
 * generate_list.sh lists every component whether enabled or not; airlock lists
 * what an inventory enables. The union over these inventories enables every
 * component once (network plugins and container managers exclude each other).
 */
const INVENTORIES: Record<string, string> = {
  everything: `kube_network_plugin: calico
cilium_deploy_additionally: true
cilium_enable_hubble: true
kube_network_plugin_multus: true
typha_enabled: true
calico_apiserver_enabled: true
container_manager: containerd
etcd_deployment_type: host
crun_enabled: true
youki_enabled: true
gvisor_enabled: true
kata_containers_enabled: true
helm_enabled: true
kube_vip_enabled: true
registry_enabled: true
metrics_server_enabled: true
local_volume_provisioner_enabled: true
local_path_provisioner_enabled: true
ingress_alb_enabled: true
cert_manager_enabled: true
cinder_csi_enabled: true
aws_ebs_csi_enabled: true
csi_snapshot_controller_enabled: true
metallb_enabled: true
argocd_enabled: true
gateway_api_enabled: true
prometheus_operator_crds_enabled: true
`,
  flannel: 'kube_network_plugin: flannel\netcd_deployment_type: docker\nloadbalancer_apiserver_type: haproxy\n',
  kubeovn: 'kube_network_plugin: kube-ovn\ncontainer_manager: crio\n',
  kuberouter: 'kube_network_plugin: kube-router\ncontainer_manager: docker\n',
  // v2.28 still has these (weave, the dashboard, netchecker and ingress-nginx left in v2.29).
  weave: 'kube_network_plugin: weave\ndashboard_enabled: true\ndeploy_netchecker: true\ningress_nginx_enabled: true\n',
};

interface Case {
  tag: string;
  arch: string;
  kubeVersion?: string;
  /** The script's lists: in the shared fixtures (shared) or made here (test/fixtures/kubespray). */
  lists: { files: string; images: string; shared: boolean };
  /** URLs airlock carries that the script misses, each with the reason. */
  onlyOurs: Record<string, string>;
  /** URLs or images the script prints that Kubespray never downloads for that arch, each with the reason. */
  onlyScript: Record<string, string>;
}

const ARGOCD = 'the script greps "download_url:" lines, and argocd is argocd_install_url (a download of the argocd_install entry)';

const CASES: Case[] = [
  {
    tag: 'v2.31.0',
    arch: 'amd64',
    lists: { files: 'v2.31.0/generate_list.default-amd64.files.list', images: 'v2.31.0/generate_list.default-amd64.images.list', shared: true },
    onlyOurs: { 'https://raw.githubusercontent.com/argoproj/argo-cd/v2.14.21/manifests/install.yaml': ARGOCD },
    onlyScript: {},
  },
  {
    tag: 'v2.28.1',
    arch: 'amd64',
    kubeVersion: '1.31.5',
    lists: { files: 'v2.28.1/generate_list.kube-1.31.5-amd64.files.list', images: 'v2.28.1/generate_list.kube-1.31.5-amd64.images.list', shared: true },
    onlyOurs: { 'https://raw.githubusercontent.com/argoproj/argo-cd/v2.14.5/manifests/install.yaml': ARGOCD },
    onlyScript: {},
  },
  {
    tag: 'v2.31.0',
    arch: 'arm64',
    lists: { files: 'v2.31.0-default-arm64.files.list', images: 'v2.31.0-default-arm64.images.list', shared: false },
    onlyOurs: { 'https://raw.githubusercontent.com/argoproj/argo-cd/v2.14.21/manifests/install.yaml': ARGOCD },
    onlyScript: {},
  },
  {
    tag: 'v2.31.0',
    arch: 'amd64',
    kubeVersion: '1.33.7',
    lists: { files: 'v2.31.0-kube-1.33.7-amd64.files.list', images: 'v2.31.0-kube-1.33.7-amd64.images.list', shared: false },
    onlyOurs: { 'https://raw.githubusercontent.com/argoproj/argo-cd/v2.14.21/manifests/install.yaml': ARGOCD },
    onlyScript: {},
  },
  {
    tag: 'v2.28.1',
    arch: 'arm64',
    kubeVersion: '1.30.9',
    lists: { files: 'v2.28.1-kube-1.30.9-arm64.files.list', images: 'v2.28.1-kube-1.30.9-arm64.images.list', shared: false },
    onlyOurs: { 'https://raw.githubusercontent.com/argoproj/argo-cd/v2.14.5/manifests/install.yaml': ARGOCD },
    onlyScript: {},
  },
];

const lines = (text: string) => text.split('\n').map((l) => l.trim()).filter(Boolean);
const minus = (a: Set<string>, b: Set<string>) => [...a].filter((x) => !b.has(x)).sort();

describe('Kubespray: airlock build --list against generate_list.sh (ground truth)', { skip: KUBESPRAY_SKIP }, () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('airlock-kubespray-list-');
    for (const [name, text] of Object.entries(INVENTORIES)) await writeFile(path.join(dir, `${name}.yml`), text);
  });
  after(async () => removeTempDir(dir));

  for (const c of CASES) {
    it(`${c.tag} ${c.arch} kube_version ${c.kubeVersion ?? '(the tag\'s default)'}: URLs and images equal the script's, except its known defects`, async () => {
      const root = c.lists.shared ? path.dirname(kubesprayTag(c.tag)) : HERE;
      const scriptFiles = new Set(lines(await readFile(path.join(root, c.lists.files), 'utf8')));
      const scriptImages = new Set(lines(await readFile(path.join(root, c.lists.images), 'utf8')));
      const files = new Set<string>();
      const images = new Set<string>();
      for (const inv of Object.keys(INVENTORIES)) {
        const r = await kubesprayList(dir, `${c.tag}-${c.arch}-${inv}`, {
          version: c.tag,
          source: kubesprayTag(c.tag),
          archs: [c.arch],
          ...(c.kubeVersion && { kubeVersion: c.kubeVersion }),
          vars: [`${inv}.yml`],
        });
        assert.equal(r.code, 0, `${inv}: ${r.stderr}`);
        for (const item of (r.json as ListedJson).items) {
          if (item.kind === 'file') files.add(item.url as string);
          else images.add(item.ref as string);
        }
      }
      const known = (m: Record<string, string>) => Object.keys(m).sort();
      assert.deepEqual(minus(files, scriptFiles), known(c.onlyOurs), 'files airlock carries that the script does not list');
      assert.deepEqual(minus(scriptFiles, files), known(c.onlyScript).filter((k) => k.includes('://')), 'files the script lists that airlock does not carry');
      assert.deepEqual(minus(scriptImages, images), known(c.onlyScript).filter((k) => !k.includes('://')), 'images the script lists that airlock does not carry');
      assert.deepEqual(minus(images, scriptImages), [], 'images airlock carries that the script does not list');
    });
  }
});

describe('Kubespray: the inventory chooses, archs multiply, checksums are Kubespray\'s', { skip: KUBESPRAY_SKIP }, () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('airlock-kubespray-choices-');
  });
  after(async () => removeTempDir(dir));

  it('the defaults (calico, containerd, etcd on the host) carry exactly what Kubespray downloads for them, with its checksums', async () => {
    const r = await kubesprayList(dir, 'defaults', { version: 'v2.31.0', source: kubesprayTag('v2.31.0') });
    assert.equal(r.code, 0, r.stderr);
    const json = r.json as ListedJson;
    assert.deepEqual(json.kubespray, {
      version: 'v2.31.0',
      archs: ['amd64'],
      bases: { github_url: 'github.com', dl_k8s_io_url: 'dl.k8s.io', storage_googleapis_url: 'storage.googleapis.com', get_helm_url: 'get.helm.sh' },
      urls: {},
    });
    const files = json.items.filter((i) => i.kind === 'file');
    assert.deepEqual(files.map((f) => f.url?.split('/').pop()).sort(), [
      'calicoctl-linux-amd64', 'cni-plugins-linux-amd64-v1.9.1.tgz', 'containerd-2.2.3-linux-amd64.tar.gz', 'crds.yaml', 'crictl-v1.35.0-linux-amd64.tar.gz',
      'etcd-v3.6.10-linux-amd64.tar.gz', 'kubeadm', 'kubectl', 'kubelet', 'nerdctl-2.2.2-linux-amd64.tar.gz', 'runc.amd64',
    ]);
    const kubelet = files.find((f) => f.url === 'https://dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubelet');
    // checksums.yml: kubelet_checksums.amd64["1.35.4"]
    const table = await readFile(path.join(kubesprayTag('v2.31.0'), 'roles/kubespray_defaults/vars/main/checksums.yml'), 'utf8');
    const row = /kubelet_checksums:\n(?:.*\n)*?\s+amd64:\n(?:.*\n)*?\s+1\.35\.4: sha256:([0-9a-f]{64})/.exec(table);
    assert.deepEqual(kubelet, { kind: 'file', url: kubelet?.url, path: 'dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubelet', checksum: { sha256: row?.[1] }, role: 'kubespray', from: kubelet?.from });
    const images = json.items.filter((i) => i.kind === 'image').map((i) => i.ref);
    assert.ok(images.includes('quay.io/calico/node:v3.31.5') && !images.some((i) => i?.includes('cilium')), images.join(' '));
    assert.ok(!images.includes('quay.io/coreos/etcd:v3.6.10'), 'etcd on the host is a file, not an image');
  });

  it('kube_network_plugin: cilium and etcd_deployment_type: kubeadm drop calico and the etcd file, add cilium and the etcd image; vars files later in the list win', async () => {
    await writeFile(path.join(dir, 'a.yml'), 'kube_network_plugin: flannel\netcd_deployment_type: kubeadm\n');
    await writeFile(path.join(dir, 'b.yml'), 'kube_network_plugin: cilium\n');
    const r = await kubesprayList(dir, 'cilium', { version: 'v2.31.0', source: kubesprayTag('v2.31.0'), vars: ['a.yml', 'b.yml'] });
    assert.equal(r.code, 0, r.stderr);
    const items = (r.json as ListedJson).items;
    const urls = items.filter((i) => i.kind === 'file').map((i) => i.url as string);
    const refs = items.filter((i) => i.kind === 'image').map((i) => i.ref as string);
    assert.ok(urls.some((u) => u.includes('cilium-cli')) && !urls.some((u) => u.includes('calico') || u.includes('etcd-io')), urls.join(' '));
    assert.ok(refs.includes('quay.io/cilium/cilium:v1.19.3') && refs.includes('quay.io/coreos/etcd:v3.6.10') && !refs.some((i) => i.includes('calico') || i.includes('flannel')), refs.join(' '));
  });

  it('archs multiply the arch-dependent files; an arch-free file and the images come once', async () => {
    const r = await kubesprayList(dir, 'archs', { version: 'v2.31.0', source: kubesprayTag('v2.31.0'), archs: ['amd64', 'arm64'] });
    assert.equal(r.code, 0, r.stderr);
    const items = (r.json as ListedJson).items;
    const paths = items.filter((i) => i.kind === 'file').map((i) => i.path as string);
    assert.equal(paths.length, 21, paths.join('\n'));
    assert.ok(paths.includes('dl.k8s.io/release/v1.35.4/bin/linux/arm64/kubelet') && paths.includes('dl.k8s.io/release/v1.35.4/bin/linux/amd64/kubelet'));
    assert.equal(paths.filter((p) => p.endsWith('/crds.yaml')).length, 1);
    assert.equal(items.filter((i) => i.kind === 'image').length, 12);
  });

  it('a kube_version Kubespray has no checksum for is refused (exit 2, naming the file) unless spec.files lists it with one', async () => {
    const ks = { version: 'v2.31.0', source: kubesprayTag('v2.31.0'), kubeVersion: '1.35.99' };
    const refused = await kubesprayList(dir, 'nosum', ks);
    assert.equal(refused.code, 2, refused.stderr);
    for (const bin of ['kubelet', 'kubectl', 'kubeadm']) {
      assert.match(refused.stderr, new RegExp(`https://dl\\.k8s\\.io/release/v1\\.35\\.99/bin/linux/amd64/${bin} \\(downloads\\.${bin}, amd64\\): Kubespray gives no checksum`));
    }
    const listed = ['kubelet', 'kubectl', 'kubeadm']
      .map((bin, n) => `    - {url: "https://dl.k8s.io/release/v1.35.99/bin/linux/amd64/${bin}", path: dl.k8s.io/release/v1.35.99/bin/linux/amd64/${bin}, sha256: ${'abc'[n]?.repeat(64)}}`)
      .join('\n');
    const ok = await kubesprayList(dir, 'listed', ks, `  files:\n${listed}`);
    assert.equal(ok.code, 0, ok.stderr);
    const kubelet = (ok.json as ListedJson).items.find((i) => i.url?.endsWith('/v1.35.99/bin/linux/amd64/kubelet'));
    assert.deepEqual(kubelet?.checksum, { sha256: 'a'.repeat(64) });
    assert.equal(kubelet?.role, 'file');
  });
});

describe('build --list touches no network', () => {
  it('lists images, artifacts, files and presets of a manifest whose every host is unreachable, and exits 0', async () => {
    const dir = await makeTempDir('airlock-list-');
    try {
      const manifest = path.join(dir, 'm.yaml');
      await writeFile(
        manifest,
        [
          'apiVersion: airlock/v1',
          'kind: Bundle',
          'metadata: {name: offline}',
          'spec:',
          '  images: [127.0.0.1:1/app:1.0, "nginx"]',
          '  artifacts: [127.0.0.1:1/rules:2]',
          '  files:',
          `    - {url: "http://127.0.0.1:1/tool.tgz", sha256: ${'a'.repeat(64)}}`,
          '  opensearch: {version: "2.19.4", plugins: [repository-s3], baseUrl: "http://127.0.0.1:1/plugins"}',
          '',
        ].join('\n'),
      );
      const r = await runAirlock(['build', manifest, '--list', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const items = (JSON.parse(r.stdout) as ListedJson).items;
      assert.deepEqual(
        items.map((i) => [i.kind, i.ref ?? i.url, i.path, i.checksum]),
        [
          ['image', '127.0.0.1:1/app:1.0', undefined, undefined],
          ['image', 'docker.io/library/nginx:latest', undefined, undefined],
          ['artifact', '127.0.0.1:1/rules:2', undefined, undefined],
          ['file', 'http://127.0.0.1:1/tool.tgz', 'tool.tgz', { sha256: 'a'.repeat(64) }],
          ['file', 'http://127.0.0.1:1/plugins/repository-s3/2.19.4/repository-s3-2.19.4.zip', 'opensearch/repository-s3-2.19.4.zip', { checksumUrl: 'http://127.0.0.1:1/plugins/repository-s3/2.19.4/repository-s3-2.19.4.zip.sha512' }],
        ],
      );
      assert.deepEqual(items[1]?.written, ['nginx'], 'as written');
      assert.equal(items[0]?.written, undefined, 'written as normalized');
      const text = await runAirlock(['build', manifest, '--list']);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^image {5}docker\.io\/library\/nginx:latest \(written nginx\)$/m);
      assert.match(text.stdout, /^file {6}http:\/\/127\.0\.0\.1:1\/tool\.tgz -> files\/tool\.tgz sha256:a{64}$/m);
    } finally {
      await removeTempDir(dir);
    }
  });
});

describe('spec.kubespray is checked like the rest of the manifest', () => {
  it('every problem at once, at its line, with a hint; a missing checkout or vars file names the file', async () => {
    const dir = await makeTempDir('airlock-kubespray-schema-');
    try {
      const bad = await kubesprayList(dir, 'bad', { version: 'v2.31.0 rc', source: 'nowhere', archs: ['x86_64'] }, '    inventory: [x.yml]');
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /bad\.yaml:6:\d+: spec\.kubespray\.version: .*write the Kubespray release as its tag or git describe prints it/);
      assert.match(bad.stderr, /bad\.yaml:8:\d+: spec\.kubespray\.archs\[0\]: .*write amd64, arm64, arm or ppc64le/);
      assert.match(bad.stderr, /spec\.kubespray\.inventory: unknown key "inventory"/);
      const missing = await kubesprayList(dir, 'missing', { version: 'v2.31.0', source: 'nowhere', vars: ['none.yml'] });
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, /nowhere\/roles\/kubespray_defaults\/defaults\/main\/download\.yml:1:1: spec\.kubespray: cannot read it: ENOENT; spec\.kubespray\.source must be a Kubespray checkout/);
    } finally {
      await removeTempDir(dir);
    }
  });
});
