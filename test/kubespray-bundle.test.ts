// The Kubespray part end to end: a copy of Kubespray's real tables whose hosts
// point at a test file server (checksums rewritten to the bytes it serves),
// built into a bundle and unpacked; every file lands at its files_repo path,
// and the emitted kubespray/offline.yml, evaluated as Kubespray would form its
// URLs, finds every file there.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, Seeder } from './support/seed.js';
import { KUBESPRAY_SKIP, kubesprayList, kubesprayTag, type ListedJson } from './support/kubespray.js';
import { runAirlock } from './support/cli.js';
import { loadTables, readVarsFile, Scope } from '../src/presets/kubespray/tables.js';
import { enabledDownloads, facts } from '../src/presets/kubespray/downloads.js';

const DOWNLOAD_YML = 'roles/kubespray_defaults/defaults/main/download.yml';
const CHECKSUMS_YML = 'roles/kubespray_defaults/vars/main/checksums.yml';
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('Kubespray part: build, unpack, offline.yml', { skip: KUBESPRAY_SKIP }, () => {
  let dir: string;
  let upstream: TestFileServer;
  let registry: TestRegistry;
  let images: TestRegistry;
  before(async () => {
    dir = await makeTempDir('airlock-kubespray-bundle-');
    upstream = await startFileServer({ root: path.join(dir, 'upstream') });
    registry = await startRegistry();
    images = await startRegistry();
  });
  after(async () => {
    await upstream?.stop();
    await registry?.stop();
    await images?.stop();
    await removeTempDir(dir);
  });

  it('calico, containerd, amd64: every file at its files_repo path with Kubespray\'s sha256, and offline.yml resolves every URL to it', async () => {
    // The tables, with github.com and dl.k8s.io served by the test server under their host names.
    const tables = path.join(dir, 'kubespray');
    await cp(kubesprayTag('v2.31.0'), tables, { recursive: true });
    const host = new URL(upstream.url).host;
    await chmod(path.join(tables, DOWNLOAD_YML), 0o644);
    const download = await readFile(path.join(tables, DOWNLOAD_YML), 'utf8');
    const moved = download.replace(/^github_url: https:\/\/github\.com$/m, `github_url: ${upstream.url}/github.com`).replace(/^dl_k8s_io_url: https:\/\/dl\.k8s\.io$/m, `dl_k8s_io_url: ${upstream.url}/dl.k8s.io`);
    assert.notEqual(moved, download);
    await writeFile(path.join(tables, DOWNLOAD_YML), moved);
    // The inventory: Kubespray's defaults (calico, containerd, etcd on the host), its image registries moved to a test registry.
    const repos = ['kube_image_repo', 'quay_image_repo', 'docker_image_repo', 'github_image_repo', 'gcr_image_repo'].map((v) => `${v}: "${images.host}"`).join('\n');
    await writeFile(path.join(dir, 'inventory.yml'), `kube_network_plugin: calico\ncontainer_manager: containerd\n${repos}\n`);
    const ks = { version: 'v2.31.0', source: 'kubespray', archs: ['amd64'], vars: ['inventory.yml'] };
    const before = await kubesprayList(dir, 'before', ks);
    assert.equal(before.code, 0, before.stderr);
    const planned = (before.json as ListedJson).items.filter((i) => i.kind === 'file');
    assert.equal(planned.length, 11, planned.map((i) => i.url).join('\n'));
    const refs = (before.json as ListedJson).items.filter((i) => i.kind === 'image').map((i) => i.ref as string);
    assert.equal(refs.length, 12, refs.join('\n'));
    const seeder = new Seeder({ url: images.url });
    for (const ref of refs) {
      const m = new RegExp(`^${images.host.replace(/\./g, '\\.')}/(.+):([^:]+)$`).exec(ref);
      assert.ok(m, `${ref} is on the test registry`);
      await seeder.pushImage(m[1] as string, m[2], { layers: [await makeLayer(ref, 512)], format: 'oci' });
    }
    await seeder.close();
    // Serve made-up bytes at each URL and write their sha256 over Kubespray's in checksums.yml.
    await chmod(path.join(tables, CHECKSUMS_YML), 0o644);
    let checksums = await readFile(path.join(tables, CHECKSUMS_YML), 'utf8');
    const served = new Map<string, string>();
    for (const item of planned) {
      const body = randomBytes(1000 + served.size);
      const u = new URL(item.url as string);
      await mkdir(path.dirname(path.join(upstream.root, u.pathname)), { recursive: true });
      await writeFile(path.join(upstream.root, u.pathname), body);
      const old = (item.checksum as { sha256: string }).sha256;
      assert.equal(checksums.split(`sha256:${old}`).length, 2, `one row holds ${old}`);
      checksums = checksums.replace(`sha256:${old}`, `sha256:${sha256(body)}`);
      served.set(item.url as string, sha256(body));
    }
    await writeFile(path.join(tables, CHECKSUMS_YML), checksums);

    const manifest = path.join(dir, 'before.yaml');
    assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
    const bundle = path.join(dir, 'ks.tar');
    const built = await runAirlock(['build', manifest, '-o', bundle, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'cache')]);
    assert.equal(built.code, 0, built.stderr);

    const inspected = await runAirlock(['inspect', bundle, '--json']);
    assert.equal(inspected.code, 0, inspected.stderr);
    const index = JSON.parse(inspected.stdout) as { files: Array<{ path: string; role: string }>; kubespray: unknown };
    assert.equal(index.files.filter((f) => f.role === 'kubespray').length, 11);
    assert.deepEqual(index.kubespray, { version: 'v2.31.0', archs: ['amd64'], bases: { github_url: `${host}/github.com`, dl_k8s_io_url: `${host}/dl.k8s.io`, storage_googleapis_url: 'storage.googleapis.com', get_helm_url: 'get.helm.sh' }, urls: {} });
    const inspectedText = await runAirlock(['inspect', bundle]);
    assert.match(inspectedText.stdout, /^kubespray v2\.31\.0, amd64: 11 files \(role kubespray\)/m);

    const files = path.join(dir, 'files');
    const cfg = path.join(dir, 'cfg');
    const fileserver = 'http://files.internal:8080';
    await mkdir(files);
    const unpacked = await runAirlock(['unpack', bundle, '--pub', path.join(dir, 'k.pub'), '--registry', registry.host, '--files-dir', files, '--fileserver-url', fileserver, '--emit-config', cfg]);
    assert.equal(unpacked.code, 0, unpacked.stderr);
    const target = new Seeder({ url: registry.url });
    for (const ref of refs) {
      const repoTag = ref.slice(images.host.length + 1);
      const colon = repoTag.lastIndexOf(':');
      const got = await target.getManifest(repoTag.slice(0, colon), repoTag.slice(colon + 1));
      assert.equal(got.status, 200, `${ref} is in the registry inside`);
    }
    await target.close();
    for (const item of planned) {
      const landed = path.join(files, ...(item.path as string).split('/'));
      assert.equal(sha256(await readFile(landed)), served.get(item.url as string), `${item.path}`);
      assert.ok((item.path as string).startsWith(`${host}/`), `${item.path} is below the original host`);
    }

    const offlineText = await readFile(path.join(cfg, 'kubespray', 'offline.yml'), 'utf8');
    const offline = parse(offlineText) as Record<string, unknown>;
    assert.equal(offline.files_repo, fileserver);
    assert.equal(offline.github_url, `{{ files_repo }}/${host}/github.com`);
    assert.equal(offline.dl_k8s_io_url, `{{ files_repo }}/${host}/dl.k8s.io`);
    assert.equal(offline.registry_host, registry.host);
    const mirrors = offline.containerd_registries_mirrors as Array<{ prefix: string; server: string; mirrors: Array<{ host: string }> }>;
    // Every source registry, with its server; and (plain HTTP) the registry inside itself.
    assert.deepEqual(mirrors.map((m) => [m.prefix, m.server, m.mirrors[0]?.host]), [
      [images.host, `https://${images.host}`, registry.url],
      [registry.host, registry.url, registry.url],
    ]);
    const readme = await readFile(path.join(cfg, 'README.md'), 'utf8');
    assert.match(readme, /kubespray\/offline\.yml/);
    assert.match(readme, /OS packages/);
    assert.match(readme, /requirements\.txt/);

    // Kubespray's view: its tables, the inventory, and offline.yml as group_vars; every download URL it forms is a file in the folder with the checksum it expects.
    await writeFile(path.join(dir, 'offline.yml'), offlineText);
    const t = await loadTables({
      source: tables,
      inventory: [{ abs: path.join(dir, 'inventory.yml'), display: 'inventory.yml' }, { abs: path.join(dir, 'offline.yml'), display: 'offline.yml' }],
      display: (r) => r,
    });
    assert.ok((await readVarsFile(path.join(dir, 'offline.yml'), 'offline.yml')).has('files_repo'));
    const kubespray = enabledDownloads(new Scope(t, facts('amd64'), {}));
    assert.equal(kubespray.files.length, 11);
    for (const f of kubespray.files) {
      assert.ok(f.url.startsWith(`${fileserver}/`), f.url);
      const local = path.join(files, ...decodeURIComponent(f.url.slice(fileserver.length + 1)).split('/'));
      assert.equal(sha256(await readFile(local)), f.checksum?.hex, `${f.name}: ${f.url}`);
    }
  });
});
