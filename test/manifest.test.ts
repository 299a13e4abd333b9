import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from './support/proc.js';
import { runAirlock } from './support/cli.js';
import { loadManifest } from '../src/manifest/load.js';
import { ManifestError, formatProblem, type Problem } from '../src/manifest/problems.js';
import type { ArtifactItem, FileItem, ImageItem, Plan } from '../src/manifest/types.js';

const REPO = path.resolve(import.meta.dirname, '..');
const SHA = 'ab'.repeat(32);

async function tempDir(): Promise<string> {
  return makeTempDir('airlock-manifest-');
}

/** Writes files (name → text) into a fresh folder and returns the path of `airlock.yaml` in it. */
async function fixture(files: Record<string, string>): Promise<string> {
  const dir = await tempDir();
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return path.join(dir, 'airlock.yaml');
}

async function problemsOf(file: string, set?: Record<string, string>): Promise<Problem[]> {
  try {
    await loadManifest(file, set ? { set } : {});
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected a ManifestError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return [...err.problems];
  }
  assert.fail('the manifest was accepted');
}

const images = (plan: Plan) => plan.items.filter((i): i is ImageItem => i.kind === 'image');
const artifacts = (plan: Plan) => plan.items.filter((i): i is ArtifactItem => i.kind === 'artifact');
const files = (plan: Plan) => plan.items.filter((i): i is FileItem => i.kind === 'file');

const HEAD = 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: t\n';

test('every SPEC §2 field is accepted and expanded', async () => {
  const manifest = await fixture({
    'airlock.yaml': `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: welkin-sc
  version: "2026.11"
vars:
  OPENSEARCH_VERSION: "2.19.4"
  CM: v1.18.3
spec:
  platforms: [linux/amd64]
  registries:
    "registry.example:5000": { plainHttp: true, caFile: null }
    "mirror.example": { caFile: certs/ca.pem, insecureSkipTLSVerify: false }
  images:
    - quay.io/jetstack/cert-manager-controller:\${CM}
    - ref: ghcr.io/tektoncd/pipeline/controller:v1.1.0@sha256:${SHA}
      platforms: [linux/amd64, linux/arm64]
  imageLists: [lists/images-sc.list]
  renderedManifests: [sc.yaml]
  artifacts:
    - ghcr.io/falcosecurity/plugins/plugin/k8saudit:0.7.0
  files:
    - url: https://example.org/tool.tar.gz
      path: tools/tool.tar.gz
      sha256: ${SHA}
    - url: https://example.org/big.iso
      sha512: ${'cd'.repeat(64)}
    - url: https://example.org/other.bin
      path: x/other.bin
      checksumUrl: https://example.org/other.bin.sha256
  trivy:
    db: ghcr.io/aquasecurity/trivy-db:2
    javaDb: ghcr.io/aquasecurity/trivy-java-db:1
  falco:
    rules: [ghcr.io/falcosecurity/rules/falco-rules:4.0.0]
    plugins: [ghcr.io/falcosecurity/plugins/plugin/container:0.2.0]
    drivers:
      repoUrl: https://download.falco.org/driver
      version: 8.1.0+driver
      arch: x86_64
      kind: kmod
      kernels:
        - { target: debian, kernelRelease: 6.1.0-13-amd64, kernelVersion: "1" }
  opensearch:
    version: \${OPENSEARCH_VERSION}
    plugins: [repository-s3]
    baseUrl: https://artifacts.opensearch.org/releases/plugins
`.replace('caFile: null', 'insecureSkipTLSVerify: false'),
    'certs/ca.pem': '-----BEGIN CERTIFICATE-----\n',
    'lists/images-sc.list': '# comment\n\nregistry.k8s.io/pause:3.9  # trailing\nquay.io/jetstack/cert-manager-controller:v1.18.3\n',
    'sc.yaml': 'kind: Pod\nspec:\n  containers:\n    - image: busybox:1.36\n',
  });
  const plan = await loadManifest(manifest);
  assert.equal(plan.name, 'welkin-sc');
  assert.equal(plan.version, '2026.11');
  assert.deepEqual(plan.platforms, ['linux/amd64']);
  assert.deepEqual(plan.registries['registry.example:5000'], { plainHttp: true, insecureSkipTLSVerify: false });
  assert.equal(plan.registries['mirror.example']?.caFile, path.join(path.dirname(manifest), 'certs/ca.pem'));

  assert.deepEqual(
    images(plan).map((i) => [i.ref, i.platforms]),
    [
      ['quay.io/jetstack/cert-manager-controller:v1.18.3', ['linux/amd64']],
      [`ghcr.io/tektoncd/pipeline/controller:v1.1.0@sha256:${SHA}`, ['linux/amd64', 'linux/arm64']],
      ['registry.k8s.io/pause:3.9', ['linux/amd64']],
      ['docker.io/library/busybox:1.36', ['linux/amd64']],
    ],
  );
  // The list repeats cert-manager: merged into one item with both origins.
  const cm = images(plan)[0];
  assert.deepEqual(cm?.origins.map((o) => `${path.basename(o.file)}:${o.line}`), ['airlock.yaml:15', 'images-sc.list:4']);

  assert.deepEqual(
    artifacts(plan).map((a) => [a.ref, a.role]),
    [
      ['ghcr.io/falcosecurity/plugins/plugin/k8saudit:0.7.0', undefined],
      ['ghcr.io/aquasecurity/trivy-db:2', 'trivy-db'],
      ['ghcr.io/aquasecurity/trivy-java-db:1', 'trivy-java-db'],
      ['ghcr.io/falcosecurity/rules/falco-rules:4.0.0', 'falco-rules'],
      ['ghcr.io/falcosecurity/plugins/plugin/container:0.2.0', 'falco-plugin'],
    ],
  );
  assert.deepEqual(
    files(plan).map((f) => [f.path, f.role, f.checksum]),
    [
      ['tools/tool.tar.gz', 'file', { type: 'digest', algorithm: 'sha256', hex: SHA }],
      ['big.iso', 'file', { type: 'digest', algorithm: 'sha512', hex: 'cd'.repeat(64) }],
      ['x/other.bin', 'file', { type: 'url', url: 'https://example.org/other.bin.sha256', algorithm: 'sha256' }],
      ['falco/driver/8.1.0+driver/x86_64/falco_debian_6.1.0-13-amd64_1.ko', 'falco-driver', { type: 'pinned-at-build' }],
      [
        'opensearch/repository-s3-2.19.4.zip',
        'opensearch-plugin',
        { type: 'url', url: 'https://artifacts.opensearch.org/releases/plugins/repository-s3/2.19.4/repository-s3-2.19.4.zip.sha512', algorithm: 'sha512' },
      ],
    ],
  );
});

test('--set overrides a variable', async () => {
  const manifest = await fixture({
    'airlock.yaml': `${HEAD}vars:\n  V: "2.19.4"\nspec:\n  opensearch: { version: "\${V}", plugins: [repository-s3] }\n`,
  });
  const plan = await loadManifest(manifest, { set: { V: '2.8.0' } });
  assert.deepEqual(files(plan).map((f) => f.url), ['https://artifacts.opensearch.org/releases/plugins/repository-s3/2.8.0/repository-s3-2.8.0.zip']);
});

test('trivy: {} means both databases at the tags Trivy asks for', async () => {
  const plan = await loadManifest(await fixture({ 'airlock.yaml': `${HEAD}spec:\n  trivy: {}\n` }));
  assert.deepEqual(
    artifacts(plan).map((a) => [a.ref, a.role]),
    [
      ['ghcr.io/aquasecurity/trivy-db:2', 'trivy-db'],
      ['ghcr.io/aquasecurity/trivy-java-db:1', 'trivy-java-db'],
    ],
  );
  const onlyDb = await loadManifest(await fixture({ 'airlock.yaml': `${HEAD}spec:\n  trivy: { javaDb: false }\n` }));
  assert.deepEqual(artifacts(onlyDb).map((a) => a.role), ['trivy-db']);
});

test('an image also listed as an artifact is copied once, as the artifact', async () => {
  const plan = await loadManifest(
    await fixture({ 'airlock.yaml': `${HEAD}spec:\n  images: [ghcr.io/x/y:1]\n  artifacts: [ghcr.io/x/y:1]\n` }),
  );
  assert.deepEqual(plan.items.map((i) => [i.kind, i.kind === 'file' ? i.path : i.ref]), [['artifact', 'ghcr.io/x/y:1']]);
});

test('the same file declared twice with the same source is merged', async () => {
  const f = `    - { url: "https://e.org/a", path: a, sha256: ${SHA} }\n`;
  const plan = await loadManifest(await fixture({ 'airlock.yaml': `${HEAD}spec:\n  files:\n${f}${f}` }));
  assert.equal(files(plan).length, 1);
  assert.equal(files(plan)[0]?.origins.length, 2);
});

test('the shipped example and Welkin manifests are valid', async () => {
  for (const name of ['example.yaml', 'welkin-sc.yaml', 'welkin-wc.yaml']) {
    const plan = await loadManifest(path.join(REPO, 'manifests', name));
    assert.ok(plan.items.length > 0, name);
  }
  const sc = await loadManifest(path.join(REPO, 'manifests', 'welkin-sc.yaml'));
  const roles = new Set(plan_roles(sc));
  for (const role of ['trivy-db', 'trivy-java-db', 'falco-rules', 'opensearch-plugin']) assert.ok(roles.has(role), `welkin-sc has ${role}`);
  const refs = new Set(images(sc).map((i) => i.ref));
  // The two images that helmfile template | yq misses.
  assert.ok([...refs].some((r) => r.startsWith('mirror.gcr.io/aquasec/trivy:')), 'trivy scanner image');
  assert.ok([...refs].some((r) => r.startsWith('ghcr.io/aquasecurity/node-collector:')), 'node-collector image');
  for (const name of ['welkin-sc.yaml', 'welkin-wc.yaml']) {
    // The chart's collectors.containerEngine.pluginRef: falcoctl installs it whenever Welkin's Falco installs artifacts.
    const plan = await loadManifest(path.join(REPO, 'manifests', name));
    assert.ok(artifacts(plan).some((a) => a.ref === 'ghcr.io/falcosecurity/plugins/plugin/container:0.3.1' && a.role === 'falco-plugin'), `${name} carries the container plugin`);
    // The manifests ship to users: they cite upstream files, not this project's notes.
    assert.doesNotMatch(await readFile(path.join(REPO, 'manifests', name), 'utf8'), /DOMAIN\.md|§/, `${name} stands alone`);
  }
});

function plan_roles(plan: Plan): string[] {
  return plan.items.map((i) => (i.kind === 'image' ? 'image' : (i.role ?? 'artifact')));
}

interface Case {
  name: string;
  yaml: string;
  extra?: Record<string, string>;
  /** [file (basename), line, key path, message pattern] for each problem, in order. */
  want: Array<[string, number, string, RegExp]>;
}

const cases: Case[] = [
  {
    name: 'wrong apiVersion',
    yaml: 'apiVersion: airlock/v2\nkind: Bundle\nmetadata: {name: t}\nspec: {}\n',
    want: [['airlock.yaml', 1, 'apiVersion', /must be "airlock\/v1".*write apiVersion: airlock\/v1/]],
  },
  {
    name: 'wrong kind',
    yaml: 'apiVersion: airlock/v1\nkind: Bundel\nmetadata: {name: t}\nspec: {}\n',
    want: [['airlock.yaml', 2, 'kind', /must be "Bundle"/]],
  },
  {
    name: 'missing metadata.name',
    yaml: 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  version: "1"\nspec: {}\n',
    want: [['airlock.yaml', 4, 'metadata', /missing required key "name"/]],
  },
  {
    name: 'bad metadata.name',
    yaml: 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: Welkin_SC\nspec: {}\n',
    want: [['airlock.yaml', 4, 'metadata.name', /"Welkin_SC" is not valid; use lowercase letters/]],
  },
  {
    name: 'version written as a number',
    yaml: 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: t\n  version: 2026.10\nspec: {}\n',
    want: [['airlock.yaml', 5, 'metadata.version', /must be a string.*quote it/]],
  },
  {
    name: 'misspelt key',
    yaml: `${HEAD}spec:\n  imagez: [nginx]\n`,
    want: [['airlock.yaml', 6, 'spec.imagez', /unknown key "imagez"; did you mean "images"\?/]],
  },
  {
    name: 'invalid image reference',
    yaml: `${HEAD}spec:\n  images:\n    - nginx:1.27\n    - quay.io/Org/app:v1\n`,
    want: [['airlock.yaml', 8, 'spec.images[1]', /invalid image reference "quay.io\/Org\/app:v1": repository name must be lowercase/]],
  },
  {
    name: 'image object without ref',
    yaml: `${HEAD}spec:\n  images:\n    - platforms: [linux/amd64]\n`,
    want: [['airlock.yaml', 7, 'spec.images[0]', /missing required key "ref"/]],
  },
  {
    name: 'bad platform',
    yaml: `${HEAD}spec:\n  platforms: [linux/amd64, linux]\n`,
    want: [['airlock.yaml', 6, 'spec.platforms[1]', /"linux" is not valid; write os\/arch/]],
  },
  {
    name: 'file without checksum',
    yaml: `${HEAD}spec:\n  files:\n    - url: https://e.org/a.bin\n      path: a.bin\n`,
    want: [['airlock.yaml', 7, 'spec.files[0]', /has no checksum; add sha256/]],
  },
  {
    name: 'file with two checksums',
    yaml: `${HEAD}spec:\n  files:\n    - { url: "https://e.org/a", sha256: ${SHA}, checksumUrl: "https://e.org/a.sha256" }\n`,
    want: [['airlock.yaml', 7, 'spec.files[0]', /has sha256 and checksumUrl; keep exactly one/]],
  },
  {
    name: 'file path with ..',
    yaml: `${HEAD}spec:\n  files:\n    - url: https://e.org/a\n      path: ../etc/passwd\n      sha256: ${SHA}\n`,
    want: [['airlock.yaml', 8, 'spec.files[0].path', /landing path "..\/etc\/passwd" contains ".."/]],
  },
  {
    name: 'absolute file path',
    yaml: `${HEAD}spec:\n  files:\n    - url: https://e.org/a\n      path: /etc/passwd\n      sha256: ${SHA}\n`,
    want: [['airlock.yaml', 8, 'spec.files[0].path', /is absolute/]],
  },
  {
    name: 'file URL with another scheme',
    yaml: `${HEAD}spec:\n  files:\n    - url: ftp://e.org/a\n      sha256: ${SHA}\n`,
    want: [['airlock.yaml', 7, 'spec.files[0].url', /uses ftp:; write an http:\/\/ or https:\/\/ URL/]],
  },
  {
    name: 'short sha256',
    yaml: `${HEAD}spec:\n  files:\n    - url: https://e.org/a\n      sha256: abc123\n`,
    want: [['airlock.yaml', 8, 'spec.files[0].sha256', /64 hex characters/]],
  },
  {
    name: 'undefined variable',
    yaml: `${HEAD}vars:\n  A: "1"\nspec:\n  images:\n    - quay.io/x/y:\${NOPE}\n`,
    want: [['airlock.yaml', 9, 'spec.images[0]', /variable NOPE is not defined; add it under vars: or pass --set NOPE=VALUE \(defined: A\)/]],
  },
  {
    name: 'two files landing on the same path',
    yaml: `${HEAD}spec:\n  files:\n    - { url: "https://e.org/a", path: x/a, sha256: ${SHA} }\n    - { url: "https://other.org/a", path: x/a, sha256: ${SHA} }\n`,
    want: [['airlock.yaml', 8, 'spec.files[1].path', /lands at files\/x\/a, where \S*airlock.yaml:7:\d+ \(spec.files\[0\].path\) already puts https:\/\/e.org\/a/]],
  },
  {
    name: 'a file landing where the OpenSearch preset puts its plugin',
    yaml: `${HEAD}spec:\n  opensearch: { version: "2.19.4", plugins: [repository-s3] }\n  files:\n    - { url: "https://e.org/p.zip", path: opensearch/repository-s3-2.19.4.zip, sha256: ${SHA} }\n`,
    want: [['airlock.yaml', 6, 'spec.opensearch.plugins[0]', /lands at files\/opensearch\/repository-s3-2.19.4.zip, where \S*airlock.yaml:8:\d+ \(spec.files\[0\].path\) already puts https:\/\/e.org\/p.zip/]],
  },
  {
    name: 'falco driver arch',
    yaml: `${HEAD}spec:\n  falco:\n    drivers:\n      version: 8.1.0+driver\n      arch: arm64\n      kernels: [{target: debian, kernelRelease: "6.1", kernelVersion: 1}]\n`,
    want: [['airlock.yaml', 9, 'spec.falco.drivers.arch', /must be one of "x86_64", "aarch64", not "arm64"/]],
  },
  {
    name: 'falco drivers without kernels',
    yaml: `${HEAD}spec:\n  falco:\n    drivers:\n      version: 8.1.0+driver\n`,
    want: [['airlock.yaml', 8, 'spec.falco.drivers', /missing required key "kernels"; list at least one/]],
  },
  {
    name: 'falco kernel release with a slash',
    yaml: `${HEAD}spec:\n  falco:\n    drivers:\n      version: 8.1.0+driver\n      kernels:\n        - {target: debian, kernelRelease: "../../x", kernelVersion: "1"}\n`,
    want: [['airlock.yaml', 10, 'spec.falco.drivers.kernels[0].kernelRelease', /contains "\/"/]],
  },
  {
    name: 'OpenSearch version not X.Y.Z',
    yaml: `${HEAD}spec:\n  opensearch:\n    version: "2.19"\n    plugins: [repository-s3]\n`,
    want: [['airlock.yaml', 7, 'spec.opensearch.version', /write the OpenSearch version as X.Y.Z/]],
  },
  {
    name: 'trivy db reference invalid',
    yaml: `${HEAD}spec:\n  trivy:\n    db: "ghcr.io/aquasecurity/trivy-db:"\n`,
    want: [['airlock.yaml', 7, 'spec.trivy.db', /invalid OCI reference .*empty tag/]],
  },
  {
    name: 'one reference with two roles',
    yaml: `${HEAD}spec:\n  trivy: { db: ghcr.io/x/db:2, javaDb: false }\n  falco:\n    rules: [ghcr.io/x/db:2]\n`,
    want: [['airlock.yaml', 8, 'spec.falco.rules[0]', /already declared as trivy-db at \S*airlock.yaml:6; one reference can have one role/]],
  },
  {
    name: 'image list that does not exist',
    yaml: `${HEAD}spec:\n  imageLists: [missing.list]\n`,
    want: [['airlock.yaml', 6, 'spec.imageLists[0]', /cannot read image list .*missing.list: ENOENT/]],
  },
  {
    name: 'bad line in an image list is reported at its own line',
    yaml: `${HEAD}spec:\n  imageLists: [sc.list]\n`,
    extra: { 'sc.list': '# images\nnginx:1.27\n\n  quay.io/x/Y:1\n' },
    want: [['sc.list', 4, 'spec.imageLists[0]', /invalid image reference "quay.io\/x\/Y:1"/]],
  },
  {
    name: 'rendered manifest with a YAML error',
    yaml: `${HEAD}spec:\n  renderedManifests: [sc.yaml]\n`,
    extra: { 'sc.yaml': 'kind: Pod\n---\nspec:\n  containers:\n    - image: [unclosed\n' },
    want: [['sc.yaml', 6, 'spec.renderedManifests[0]', /invalid YAML/]],
  },
  {
    name: 'registry CA file that does not exist',
    yaml: `${HEAD}spec:\n  registries:\n    "r.example:5000": { caFile: nope.pem }\n`,
    want: [['airlock.yaml', 7, 'spec.registries["r.example:5000"].caFile', /does not exist/]],
  },
  {
    name: 'registry key that is not a host',
    yaml: `${HEAD}spec:\n  registries:\n    "not a host": { plainHttp: true }\n`,
    want: [['airlock.yaml', 7, 'spec.registries["not a host"]', /is not a registry host; write host or host:port/]],
  },
  {
    name: 'plainHttp with a CA',
    yaml: `${HEAD}spec:\n  registries:\n    "r.example": { plainHttp: true, insecureSkipTLSVerify: true }\n`,
    want: [['airlock.yaml', 7, 'spec.registries["r.example"]', /plainHttp contradicts/]],
  },
  {
    name: 'YAML syntax error',
    yaml: `${HEAD}spec:\n  images: [nginx\n`,
    want: [['airlock.yaml', 7, '', /invalid YAML/]],
  },
  {
    name: 'duplicate key',
    yaml: `${HEAD}spec:\n  images: [a]\n  images: [b]\n`,
    want: [['airlock.yaml', 7, '', /invalid YAML: Map keys must be unique/]],
  },
  {
    name: 'two documents',
    yaml: `${HEAD}spec: {}\n---\n${HEAD}spec: {}\n`,
    want: [['airlock.yaml', 6, '', /expected exactly one YAML document, found 2/]],
  },
];

for (const c of cases) {
  test(`rejects: ${c.name}`, async () => {
    const file = await fixture({ 'airlock.yaml': c.yaml, ...c.extra });
    const problems = await problemsOf(file);
    const got = problems.map((p) => [path.basename(p.file), p.line, p.path, p.message]);
    assert.equal(problems.length, c.want.length, `problems: ${JSON.stringify(got, null, 1)}`);
    c.want.forEach(([f, line, keyPath, re], i) => {
      const p = problems[i]!;
      assert.equal(path.basename(p.file), f, formatProblem(p));
      assert.equal(p.line, line, formatProblem(p));
      assert.equal(p.path, keyPath, formatProblem(p));
      assert.match(p.message, re, formatProblem(p));
      assert.match(formatProblem(p), new RegExp(`^\\S*${f.replace('.', '\\.')}:${line}:\\d+: `));
    });
  });
}

test('several problems in one file are all reported, in line order', async () => {
  const file = await fixture({
    'airlock.yaml': `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: BAD
spec:
  platforms: [linux]
  images:
    - nginx:-x
    - quay.io/ok/app:1
  files:
    - url: https://e.org/a
  opensearch:
    version: "2"
    plugins: []
  falco:
    drivers:
      version: 8.1.0+driver
      kind: module
      kernels: [{target: debian, kernelRelease: "6.1"}]
`,
  });
  const problems = await problemsOf(file);
  assert.deepEqual(
    problems.map((p) => [p.line, p.path]),
    [
      [4, 'metadata.name'],
      [6, 'spec.platforms[0]'],
      [8, 'spec.images[0]'],
      [11, 'spec.files[0]'],
      [13, 'spec.opensearch.version'],
      [14, 'spec.opensearch.plugins'],
      [18, 'spec.falco.drivers.kind'],
      [19, 'spec.falco.drivers.kernels[0]'],
    ],
  );
});

test('an unreadable manifest is an error naming the file', async () => {
  const dir = await tempDir();
  const problems = await problemsOf(path.join(dir, 'nope.yaml'));
  assert.equal(problems.length, 1);
  assert.match(formatProblem(problems[0]!), /nope\.yaml:1:1: cannot read the manifest: ENOENT/);
});

test('control characters in any free-text field are refused, each once, at its file:line', async () => {
  const file = await fixture({
    'airlock.yaml': `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: ok
  version: "1.0\\ncontainerd_insecure_registries: [evil.example]"
vars:
  TAB: "a\\tb"
spec:
  images:
    - "quay.io/a/b:1\\e[2K"
    - quay.io/ok/app:1
  artifacts: ["ghcr.io/a/b:1\\u2028x"]
  files:
    - url: "https://e.org/a\\nb"
      sha256: ${SHA}
  falco:
    drivers:
      version: 8.1.0+driver
      kernels: [{target: "deb\\Nian", kernelRelease: "6.1", kernelVersion: "1"}]
`,
  });
  const problems = await problemsOf(file);
  assert.deepEqual(
    problems.map((p) => [p.line, p.path]),
    [
      [5, 'metadata.version'],
      [7, 'vars.TAB'],
      [10, 'spec.images[0]'],
      [12, 'spec.artifacts[0]'],
      [14, 'spec.files[0].url'],
      [19, 'spec.falco.drivers.kernels[0].target'],
    ],
    problems.map(formatProblem).join('\n'),
  );
  assert.match(formatProblem(problems[0]!), /airlock\.yaml:5:\d+: metadata\.version: contains the control character \\n at character 4; keep it on one line/);
  assert.match(problems[2]!.message, /control character \\x1b at character 14/);
  assert.match(problems[3]!.message, /control character \\u\{2028\}/);
  assert.match(problems[5]!.message, /control character \\x85/);
});

test('the CLI refuses a manifest whose version holds a newline: exit 2, naming file:line', async () => {
  const file = await fixture({ 'airlock.yaml': 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: ok\n  version: |\n    1.0\n    containerd_insecure_registries: [evil.example]\nspec:\n  images: [quay.io/ok/app:1]\n' });
  const r = await runAirlock(['build', file, '--dry-run']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /airlock\.yaml:5:\d+: metadata\.version: contains the control character \\n at character 4/);
});

test('choosing the legacy eBPF probe is a warning naming file:line: gone from falcoctl 0.13 and Falco 0.44', async () => {
  const yaml = (kind: string) =>
    `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: ok}\nspec:\n  falco:\n    drivers:\n      repoUrl: http://127.0.0.1:9/driver\n      version: 8.1.0+driver\n      kind: ${kind}\n      kernels: [{target: debian, kernelRelease: "6.1", kernelVersion: "1"}]\n`;
  const plan = await loadManifest(await fixture({ 'airlock.yaml': yaml('ebpf') }));
  assert.equal(plan.warnings?.length, 1);
  assert.match(plan.warnings?.[0] ?? '', /^\S*airlock\.yaml:9:\d+: spec\.falco\.drivers\.kind: .*legacy eBPF probe.*gone from falcoctl 0\.13 and Falco 0\.44/);
  assert.deepEqual((await loadManifest(await fixture({ 'airlock.yaml': yaml('kmod') }))).warnings ?? [], []);
  const r = await runAirlock(['build', await fixture({ 'airlock.yaml': yaml('ebpf') }), '--dry-run', '--cache', await tempDir()]);
  assert.match(r.stderr, /warning: \S*airlock\.yaml:9:\d+: spec\.falco\.drivers\.kind: .*gone from falcoctl 0\.13/);
});
