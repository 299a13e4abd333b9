// --emit-config, unit-tested on emitConfig() with a hand-made bundle index, for three
// targets: plain HTTP on 127.0.0.1:PORT with a file server on 8080; HTTPS with a private CA
// and a /PREFIX; --layout host on HTTPS with a public certificate. Every Welkin file is
// checked against Welkin's config schema (test/fixtures/welkin-config-schema.0fc99b2.yaml,
// from elastisys/compliantkubernetes-apps config/schemas/config.yaml @ 0fc99b2) and against
// what its consumer can use.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { BundleFile, BundleImage, BundleIndex } from '../src/bundle/format.js';
import type { EmitContext } from '../src/emit/context.js';
import { emitConfig } from '../src/emit/write.js';
import { makeTempDir } from './support/proc.js';
import { goUri, ipsLists, welkinSchemaErrors, withPlaceholdersFilled } from './support/welkin-schema.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const image = (ref: string, role?: BundleImage['role']): BundleImage => ({
  ref,
  digest: D('a'),
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  kind: role ? 'artifact' : 'image',
  ...(role && { role }),
  platforms: [],
  size: 1,
});
const file = (p: string, role: BundleFile['role']): BundleFile => ({ path: p, sha256: 'b'.repeat(64), size: 1, source: `https://example.org/${p}`, role, checksum: 'manifest' });

/** Everything --emit-config has a rule for. */
const INDEX: BundleIndex = {
  schemaVersion: 1,
  name: 'welkin-sc',
  version: '2026.01',
  created: '2026-01-27T00:00:00Z',
  tool: 'airlock test',
  signer: { fingerprint: 'f'.repeat(64) },
  images: [
    image('docker.io/library/nginx:1.27'),
    image('registry.k8s.io/pause:3.10'),
    image('127.0.0.1:5999/team/app:1.0'),
    image('xpkg.crossplane.io/crossplane-contrib/provider-helm:v1.0.0'),
    image('ghcr.io/aquasecurity/trivy-db:2', 'trivy-db'),
    image('ghcr.io/aquasecurity/trivy-java-db:1', 'trivy-java-db'),
    image('ghcr.io/falcosecurity/rules/falco-rules:4.0.0', 'falco-rules'),
    image('ghcr.io/falcosecurity/plugins/plugin/container:0.3.1', 'falco-plugin'),
  ],
  files: [file('opensearch/repository-s3-2.19.4.zip', 'opensearch-plugin'), file('falco/driver/8.1.0+driver/x86_64/falco_debian_6.1.0-13-amd64_1.ko', 'falco-driver')],
  blobs: [],
  layout: { 'oci-layout': { sha256: 'c'.repeat(64), size: 30 }, 'index.json': { sha256: 'd'.repeat(64), size: 100 } },
};

const WELKIN_MIRRORED = ['docker.io', 'gcr.io', 'ghcr.io', 'index.docker.io', 'quay.io', 'registry.k8s.io'];
const NODE_CA = '/etc/containerd/airlock-registry-ca.crt';
/** kubespray roles/container-engine/containerd/templates/hosts.toml.j2 @ 46dbdd399 (v2.31.0+): what a mirror entry may hold. */
const KUBESPRAY_MIRROR_KEYS = new Set(['host', 'capabilities', 'skip_verify', 'override_path', 'ca', 'client', 'header']);

type Scanner = Record<string, unknown> & { registry: { mirror: Record<string, string> } };
interface Common {
  trivy: { scanner: Scanner };
  falco: { artifact?: { install: { enabled: boolean } }; customIndexes?: Array<{ name: string; url: string }>; driver?: { kind: string; module?: unknown } };
  networkPolicies?: { additional?: string; falco?: { plugins: { ips: string[]; ports: number[] } } };
}
interface Sc {
  opensearch: { plugins: { installExternalObjectStoragePlugin: boolean; additionalPlugins: string[] } };
  harbor: { trivy: { extraEnvVars: Array<{ name: string; value: string }> } };
  networkPolicies?: { opensearch?: { plugins: { ips: string[]; ports: number[] } }; harbor?: { trivy: { ips: string[]; ports: number[] } } };
}
interface KubesprayMirror {
  host: string;
  capabilities: string[];
  skip_verify: boolean;
  override_path?: boolean;
  ca?: string[];
}
interface Kubespray {
  containerd_registries_mirrors: Array<{ prefix: string; server: string; mirrors: KubesprayMirror[] }>;
  pod_infra_image_repo?: string;
  pod_infra_image_tag?: string;
}
type HostsToml = { server: string; host: Record<string, { capabilities: string[]; override_path?: boolean; skip_verify?: boolean; ca?: string }> };

interface Emitted {
  dir: string;
  files: string[];
  common: Common;
  sc: Sc;
  kubespray: Kubespray;
  hosts: Map<string, HostsToml>;
  readme: string;
  /** What emitConfig asked to print on stderr. */
  stderr: string[];
}

async function emit(ctx: Omit<EmitContext, 'index'>, index: BundleIndex = INDEX): Promise<Emitted> {
  const dir = await makeTempDir('airlock-emit-');
  const stderr: string[] = [];
  const written = await emitConfig(dir, { index, ...ctx }, (l) => stderr.push(l));
  const files = written.map((f) => path.relative(dir, f).split(path.sep).join('/')).sort();
  const all = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  assert.deepEqual(all.sort(), files, 'emitConfig returns every file it wrote, and nothing else is left (no partial files)');
  const read = (rel: string) => readFile(path.join(dir, rel), 'utf8');
  const hosts = new Map<string, HostsToml>();
  for (const f of files) {
    const m = /^containerd\/certs\.d\/(.+)\/hosts\.toml$/.exec(f);
    // smol-toml makes null-prototype objects; plain ones compare with deepEqual.
    if (m?.[1]) hosts.set(m[1], JSON.parse(JSON.stringify(parseToml(await read(f)))) as HostsToml);
  }
  return {
    dir,
    files,
    common: parseYaml(await read('welkin/common-config.yaml')) as Common,
    sc: parseYaml(await read('welkin/sc-config.yaml')) as Sc,
    kubespray: parseYaml(await read('kubespray/containerd-mirrors.yaml')) as Kubespray,
    hosts,
    readme: await read('README.md'),
    stderr,
  };
}

/** The README section with this heading, up to the next one. */
function section(readme: string, heading: string): string {
  const start = readme.indexOf(`## ${heading}`);
  if (start === -1) return '';
  const next = readme.indexOf('\n## ', start + 3);
  return readme.slice(start, next === -1 ? undefined : next);
}

/** Rules every target shares. */
function commonRules(e: Emitted, registry: string): void {
  for (const [name, doc] of [['common-config.yaml', e.common], ['sc-config.yaml', e.sc]] as const) {
    // Placeholders are Welkin's convention for what the operator must fill in; each one is an `ips` list.
    for (const [key, ips] of ipsLists(doc)) assert.deepEqual(ips, ['set-me'], `${name}${key}: a set-me placeholder`);
    assert.deepEqual(welkinSchemaErrors(withPlaceholdersFilled(doc)), [], `${name} passes Welkin's config schema once the IPs are filled in`);
  }
  // Trivy: DBs from the registry, no mirror key a ConfigMap cannot hold.
  const scanner = e.common.trivy.scanner;
  assert.equal(scanner.offlineScanEnabled, true);
  assert.equal(scanner.dbRegistry, registry);
  assert.equal(scanner.javaDbRegistry, registry);
  for (const k of Object.keys(scanner.registry.mirror)) assert.match(k, /^[-._a-zA-Z0-9]+$/, `mirror key ${k} is a valid ConfigMap key suffix`);
  assert.deepEqual(Object.keys(scanner.registry.mirror).sort(), [...WELKIN_MIRRORED, 'xpkg.crossplane.io'].sort(), 'every host Welkin mirrors and every bundle host, except one with a port');
  assert.match(section(e.readme, 'Left out, and why'), /trivy\.scanner\.registry\.mirror\."127\.0\.0\.1:5999"[\s\S]*ConfigMap key/);
  // Falco drivers: never the miswired, schema-rejected repoURL; modern_ebpf, and the README says how else.
  assert.deepEqual(e.common.falco.driver, { kind: 'modern_ebpf' });
  const left = section(e.readme, 'Left out, and why');
  assert.match(left, /falco\.driver\.module\.repoURL/);
  assert.match(left, /FALCOCTL_DRIVER_NAME/);
  assert.match(left, /FALCOCTL_DRIVER_REPOS to \S+\/falco\/driver/);
  assert.match(left, /contst/);
  // Harbor's own scanner gets the DBs from the registry.
  assert.deepEqual(
    e.sc.harbor.trivy.extraEnvVars.map((v) => v.name),
    ['SCANNER_TRIVY_DB_REPOSITORY', 'SCANNER_TRIVY_JAVA_DB_REPOSITORY'],
  );
  assert.equal(e.sc.harbor.trivy.extraEnvVars[0]?.value, `${registry}/${String(scanner.dbRepository)}`);
  assert.equal(e.sc.harbor.trivy.extraEnvVars[1]?.value, `${registry}/${String(scanner.javaDbRepository)}`);
  assert.equal(e.sc.opensearch.plugins.installExternalObjectStoragePlugin, false);
  // Kubespray: the fields its hosts.toml.j2 reads, the pause image where it was pushed.
  for (const entry of e.kubespray.containerd_registries_mirrors) {
    assert.deepEqual(Object.keys(entry).sort(), ['mirrors', 'prefix', 'server']);
    for (const m of entry.mirrors) {
      for (const k of Object.keys(m)) assert.ok(KUBESPRAY_MIRROR_KEYS.has(k), `${entry.prefix}: ${k} is a field Kubespray's template reads`);
      assert.deepEqual(m.capabilities, ['pull', 'resolve']);
      assert.equal(typeof m.skip_verify, 'boolean');
    }
  }
  assert.equal(e.kubespray.pod_infra_image_tag, '3.10');
  // containerd: one hosts.toml per upstream host, each the same mirror Kubespray gets.
  for (const h of ['127.0.0.1:5999', 'docker.io', 'ghcr.io', 'registry.k8s.io', 'xpkg.crossplane.io']) assert.ok(e.hosts.has(h), `certs.d/${h}`);
  for (const entry of e.kubespray.containerd_registries_mirrors) {
    const t = e.hosts.get(entry.prefix);
    assert.ok(t, `certs.d/${entry.prefix} matches the Kubespray entry`);
    assert.deepEqual(Object.keys(t.host), entry.mirrors.map((m) => m.host));
    // Without `server` Kubespray writes https://<prefix> (https://docker.io), which is not the hosts.toml airlock writes.
    assert.equal(entry.server, t.server, `${entry.prefix}: Kubespray's server is the hosts.toml server`);
  }
  // README: the target, every file, the steps.
  assert.match(e.readme, new RegExp(`Registry: \`${registry.replace(/\./g, '\\.')}\``));
  for (const f of e.files.filter((x) => x !== 'README.md')) assert.ok(e.readme.includes(`\`${f}\``), `README lists ${f}`);
  const steps = section(e.readme, 'Manual steps');
  assert.match(steps, /ck8s validate sc/);
  if (registry.includes(':')) {
    // Welkin's container_uri.parse splits at the first ':': no advice that would break, a warning instead.
    assert.doesNotMatch(steps, /images\.crossplane/);
    assert.match(section(e.readme, 'Left out, and why'), /images\.crossplane\.providers\.helm[\s\S]*container_uri\.parse[\s\S]*first ":"/);
  } else {
    assert.match(steps, /images\.crossplane\.providers\.helm: \S+provider-helm:v1\.0\.0/, 'Crossplane packages: their own handling');
  }
  // falcoctl is never turned on: the chart would add the container plugin by its ghcr.io reference.
  assert.equal(e.common.falco.artifact, undefined);
  assert.equal(e.common.falco.customIndexes, undefined);
  assert.equal(e.common.networkPolicies?.falco, undefined, 'no Falco egress rule for a consumer that is not set up');
  assert.match(left, /falco\.artifact\.install\.enabled: true[\s\S]*useContainerEngine[\s\S]*ghcr\.io\/falcosecurity\/plugins\/plugin\/container:0\.3\.1[\s\S]*does not pass collectors\.containerEngine\.pluginRef through/);
  assert.doesNotMatch(e.readme, /modern-bpf|kind: module\b/, "the schema's spellings, not the guide's");
}

describe("Welkin's config schema, as the fixture holds it (config/schemas/config.yaml @ 0fc99b2)", () => {
  it('rejects any non-empty falco.driver.module.repoURL (oneOf with the misspelled `contst`) and takes an empty one', () => {
    const driver = (repoURL: string) => ({ falco: { driver: { kind: 'kmod', module: { repoURL } } } });
    assert.notDeepEqual(welkinSchemaErrors(driver('http://fileserver.internal:8080/falco/driver')), []);
    assert.notDeepEqual(welkinSchemaErrors(driver('https://files.example.com/falco/driver')), []);
    assert.deepEqual(welkinSchemaErrors(driver('')), []);
  });

  it("takes the driver kinds kmod, modern_ebpf and ebpf, not the guide's module and modern-bpf", () => {
    for (const kind of ['kmod', 'modern_ebpf', 'ebpf']) assert.deepEqual(welkinSchemaErrors({ falco: { driver: { kind } } }), [], kind);
    for (const kind of ['module', 'modern-bpf']) assert.notDeepEqual(welkinSchemaErrors({ falco: { driver: { kind } } }), [], kind);
  });

  it('wants customIndexes as {name, url} objects with a URI (the guide writes bare strings)', () => {
    assert.deepEqual(welkinSchemaErrors({ falco: { customIndexes: [{ name: 'a', url: 'http://fs:8080/falco/index.yaml' }] } }), []);
    assert.notDeepEqual(welkinSchemaErrors({ falco: { customIndexes: ['fileserver.air-gapped.internal:8080/falcoctl/index.yaml'] } }), []);
    assert.notDeepEqual(welkinSchemaErrors({ falco: { customIndexes: [{ name: 'a', url: '/falco/index.yaml' }] } }), []);
    assert.equal(goUri('http://fs:8080/x'), true);
    assert.equal(goUri('/x'), false);
  });

  it('wants netmasks in networkPolicies.opensearch.plugins.ips (so set-me fails until replaced) and port numbers in ports', () => {
    const os = (ips: unknown[], ports: unknown[]) => ({ networkPolicies: { opensearch: { plugins: { ips, ports } } } });
    assert.deepEqual(welkinSchemaErrors(os(['10.0.0.5/32'], [8080])), []);
    assert.notDeepEqual(welkinSchemaErrors(os(['set-me'], [8080])), []);
    assert.notDeepEqual(welkinSchemaErrors(os(['10.0.0.5/32'], ['8080'])), []);
    assert.notDeepEqual(welkinSchemaErrors(os(['10.0.0.5/32'], [70000])), []);
  });

  it('closes trivy.scanner, falco, opensearch.plugins, harbor.trivy and networkPolicies to unknown keys', () => {
    assert.notDeepEqual(welkinSchemaErrors({ trivy: { scanner: { dbRepositoryCA: 'x' } } }), []);
    assert.notDeepEqual(welkinSchemaErrors({ networkPolicies: { falco: { plugins: { port: 8080 } } } }), []);
    assert.notDeepEqual(welkinSchemaErrors({ harbor: { trivy: { insecure: true } } }), [], 'Welkin does not expose the Harbor chart\'s trivy.insecure');
  });
});

describe('target 1: plain HTTP on 127.0.0.1:PORT, file server http://fileserver.internal:8080', () => {
  const registry = '127.0.0.1:5000';
  let e: Emitted;
  before(async () => {
    e = await emit({ registry: { host: registry, prefix: '' }, layout: 'flat', registryScheme: 'http', registryInsecure: true, fileserverUrl: 'http://fileserver.internal:8080' });
  });

  it('passes the shared rules', () => commonRules(e, registry));

  it('points Trivy at the registry, insecure, mirrors without a path', () => {
    const s = e.common.trivy.scanner;
    assert.equal(s.dbRepository, 'aquasecurity/trivy-db');
    assert.equal(s.javaDbRepository, 'aquasecurity/trivy-java-db');
    assert.equal(s.dbRepositoryInsecure, true);
    for (const v of Object.values(s.registry.mirror)) assert.equal(v, registry);
  });

  it('leaves falcoctl out (it cannot pull over plain HTTP) and says why', () => {
    assert.equal(e.common.falco.artifact, undefined);
    assert.equal(e.common.falco.customIndexes, undefined);
    assert.match(section(e.readme, 'Left out, and why'), /falco\.artifact\.install\.enabled: true[\s\S]*plain HTTP[\s\S]*--plain-http/);
    assert.equal(e.common.networkPolicies?.falco, undefined, 'no Falco egress rule for a consumer that is not set up');
  });

  it('opens every port that is not 443: Trivy (networkPolicies.additional), OpenSearch plugins 8080, Harbor scanner', () => {
    const docs = parseAllDocuments(e.common.networkPolicies?.additional ?? '').map((d) => d.toJSON() as { kind: string; metadata: { namespace: string }; spec: { policyTypes: string[]; podSelector: { matchLabels: Record<string, string> }; egress: Array<{ to: Array<{ ipBlock: { cidr: string } }>; ports: Array<{ protocol: string; port: number }> }> } });
    assert.equal(docs.length, 2);
    assert.deepEqual(docs.map((d) => d.spec.podSelector.matchLabels), [{ 'vulnerabilityReport.scanner': 'Trivy' }, { 'app.kubernetes.io/instance': 'trivy-operator', 'app.kubernetes.io/name': 'trivy-operator' }]);
    for (const d of docs) {
      assert.equal(d.kind, 'NetworkPolicy');
      assert.equal(d.metadata.namespace, 'monitoring');
      assert.deepEqual(d.spec.policyTypes, ['Egress']);
      assert.deepEqual(d.spec.egress, [{ to: [{ ipBlock: { cidr: 'set-me' } }], ports: [{ protocol: 'TCP', port: 5000 }] }]);
    }
    assert.deepEqual(e.sc.networkPolicies?.opensearch, { plugins: { ips: ['set-me'], ports: [8080] } });
    assert.deepEqual(e.sc.networkPolicies?.harbor, { trivy: { ips: ['set-me'], ports: [5000] } });
    const steps = section(e.readme, 'Manual steps');
    assert.match(steps, /egress-rule-trivy[\s\S]*443 and 80 only/);
    // ck8s validate never looks inside the string, and the string replaces the operator's own.
    assert.match(steps, /Fill in both `cidr: set-me` by hand[\s\S]*`ck8s validate` does not catch them/);
    assert.match(steps, /networkPolicies\.additional is that one string, not a list: merging this file replaces the string in your common-config\.yaml/);
    assert.match(steps, /ck8s validate wc`: they must report no `set-me` left[^\n]*They do not see the `set-me` in networkPolicies\.additional/);
  });

  it('OpenSearch plugins come from the file server by full URL', () => {
    assert.deepEqual(e.sc.opensearch.plugins.additionalPlugins, ['http://fileserver.internal:8080/opensearch/repository-s3-2.19.4.zip']);
  });

  it("warns that Harbor's scanner cannot be told the registry is plain HTTP", () => {
    assert.match(section(e.readme, 'Written, but will not work'), /Harbor's scanner[\s\S]*trivy\.insecure/);
    assert.ok(!e.sc.harbor.trivy.extraEnvVars.some((v) => v.name === 'SCANNER_TRIVY_INSECURE'), 'the chart sets that one itself');
  });

  it('containerd and Kubespray speak HTTP to the registry, including to the registry itself (for the pause image)', () => {
    const docker = e.hosts.get('docker.io');
    assert.equal(docker?.server, 'https://registry-1.docker.io');
    assert.deepEqual(docker?.host, { [`http://${registry}`]: { capabilities: ['pull', 'resolve'] } });
    assert.equal(e.hosts.get(registry)?.server, `http://${registry}`);
    assert.deepEqual(e.kubespray.containerd_registries_mirrors.map((m) => m.prefix), ['127.0.0.1:5999', 'docker.io', 'ghcr.io', 'registry.k8s.io', 'xpkg.crossplane.io', registry]);
    for (const m of e.kubespray.containerd_registries_mirrors) assert.deepEqual(m.mirrors, [{ host: `http://${registry}`, capabilities: ['pull', 'resolve'], skip_verify: false }]);
    assert.equal(e.kubespray.pod_infra_image_repo, `${registry}/pause`);
    assert.ok(!e.files.includes('containerd/airlock-registry-ca.crt'));
  });
});

describe('target 2: HTTPS with --ca-file and a /PREFIX', () => {
  const registry = 'registry.internal:5443';
  let e: Emitted;
  let caFile: string;
  before(async () => {
    caFile = path.join(await makeTempDir('airlock-emit-ca-'), 'ca.pem');
    await writeFile(caFile, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    e = await emit({ registry: { host: registry, prefix: 'welkin' }, layout: 'flat', registryScheme: 'https', registryInsecure: false, caFile, fileserverUrl: 'https://files.internal' });
  });

  it('passes the shared rules', () => commonRules(e, registry));

  it('points Trivy at the project, verified, mirrors with the prefix as path, and warns that Trivy lacks the CA', () => {
    const s = e.common.trivy.scanner;
    assert.equal(s.dbRepository, 'welkin/aquasecurity/trivy-db');
    assert.equal(s.javaDbRepository, 'welkin/aquasecurity/trivy-java-db');
    assert.equal(s.dbRepositoryInsecure, false);
    for (const v of Object.values(s.registry.mirror)) assert.equal(v, `${registry}/welkin`);
    const warnings = section(e.readme, 'Written, but will not work');
    assert.match(warnings, /Trivy[\s\S]*no setting for a CA[\s\S]*dbRepositoryInsecure: true/);
    assert.match(warnings, /Harbor's scanner[\s\S]*caBundleSecretName/);
  });

  it('leaves falcoctl out (no way to give it a CA) and says why', () => {
    assert.equal(e.common.falco.artifact, undefined);
    assert.equal(e.common.falco.customIndexes, undefined);
    assert.match(section(e.readme, 'Left out, and why'), /falco\.artifact\.install\.enabled: true[\s\S]*private CA[\s\S]*no setting to skip verification or add a CA/);
  });

  it('warns, in the README and on stderr, that nothing in the cluster can be given the private CA for an https file server', () => {
    assert.match(section(e.readme, 'Written, but will not work'), /file server `https:\/\/files\.internal` speaks HTTPS and --ca-file was given[\s\S]*OpenSearch's plugin installer[\s\S]*falcoctl[\s\S]*Falco's driver loader[\s\S]*plain http:\/\/ URL/);
    assert.equal(e.stderr.length, 1);
    assert.match(e.stderr[0] ?? '', /^note: the file server https:\/\/files\.internal is https and --ca-file was given: OpenSearch's plugin installer, falcoctl, Falco's driver loader/);
  });

  it('opens the registry port 5443 (Trivy, Harbor scanner) and nothing for the file server on 443', () => {
    assert.match(e.common.networkPolicies?.additional ?? '', /port: 5443/);
    assert.deepEqual(e.sc.networkPolicies?.harbor, { trivy: { ips: ['set-me'], ports: [5443] } });
    assert.equal(e.sc.networkPolicies?.opensearch, undefined);
  });

  it('gives containerd and Kubespray the CA as a node path, and writes the CA for that path', async () => {
    assert.equal(await readFile(path.join(e.dir, 'containerd/airlock-registry-ca.crt'), 'utf8'), await readFile(caFile, 'utf8'));
    const docker = e.hosts.get('docker.io');
    assert.deepEqual(docker?.host, { [`https://${registry}/v2/welkin`]: { capabilities: ['pull', 'resolve'], override_path: true, ca: NODE_CA } });
    assert.deepEqual(e.hosts.get(registry)?.host, { [`https://${registry}`]: { capabilities: ['pull', 'resolve'], ca: NODE_CA } });
    for (const m of e.kubespray.containerd_registries_mirrors) {
      assert.deepEqual(m.mirrors[0]?.ca, [NODE_CA], `${m.prefix}: Kubespray's ca is a list of paths on the node`);
      assert.equal(m.mirrors[0]?.skip_verify, false);
      assert.equal(m.mirrors[0]?.override_path, m.prefix === registry ? undefined : true);
    }
    assert.equal(e.kubespray.pod_infra_image_repo, `${registry}/welkin/pause`);
    assert.match(section(e.readme, 'Manual steps'), new RegExp(`containerd/airlock-registry-ca.crt at ${NODE_CA.replace(/\./g, '\\.')} on every node`));
  });
});

describe('target 3: --layout host, HTTPS with a public certificate, file server http://files.example.com:8080', () => {
  const registry = 'registry.example.com';
  let e: Emitted;
  before(async () => {
    e = await emit({ registry: { host: registry, prefix: '' }, layout: 'host', registryScheme: 'https', registryInsecure: false, fileserverUrl: 'http://files.example.com:8080' });
  });

  it('passes the shared rules', () => commonRules(e, registry));

  it('keeps the upstream host in every path: Trivy DBs, mirrors, pause, Harbor scanner', () => {
    const s = e.common.trivy.scanner;
    assert.equal(s.dbRepository, 'ghcr.io/aquasecurity/trivy-db');
    assert.equal(s.registry.mirror['docker.io'], `${registry}/docker.io`);
    assert.equal(s.registry.mirror['index.docker.io'], `${registry}/docker.io`, 'Trivy names Docker Hub index.docker.io');
    assert.equal(s.registry.mirror['registry.k8s.io'], `${registry}/registry.k8s.io`);
    assert.equal(s.dbRepositoryInsecure, false);
    assert.equal(e.kubespray.pod_infra_image_repo, `${registry}/registry.k8s.io/pause`);
    assert.equal(e.hosts.get('registry.k8s.io')?.host[`https://${registry}/v2/registry.k8s.io`]?.override_path, true);
    assert.equal(e.hosts.has(registry), false, 'containerd reaches a public-CA registry by default');
  });

  it('leaves falcoctl off even here, and says what to patch: the chart\'s pluginRef to the container plugin in the registry', () => {
    assert.equal(e.common.falco.artifact, undefined);
    const left = section(e.readme, 'Left out, and why');
    assert.match(left, /patch helmfile\.d\/values\/falco\/falco-common\.yaml\.gotmpl: inside `\{\{- if \.Values\.falco\.useContainerEngine \}\}`, below `containerEngine:` and its `enabled: true`, add `pluginRef: registry\.example\.com\/ghcr\.io\/falcosecurity\/plugins\/plugin\/container:0\.3\.1`/);
    assert.match(left, /set falco\.artifact\.install\.enabled: true and falco\.customIndexes: \[\{name: airlock, url: `http:\/\/files\.example\.com:8080\/falco\/index\.yaml`\}\]/);
    assert.match(left, /falco\.rulesFiles\.default\.version[^\n]*`4\.0\.0`/);
    assert.match(left, /networkPolicies\.falco\.plugins\.ips[^\n]*ports \[443,8080\]/);
    assert.doesNotMatch(left, /does not hold the container plugin/);
  });

  it('opens 8080 for OpenSearch and nothing for the registry on 443', () => {
    assert.equal(e.common.networkPolicies?.additional, undefined);
    assert.deepEqual(e.sc.networkPolicies, { opensearch: { plugins: { ips: ['set-me'], ports: [8080] } } });
  });

  it('has no warnings: every consumer can use what was written', () => {
    assert.equal(section(e.readme, 'Written, but will not work'), '');
    assert.deepEqual(e.stderr, []);
  });
});

describe('a bundle with images only', () => {
  it('writes mirrors and containerd config, no Falco or file server settings, and a README', async () => {
    const dir = await makeTempDir('airlock-emit-');
    const index: BundleIndex = { ...INDEX, images: [image('quay.io/org/app:1')], files: [] };
    await emitConfig(dir, { index, registry: { host: 'registry.example.com', prefix: '' }, layout: 'flat', registryScheme: 'https', registryInsecure: false });
    const common = parseYaml(await readFile(path.join(dir, 'welkin/common-config.yaml'), 'utf8')) as Common;
    assert.deepEqual(Object.keys(common), ['trivy']);
    assert.equal(common.trivy.scanner.dbRegistry, undefined);
    assert.equal(common.trivy.scanner.offlineScanEnabled, undefined);
    assert.deepEqual(welkinSchemaErrors(common), []);
    assert.ok(!existsSync(path.join(dir, 'welkin/sc-config.yaml')));
    assert.match(await readFile(path.join(dir, 'README.md'), 'utf8'), /File server: none given/);
  });
});

describe('Falco: the container plugin, and the legacy eBPF probe', () => {
  const target = { registry: { host: 'registry.example.com', prefix: '' }, layout: 'host', registryScheme: 'https', registryInsecure: false, fileserverUrl: 'http://files.example.com:8080' } as const;

  it('without the container plugin in the bundle: falcoctl off, and the README says the plugin is missing and how to carry it', async () => {
    const index: BundleIndex = { ...INDEX, images: INDEX.images.filter((i) => i.role !== 'falco-plugin') };
    const e = await emit(target, index);
    assert.equal(e.common.falco.artifact, undefined);
    assert.equal(e.common.falco.customIndexes, undefined);
    const left = section(e.readme, 'Left out, and why');
    assert.match(left, /does not hold the container plugin either \(carry it with `falco: \{plugins: \[ghcr\.io\/falcosecurity\/plugins\/plugin\/container:0\.3\.1\]\}` in the manifest\)/);
    assert.doesNotMatch(left, /pluginRef: registry\.example\.com/);
  });

  it('says the legacy eBPF probe is gone from falcoctl 0.13 and Falco 0.44 when the bundle holds .o drivers', async () => {
    const legacy: BundleIndex = { ...INDEX, files: [...INDEX.files.filter((f) => f.role !== 'falco-driver'), file('falco/driver/8.1.0+driver/x86_64/falco_debian_6.1.0-13-amd64_1.o', 'falco-driver')] };
    const e = await emit(target, legacy);
    assert.match(section(e.readme, 'Left out, and why'), /falco\.driver\.kind: ebpf[\s\S]*legacy eBPF probe[^\n]*gone from falcoctl 0\.13 and Falco 0\.44/);
    const kmod = await emit(target);
    assert.doesNotMatch(kmod.readme, /falcoctl 0\.13/);
  });
});
