// airlock unpack into a real registry and file server, checked with skopeo,
// raw HTTP and by parsing the emitted config.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { Agent, request } from 'undici';
import { runAirlock } from './support/cli.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { ACCEPT_ALL_MANIFESTS, makeLayer } from './support/seed.js';
import { skopeoOk } from './support/skopeo.js';
import { startUpstream, TRIVY_DB_LAYER, type Upstream } from './support/upstream.js';
import { buildUpstreamBundle } from './support/fixture.js';
import { makeCA } from './support/tls.js';
import { welkinSchemaErrors, withPlaceholdersFilled } from './support/welkin-schema.js';

let up: Upstream;
let work: string;
let bundle: string;
let pub: string;

before(async () => {
  up = await startUpstream();
  ({ work, bundle, pub } = await buildUpstreamBundle(up, 'airlock-unpack-'));
});
after(async () => up?.stop());

async function makeOtherCa(): Promise<string> {
  return (await makeCA(await makeTempDir('airlock-otherca-'), 'not the registry CA')).caCert;
}

/** The flat-layout name of an upstream repository path in the target. */
const flat = (p: string) => p;

async function raw(reg: TestRegistry, method: 'GET' | 'HEAD', p: string, accept = ACCEPT_ALL_MANIFESTS, auth?: string) {
  const agent = new Agent(reg.caFile ? { connect: { ca: await readFile(reg.caFile) } } : {});
  try {
    const res = await request(`${reg.url}${p}`, { method, headers: { accept, ...(auth && { authorization: auth }) }, dispatcher: agent });
    const body = method === 'HEAD' ? (await res.body.dump(), Buffer.alloc(0)) : Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  } finally {
    await agent.close();
  }
}

describe('round trip: build, then unpack into a fresh registry and folder', () => {
  let target: TestRegistry;
  let files: string;
  let cfg: string;
  let first: { code: number | null; stdout: string; stderr: string };

  before(async () => {
    target = await startRegistry();
    files = path.join(await makeTempDir('airlock-files-'), 'srv');
    await mkdir(files);
    cfg = path.join(work, 'cfg');
    first = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', files, '--fileserver-url', 'http://fileserver.internal:8080', '--emit-config', cfg, '--json']);
  });
  after(async () => target?.stop());

  it('exits 0 and reports every item pushed', () => {
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as { items: Array<{ status: string }>; blobsPushed: number; blobsMounted: number };
    assert.equal(report.items.length, 10);
    assert.ok(report.items.every((i) => i.status === 'pushed'));
    assert.ok(report.blobsMounted >= 1, 'the layer shared across repositories was mounted, not uploaded twice');
  });

  it('holds each image and artifact at its SPEC §3 name with the upstream digest and bytes (skopeo and raw HTTP)', async () => {
    for (const k of ['ociIndex', 'docker', 'dockerList', 'pause', 'trivyDb', 'falcoRules'] as const) {
      const s = up.refs[k];
      const name = flat(s.path);
      const bytes = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${target.host}/${name}`]);
      assert.ok(bytes.equals(s.pushed.manifest), `${name}: the same bytes as upstream`);
      const [repo, tag] = name.split(':') as [string, string];
      const head = await raw(target, 'HEAD', `/v2/${repo}/manifests/${tag}`);
      assert.equal(head.status, 200);
      assert.equal(head.headers['docker-content-digest'], s.pushed.digest, `${name} digest`);
      assert.equal(head.headers['content-type'], s.pushed.mediaType);
    }
  });

  it('has every index child and every blob', async () => {
    for (const k of ['ociIndex', 'dockerList'] as const) {
      const s = up.refs[k];
      const repo = s.path.split(':')[0] ?? '';
      for (const child of s.children ?? []) {
        const m = await raw(target, 'GET', `/v2/${repo}/manifests/${child.digest}`);
        assert.equal(m.status, 200);
        assert.ok(m.body.equals(child.manifest));
        for (const d of [child.configDescriptor, ...child.layerDescriptors]) {
          assert.equal((await raw(target, 'HEAD', `/v2/${repo}/blobs/${d.digest}`)).status, 200, `${repo} has ${d.digest}`);
        }
      }
    }
    const layer = await raw(target, 'GET', `/v2/team/docker-app/blobs/${up.sharedLayer}`);
    assert.equal(`sha256:${createHash('sha256').update(layer.body).digest('hex')}`, up.sharedLayer);
  });

  it('has the digest-only image by digest and with no tag', async () => {
    const s = up.refs.digestOnly;
    const m = await raw(target, 'GET', `/v2/team/pinned/manifests/${s.pushed.digest}`);
    assert.equal(m.status, 200);
    assert.ok(m.body.equals(s.pushed.manifest));
    const tags = JSON.parse((await raw(target, 'GET', '/v2/team/pinned/tags/list', 'application/json')).body.toString('utf8')) as { tags: string[] | null };
    assert.deepEqual(tags.tags ?? [], []);
  });

  it('keeps the Trivy DB layer media type and title, pulled as Trivy would', async () => {
    const m = JSON.parse((await raw(target, 'GET', '/v2/aquasecurity/trivy-db/manifests/2')).body.toString('utf8')) as { layers: Array<{ mediaType: string; annotations: Record<string, string> }> };
    assert.equal(m.layers.length, 1);
    assert.equal(m.layers[0]?.mediaType, TRIVY_DB_LAYER);
    assert.equal(m.layers[0]?.annotations['org.opencontainers.image.title'], 'db.tar.gz');
  });

  it('puts files at their SPEC §3 paths with the right sha256, and a sha256sum -c sidecar', async () => {
    for (const f of [up.opensearch, up.driver, up.tool]) {
      const data = await readFile(path.join(files, f.landing));
      assert.equal(createHash('sha256').update(data).digest('hex'), f.sha256, f.landing);
      assert.equal(await readFile(path.join(files, `${f.landing}.sha256`), 'utf8'), `${f.sha256}  ${path.basename(f.landing)}\n`);
    }
    // The driver directory keeps a literal +, where falcoctl's %2B URL lands on a static server.
    assert.ok(existsSync(path.join(files, 'falco/driver/8.1.0+driver/x86_64/falco_debian_6.1.0-13-amd64_1.ko')));
    // No temp files left.
    const all = await readdir(files, { recursive: true });
    assert.deepEqual(all.filter((f) => f.includes('partial')), []);
  });

  it('writes a falcoctl index pointing at the private registry, without signature blocks', async () => {
    const entries = parseYaml(await readFile(path.join(files, 'falco/index.yaml'), 'utf8')) as Array<Record<string, unknown>>;
    assert.deepEqual(entries.map((e) => [e.name, e.type, e.registry, e.repository]), [['falco-rules', 'rulesfile', target.host, 'falcosecurity/rules/falco-rules']]);
    assert.ok(entries.every((e) => !('signature' in e)));
  });

  it('emits Welkin, containerd and Kubespray config that parses, passes Welkin\'s schema and names the registry and file server', async () => {
    const common = parseYaml(await readFile(path.join(cfg, 'welkin/common-config.yaml'), 'utf8')) as {
      trivy: { scanner: Record<string, unknown> & { registry: { mirror: Record<string, string> } } };
      falco: { artifact?: unknown; customIndexes?: unknown; driver: { kind: string; module?: unknown } };
      networkPolicies: { additional: string };
    };
    assert.deepEqual(welkinSchemaErrors(withPlaceholdersFilled(common)), []);
    assert.equal(common.trivy.scanner.offlineScanEnabled, true);
    assert.equal(common.trivy.scanner.dbRegistry, target.host);
    assert.equal(common.trivy.scanner.dbRepository, 'aquasecurity/trivy-db');
    assert.equal(common.trivy.scanner.javaDbRegistry, undefined, 'no Java DB in this bundle, so no Java DB keys');
    assert.equal(common.trivy.scanner.dbRepositoryInsecure, true, 'plain HTTP registry');
    assert.equal(common.trivy.scanner.registry.mirror['docker.io'], target.host);
    assert.equal(common.trivy.scanner.registry.mirror[up.registry.host], undefined, 'a host with a port is no valid ConfigMap key');
    // falcoctl cannot pull from a plain-HTTP registry, and Welkin's repoURL is miswired: both left out.
    assert.equal(common.falco.artifact, undefined);
    assert.equal(common.falco.customIndexes, undefined);
    assert.deepEqual(common.falco.driver, { kind: 'modern_ebpf' });
    const port = Number(target.host.split(':')[1]);
    assert.match(common.networkPolicies.additional, new RegExp(`port: ${port}\\b`), 'Trivy may reach the registry port');

    const sc = parseYaml(await readFile(path.join(cfg, 'welkin/sc-config.yaml'), 'utf8')) as {
      opensearch: { plugins: { installExternalObjectStoragePlugin: boolean; additionalPlugins: string[] } };
      harbor: { trivy: { extraEnvVars: Array<{ name: string; value: string }> } };
      networkPolicies: Record<string, unknown>;
    };
    assert.deepEqual(welkinSchemaErrors(withPlaceholdersFilled(sc)), []);
    assert.deepEqual(sc.opensearch.plugins, { installExternalObjectStoragePlugin: false, additionalPlugins: ['http://fileserver.internal:8080/opensearch/repository-s3-2.19.4.zip'] });
    assert.deepEqual(sc.harbor.trivy.extraEnvVars, [{ name: 'SCANNER_TRIVY_DB_REPOSITORY', value: `${target.host}/aquasecurity/trivy-db` }]);
    assert.deepEqual(sc.networkPolicies, { opensearch: { plugins: { ips: ['set-me'], ports: [8080] } }, harbor: { trivy: { ips: ['set-me'], ports: [port] } } });

    const hosts = parseToml(await readFile(path.join(cfg, 'containerd/certs.d', up.registry.host, 'hosts.toml'), 'utf8')) as { server: string; host: Record<string, { capabilities: string[] }> };
    assert.equal(hosts.server, `https://${up.registry.host}`);
    assert.deepEqual(Object.keys(hosts.host), [`http://${target.host}`]);
    assert.deepEqual(hosts.host[`http://${target.host}`]?.capabilities, ['pull', 'resolve']);
    assert.ok(existsSync(path.join(cfg, 'containerd/certs.d', target.host, 'hosts.toml')), 'containerd is told the registry itself speaks HTTP');

    const ks = parseYaml(await readFile(path.join(cfg, 'kubespray/containerd-mirrors.yaml'), 'utf8')) as { containerd_registries_mirrors: Array<{ prefix: string; mirrors: Array<{ host: string }> }>; pod_infra_image_repo: string; pod_infra_image_tag: string };
    assert.deepEqual(ks.containerd_registries_mirrors.map((m) => [m.prefix, m.mirrors[0]?.host]), [[up.registry.host, `http://${target.host}`], [target.host, `http://${target.host}`]]);
    assert.equal(ks.pod_infra_image_repo, `${target.host}/pause`, 'the pause image where it was pushed');
    assert.equal(ks.pod_infra_image_tag, '3.9');

    const readme = await readFile(path.join(cfg, 'README.md'), 'utf8');
    for (const f of ['welkin/common-config.yaml', 'welkin/sc-config.yaml', 'kubespray/containerd-mirrors.yaml']) assert.ok(readme.includes(`\`${f}\``), `README lists ${f}`);
    assert.match(readme, /## Left out, and why[\s\S]*falco\.artifact\.install\.enabled[\s\S]*FALCOCTL_DRIVER_REPOS/);
    assert.ok((JSON.parse(first.stdout) as { emitted: string[] }).emitted.some((f) => f.endsWith('README.md')), '--json lists README.md');
  });

  it('a second unpack finds everything in place and uploads nothing', async () => {
    const again = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', files, '--json']);
    assert.equal(again.code, 0, again.stderr);
    const report = JSON.parse(again.stdout) as { upToDate: boolean; bytesUploaded: number; blobsPushed: number; filesWritten: number; items: Array<{ status: string }> };
    assert.equal(report.upToDate, true);
    assert.equal(report.bytesUploaded, 0);
    assert.equal(report.blobsPushed, 0);
    assert.equal(report.filesWritten, 0);
    assert.ok(report.items.every((i) => i.status === 'present'));
  });
});

describe('unpack options', () => {
  let target: TestRegistry;
  before(async () => {
    target = await startRegistry();
  });
  after(async () => target?.stop());

  it('--layout host and a /PREFIX put the upstream host in the path', async () => {
    const files = await makeTempDir('airlock-files-');
    const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', `${target.host}/proj`, '--layout', 'host', '--files-dir', files]);
    assert.equal(r.code, 0, r.stderr);
    const hostPart = up.registry.host.replace(':', '_');
    const head = await raw(target, 'HEAD', `/v2/proj/${hostPart}/team/app/manifests/1.0`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['docker-content-digest'], up.refs.ociIndex.pushed.digest);
  });

  it('two sources landing on one name with different digests are refused before any push', async () => {
    // Build a bundle holding team/app:1.0 from two registries with different content.
    const other = await startUpstream();
    try {
      const dir = await makeTempDir('airlock-conflict-');
      const m = up.manifest().replace('  images:\n', `  images:\n    - ${other.registry.host}/team/docker-app:2.0\n`);
      // Make the other registry's team/docker-app:2.0 differ.
      await other.seeder.pushImage('team/docker-app', '2.0', { layers: [await makeLayer('different', 1000)], format: 'oci' });
      await writeFile(path.join(dir, 'm.yaml'), m);
      const b = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', path.join(dir, 'b.tar'), '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache')]);
      assert.equal(b.code, 0, b.stderr);
      const fresh = await startRegistry();
      try {
        const r = await runAirlock(['unpack', path.join(dir, 'b.tar'), '--pub', pub, '--registry', fresh.host, '--files-dir', await makeTempDir('airlock-files-')]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /both land on .*team\/docker-app:2\.0 with different digests; use --layout host/);
        const catalog = JSON.parse((await raw(fresh, 'GET', '/v2/_catalog', 'application/json')).body.toString('utf8')) as { repositories: string[] };
        assert.deepEqual(catalog.repositories, [], 'nothing was pushed');
      } finally {
        await fresh.stop();
      }
    } finally {
      await other.stop();
    }
  });

  it('a symbolic link inside --files-dir cannot lead writes outside it', async () => {
    const files = await makeTempDir('airlock-files-');
    const elsewhere = await makeTempDir('airlock-elsewhere-');
    await symlink(elsewhere, path.join(files, 'falco'));
    const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', `${target.host}/symlink`, '--files-dir', files]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /file falco\/.* would be written under .*, outside .* \(a symbolic link in the folder\?\); refusing/);
    assert.deepEqual(await readdir(elsewhere), [], 'nothing was created through the link');
  });

  it('usage errors exit 2 with what to write', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['unpack', bundle, '--registry', target.host, '--files-dir', work], /--pub PUB/],
      [['unpack', bundle, '--pub', pub, '--files-dir', work], /--registry HOST/],
      [['unpack', bundle, '--pub', pub, '--registry', target.host], /exactly one of --files-dir DIR and --files-url URL/],
      [['unpack', bundle, '--pub', pub, '--registry', `http://${target.host}`, '--files-dir', work], /without a scheme/],
      [['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', work, '--layout', 'tree'], /write flat or host/],
      [['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', path.join(work, 'nope')], /no such folder/],
    ];
    for (const [args, re] of cases) {
      const r = await runAirlock(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, re);
    }
  });
});

describe('a target with basic auth over TLS, and a WebDAV file server', () => {
  let target: TestRegistry;
  let web: TestFileServer;
  before(async () => {
    target = await startRegistry({ basicAuth: { username: 'pusher', password: 'hunter2' } });
    web = await startFileServer();
  });
  after(async () => {
    await target?.stop();
    await web?.stop();
  });

  it('pushes with --ca-file, --username and --password-stdin, and PUTs files to --files-url', async () => {
    const cfg = path.join(await makeTempDir('airlock-cfg-'), 'out');
    const r = await runAirlock(
      ['unpack', bundle, '--pub', pub, '--registry', `${target.host}/welkin`, '--ca-file', target.caFile ?? '', '--username', 'pusher', '--password-stdin', '--files-url', `${web.url}/airgap`, '--emit-config', cfg],
      'hunter2\n',
    );
    assert.equal(r.code, 0, r.stderr);
    const auth = `Basic ${Buffer.from('pusher:hunter2').toString('base64')}`;
    const head = await raw(target, 'HEAD', '/v2/welkin/team/app/manifests/1.0', ACCEPT_ALL_MANIFESTS, auth);
    assert.equal(head.headers['docker-content-digest'], up.refs.ociIndex.pushed.digest);
    for (const f of [up.opensearch, up.driver, up.tool]) {
      const data = await readFile(path.join(web.root, 'airgap', f.landing));
      assert.equal(createHash('sha256').update(data).digest('hex'), f.sha256, `${f.landing} on the WebDAV server`);
    }
    assert.ok(existsSync(path.join(web.root, 'airgap/falco/index.yaml')));
    const common = parseYaml(await readFile(path.join(cfg, 'welkin/common-config.yaml'), 'utf8')) as { trivy: { scanner: Record<string, unknown> }; falco: { customIndexes?: unknown } };
    assert.deepEqual(welkinSchemaErrors(withPlaceholdersFilled(common)), []);
    assert.equal(common.trivy.scanner.dbRepositoryInsecure, false, 'HTTPS with a CA is not insecure');
    assert.equal(common.trivy.scanner.dbRepository, 'welkin/aquasecurity/trivy-db');
    assert.equal(common.falco.customIndexes, undefined, 'falcoctl has no way to trust a private CA');
    const sc = parseYaml(await readFile(path.join(cfg, 'welkin/sc-config.yaml'), 'utf8')) as { opensearch: { plugins: { additionalPlugins: string[] } } };
    assert.deepEqual(sc.opensearch.plugins.additionalPlugins, [`${web.url}/airgap/opensearch/repository-s3-2.19.4.zip`], '--fileserver-url defaults to --files-url');
    const hosts = parseToml(await readFile(path.join(cfg, 'containerd/certs.d', up.registry.host, 'hosts.toml'), 'utf8')) as { host: Record<string, { ca?: string; override_path?: boolean }> };
    const entry = hosts.host[`https://${target.host}/v2/welkin`];
    assert.ok(entry, 'the mirror URL carries the project prefix');
    assert.equal(entry.override_path, true);
    assert.equal(entry.ca, '/etc/containerd/airlock-registry-ca.crt', 'a path on the node');
    assert.equal(await readFile(path.join(cfg, 'containerd/airlock-registry-ca.crt'), 'utf8'), await readFile(target.caFile ?? '', 'utf8'), 'the CA to put there');
    assert.match(await readFile(path.join(cfg, 'README.md'), 'utf8'), /no setting for a CA/);

    // The file server's copy is served back with the right bytes, + in the path included.
    const agent = new Agent();
    const res = await request(`${web.url}/airgap/falco/driver/8.1.0%2Bdriver/x86_64/falco_debian_6.1.0-13-amd64_1.ko`, { dispatcher: agent });
    const body = Buffer.from(await res.body.arrayBuffer());
    await agent.close();
    assert.equal(createHash('sha256').update(body).digest('hex'), up.driver.sha256);
  });

  it('--insecure speaks HTTPS without checking the certificate; without it or a CA, the certificate is refused', async () => {
    const args = ['unpack', bundle, '--pub', pub, '--registry', `${target.host}/insecure`, '--username', 'pusher', '--password-stdin', '--files-dir', await makeTempDir('airlock-files-')];
    const refused = await runAirlock([...args, '--ca-file', up.registry.caFile ?? (await makeOtherCa())], 'hunter2');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /certificate/i);
    const ok = await runAirlock([...args, '--insecure'], 'hunter2');
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('wrong credentials fail naming the registry', async () => {
    const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', target.host, '--ca-file', target.caFile ?? '', '--username', 'pusher', '--password-stdin', '--files-dir', await makeTempDir('airlock-files-')], 'wrong');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refused the credentials/);
  });
});
