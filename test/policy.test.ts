// The signature policy file (SPEC §9): loaded with every problem at once,
// file:line and a hint; keys made by openssl; the real Sigstore public-good
// trusted root; which rule applies to which image.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadManifest } from '../src/manifest/load.js';
import { formatProblem } from '../src/manifest/problems.js';
import { loadPolicy, parsePolicy, type PolicyFiles } from '../src/policy/load.js';
import { ruleFor, repositoryOf } from '../src/policy/match.js';
import { PolicyError } from '../src/policy/problems.js';
import type { Policy } from '../src/policy/types.js';
import { makeTempDir, removeTempDir } from './support/proc.js';

const PUBLIC_GOOD = path.resolve(import.meta.dirname, 'fixtures/sigstore/trusted_root.public-good.json');

function openssl(...args: string[]): Buffer {
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A key pair made by openssl; returns the public key PEM and the private key PEM. */
function opensslKey(dir: string, name: string, algorithm: string, ...opts: string[]): { pub: string; priv: string } {
  const priv = path.join(dir, `${name}.key`);
  openssl('genpkey', '-algorithm', algorithm, ...opts.flatMap((o) => ['-pkeyopt', o]), '-out', priv);
  const pub = path.join(dir, `${name}.pub`);
  openssl('pkey', '-in', priv, '-pubout', '-out', pub);
  return { pub, priv };
}

/** sha256 of the SPKI DER, as openssl computes it. */
function opensslFingerprint(pub: string): string {
  const der = openssl('pkey', '-pubin', '-in', pub, '-outform', 'DER');
  return `sha256:${execFileSync('sha256sum', { input: der }).toString().split(' ')[0] ?? ''}`;
}

const made: string[] = [];
after(() => Promise.all(made.map(removeTempDir)));

async function fixture(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await makeTempDir('airlock-policy-');
  made.push(dir);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  return dir;
}

async function problemsOf(file: string, options = {}): Promise<string[]> {
  try {
    await loadPolicy(file, options);
  } catch (err) {
    assert.ok(err instanceof PolicyError, `expected a PolicyError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err.problems.map((p) => formatProblem({ ...p, file: path.basename(p.file) }));
  }
  assert.fail('the policy was accepted');
}

const SPEC_EXAMPLE = `apiVersion: airlock/v1
kind: SignaturePolicy
trustedRoot: trusted_root.json    # Sigstore trusted root: Fulcio CAs, Rekor keys, CT log keys, TSAs
keys: { welkin: keys/welkin-cosign.pub }
rules:                            # the first rule whose pattern matches the source reference applies
  - images: ["registry.k8s.io/**"]
    keyless: { issuer: "https://accounts.google.com",
               subject: "krel-trust@k8s-releng-prod.iam.gserviceaccount.com" }   # or subjectRegExp
  - images: ["ghcr.io/falcosecurity/**"]
    keyless: { issuer: "https://token.actions.githubusercontent.com",
               subjectRegExp: "^https://github\\\\.com/falcosecurity/" }
  - images: ["registry.example.com/team/**"]
    key: welkin
    mode: warn                    # enforce (default) | warn
default: warn                     # images no rule matches: enforce (= refuse) | warn | skip
`;

test('the SPEC example loads with the real public-good trusted root; keys made by openssl (P-256, P-384, RSA, Ed25519) load with the SPKI fingerprint openssl computes', async () => {
  const dir = await fixture({ 'policy.yaml': '', 'trusted_root.json': '' });
  await mkdir(path.join(dir, 'keys'));
  const keys = {
    welkin: opensslKey(path.join(dir, 'keys'), 'welkin-cosign', 'EC', 'ec_paramgen_curve:P-256'),
    p384: opensslKey(path.join(dir, 'keys'), 'p384', 'EC', 'ec_paramgen_curve:P-384'),
    rsa: opensslKey(path.join(dir, 'keys'), 'rsa', 'RSA', 'rsa_keygen_bits:3072'),
    ed: opensslKey(path.join(dir, 'keys'), 'ed', 'ED25519'),
  };
  execFileSync('cp', [PUBLIC_GOOD, path.join(dir, 'trusted_root.json')]);
  const text = SPEC_EXAMPLE.replace('keys: { welkin: keys/welkin-cosign.pub }', 'keys: { welkin: keys/welkin-cosign.pub, p384: keys/p384.pub, rsa: keys/rsa.pub, ed: ./keys/ed.pub }');
  await writeFile(path.join(dir, 'policy.yaml'), text);
  // Loaded from another working directory: paths are relative to the policy, not to where airlock runs.
  const policy = await loadPolicy(path.join(dir, 'policy.yaml'));

  assert.equal(policy.default, 'warn');
  assert.equal(policy.rules.length, 3);
  const [k8s, falco, team] = policy.rules;
  assert.deepEqual(k8s?.identity, { kind: 'keyless', issuer: 'https://accounts.google.com', subject: 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com' });
  assert.equal(k8s?.mode, 'enforce');
  assert.equal(falco?.identity.kind === 'keyless' && falco.identity.subjectRegExp?.source, '^(?:^https:\\/\\/github\\.com\\/falcosecurity\\/)$');
  assert.equal(team?.mode, 'warn');
  assert.equal(team?.identity.kind === 'key' && team.identity.name, 'welkin');
  assert.equal(team?.identity.kind === 'key' && team.identity.fingerprint, opensslFingerprint(keys.welkin.pub));
  assert.deepEqual(
    [...policy.keys.values()].map((k) => [k.name, k.type, k.fingerprint]),
    [
      ['welkin', 'ecdsa P-256', opensslFingerprint(keys.welkin.pub)],
      ['p384', 'ecdsa P-384', opensslFingerprint(keys.p384.pub)],
      ['rsa', 'rsa 3072', opensslFingerprint(keys.rsa.pub)],
      ['ed', 'ed25519', opensslFingerprint(keys.ed.pub)],
    ],
  );
  // The bytes travel in the bundle: kept as read, with their digest.
  assert.equal(policy.source.bytes.toString(), text);
  assert.equal(policy.trustedRoot?.source.sha256, 'sha256:6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66');
  assert.equal((policy.trustedRoot?.json.certificateAuthorities as unknown[]).length, 2);
  assert.match(policy.keys.get('welkin')?.source.sha256 ?? '', /^sha256:[0-9a-f]{64}$/);
  // The SPEC's own falco expression reads as a prefix but must match the whole subject: said, not refused.
  assert.equal(policy.warnings.length, 1);
  assert.match(policy.warnings[0] ?? '', /policy\.yaml:11:\d+: rules\[1\]\.keyless\.subjectRegExp: must match the whole subject.*end it with "\.\*"/);
});

test('the example in docs/policy.md loads, with no warning', async () => {
  const doc = await readFile(path.resolve(import.meta.dirname, '../docs/policy.md'), 'utf8');
  const example = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1] ?? '';
  const dir = await fixture({ 'policy.yaml': example, 'trusted_root.json': await readFile(PUBLIC_GOOD) });
  await mkdir(path.join(dir, 'keys'));
  opensslKey(path.join(dir, 'keys'), 'welkin-cosign', 'EC', 'ec_paramgen_curve:P-256');
  const policy = await loadPolicy(path.join(dir, 'policy.yaml'));
  assert.deepEqual(policy.warnings, []);
  const falco = policy.rules[1]?.identity;
  assert.ok(falco?.kind === 'keyless' && falco.subjectRegExp);
  assert.ok(falco.subjectRegExp.test('https://github.com/falcosecurity/falco/.github/workflows/release.yaml@refs/tags/0.39.0'));
  assert.ok(!falco.subjectRegExp.test('https://github.com/evil/x?https://github.com/falcosecurity/'));
});

test('a policy carried with its keys and trusted root (entries, not files beside it) loads the same, and a missing entry is named', async () => {
  const dir = await fixture({});
  const key = opensslKey(dir, 'k', 'EC', 'ec_paramgen_curve:P-384');
  const text = Buffer.from(
    'apiVersion: airlock/v1\nkind: SignaturePolicy\ntrustedRoot: trusted_root.json\nkeys: { k: keys/k.pub, gone: keys/gone.pub }\nrules:\n  - images: ["quay.io/**"]\n    key: k\n',
  );
  const entries = new Map([
    ['policy/keys/k.pub', await readFile(key.pub)],
    ['policy/trusted_root.json', await readFile(PUBLIC_GOOD)],
  ]);
  const files: PolicyFiles = {
    read: async (rel, bound) => {
      const name = path.posix.join('policy', rel);
      const bytes = entries.get(name);
      if (!bytes) throw new Error(`the bundle carries no ${name}`);
      assert.ok(bytes.length <= bound.max);
      return { file: name, bytes };
    },
  };
  const problems = await parsePolicy({ file: 'policy/policy.yaml', display: 'bundle:policy/policy.yaml', bytes: text }, files).then(
    () => [],
    (err: PolicyError) => err.problems.map(formatProblem),
  );
  assert.deepEqual(problems, ['bundle:policy/policy.yaml:4:30: keys.gone: the bundle carries no policy/keys/gone.pub']);
  const policy = await parsePolicy({ file: 'policy/policy.yaml', display: 'bundle:policy/policy.yaml', bytes: Buffer.from(text.toString().replace(', gone: keys/gone.pub', '')) }, files);
  assert.equal(policy.keys.get('k')?.fingerprint, opensslFingerprint(key.pub));
  assert.equal(policy.keys.get('k')?.source.file, 'policy/keys/k.pub');
  assert.equal(policy.trustedRoot?.source.sha256, 'sha256:6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66');
});

test('the default for images no rule matches is enforce when the policy does not say', async () => {
  const dir = await fixture({
    'p.yaml': 'apiVersion: airlock/v1\nkind: SignaturePolicy\nkeys: { k: k.pub }\nrules:\n  - images: ["quay.io/x/*"]\n    key: k\n',
  });
  opensslKey(dir, 'k', 'ED25519');
  const policy = await loadPolicy(path.join(dir, 'p.yaml'));
  assert.equal(policy.default, 'enforce');
  assert.equal(policy.trustedRoot, undefined);
  assert.deepEqual(ruleFor(policy, 'docker.io/library/nginx:1.27'), { index: 'default', mode: 'enforce' });
});

test('every mistake in a policy is reported at once, at its line, with what to write instead', async () => {
  const dir = await fixture({
    'trusted_root.json': await readFile(PUBLIC_GOOD),
    'p.yaml': [
      'apiVersion: airlock/v1', //                                         1
      'kind: SignaturePolicy', //                                          2
      'trustedRoot: trusted_root.json', //                                 3
      'keys: { good: good.pub, priv: good.key, small: small.pub, p521: p521.pub, cert: cert.pem, none: missing.pub }', // 4
      'rules:', //                                                         5
      '  - images: ["registry.k8s.io/pause:3.10", "ghcr.io/x@sha256:' + 'a'.repeat(64) + '"]', // 6
      '    keyless: { issuer: "https://accounts.google.com", subject: a, subjectRegExp: b }', // 7
      '  - images: ["ghcr.io/**"]', //                                     8
      '    keyless: { issuer: "http://token.actions.githubusercontent.com", subjectRegexp: "x" }', // 9
      '  - images: ["ghcr.io/a/**"]', //                                   10
      '    keyless: { issuer: "https://x.example", subjectRegExp: "(unclosed" }', // 11
      '  - images: ["quay.io/a/b?", "nginx", "docker.io/nginx", "quay.io/a**"]', // 12
      '    key: godo', //                                                  13
      '  - images: ["quay.io/x/**"]', //                                   14
      '    key: good', //                                                  15
      '    keyless: { issuer: "https://x.example", subject: s }', //       16
      '  - images: ["quay.io/y/**"]', //                                   17
      '    mode: audit', //                                                18
      '  - images: ["quay.io/z/\\tq"]', //                                 19
      '    key: good', //                                                  20
      'default: deny', //                                                  21
      '',
    ].join('\n'),
  });
  opensslKey(dir, 'good', 'EC', 'ec_paramgen_curve:P-256');
  opensslKey(dir, 'small', 'RSA', 'rsa_keygen_bits:1024');
  opensslKey(dir, 'p521', 'EC', 'ec_paramgen_curve:P-521');
  openssl('req', '-x509', '-key', path.join(dir, 'good.key'), '-subj', '/CN=t', '-days', '1', '-out', path.join(dir, 'cert.pem'));
  const problems = await problemsOf(path.join(dir, 'p.yaml'));
  const expect: [RegExp, string][] = [
    [/^p\.yaml:4:\d+: keys\.priv: .*good\.key is a private key; .*give the \.pub file/, 'private key'],
    [/^p\.yaml:4:\d+: keys\.small: .*small\.pub is an RSA key of 1024 bits; at least 2048/, 'small RSA'],
    [/^p\.yaml:4:\d+: keys\.p521: .*p521\.pub is an ECDSA key on secp521r1; cosign keys are on P-256 or P-384/, 'P-521'],
    [/^p\.yaml:4:\d+: keys\.cert: .*cert\.pem is a certificate, not a public key/, 'certificate'],
    [/^p\.yaml:4:\d+: keys\.none: cannot read .*missing\.pub \(.*missing\.pub\): no such file; paths in a policy are relative to the policy file/, 'missing key file'],
    [/^p\.yaml:6:\d+: rules\[0\]\.images\[0\]: a pattern matches the repository, not a tag; drop ":3\.10"/, 'tag'],
    [/^p\.yaml:6:\d+: rules\[0\]\.images\[1\]: a pattern matches the repository, not a digest; drop "@sha256:a+"/, 'digest'],
    [/^p\.yaml:7:\d+: rules\[0\]\.keyless: has both subject and subjectRegExp/, 'both subjects'],
    [/^p\.yaml:9:\d+: rules\[1\]\.keyless\.subjectRegexp: unknown key "subjectRegexp"; did you mean "subjectRegExp"\?/, 'misspelt key'],
    [/^p\.yaml:9:\d+: rules\[1\]\.keyless\.issuer: "http:\/\/token\.actions\.githubusercontent\.com" is not an https:\/\/ URL/, 'http issuer'],
    [/^p\.yaml:11:\d+: rules\[2\]\.keyless\.subjectRegExp: is not a regular expression: .*Unterminated group/, 'bad regexp'],
    [/^p\.yaml:12:\d+: rules\[3\]\.images\[0\]: "\?" is not allowed in a pattern: only "\*" \(within one segment\) and "\*\*"/, '?'],
    [/^p\.yaml:12:\d+: rules\[3\]\.images\[1\]: "nginx" has no registry host; write it in full, e\.g\. "docker\.io\/library\/nginx"/, 'no host'],
    [/^p\.yaml:12:\d+: rules\[3\]\.images\[2\]: Docker Hub's official images are docker\.io\/library\/NAME; write "docker\.io\/library\/nginx"/, 'docker hub'],
    [/^p\.yaml:12:\d+: rules\[3\]\.images\[3\]: "\*\*" must be a whole segment/, '** in a segment'],
    [/^p\.yaml:13:\d+: rules\[3\]\.key: names the key "godo", which keys does not list; did you mean "good"\?/, 'unknown key name'],
    [/^p\.yaml:14:\d+: rules\[4\]: has both keyless and key/, 'both identities'],
    [/^p\.yaml:17:\d+: rules\[5\]: names no identity; add keyless/, 'no identity'],
    [/^p\.yaml:18:\d+: rules\[5\]\.mode: must be one of "enforce", "warn", not "audit"/, 'mode'],
    [/^p\.yaml:19:\d+: rules\[6\]\.images\[0\]: contains the control character \\t at character 11; keep it on one line/, 'control character'],
    [/^p\.yaml:21:\d+: default: must be one of "enforce", "warn", "skip", not "deny"/, 'default'],
  ];
  for (const [re, what] of expect) assert.ok(problems.some((p) => re.test(p)), `${what}: no problem matches ${re}\n${problems.join('\n')}`);
  assert.equal(problems.length, expect.length, problems.join('\n'));
  // In reading order, so the person fixes them top to bottom.
  const lines = problems.map((p) => Number(p.split(':')[1]));
  assert.deepEqual(lines, [...lines].sort((a, b) => a - b));
});

test('a keyless rule without a trusted root, a trusted root that is not one, and --trusted-root given instead', async () => {
  const keyless = 'rules:\n  - images: ["ghcr.io/**"]\n    keyless: { issuer: "https://token.actions.githubusercontent.com", subject: "https://github.com/a/b/.github/workflows/r.yaml@refs/heads/main" }\n';
  const dir = await fixture({
    'none.yaml': `apiVersion: airlock/v1\nkind: SignaturePolicy\n${keyless}`,
    'wrong.yaml': `apiVersion: airlock/v1\nkind: SignaturePolicy\ntrustedRoot: targets.json\n${keyless}`,
    'targets.json': JSON.stringify({ signed: { _type: 'targets' }, signatures: [] }),
  });
  assert.deepEqual(await problemsOf(path.join(dir, 'none.yaml')), [
    'none.yaml:5:14: rules[0].keyless: a keyless rule needs the Sigstore trusted root: add trustedRoot: trusted_root.json (relative to the policy)',
  ]);
  const wrong = await problemsOf(path.join(dir, 'wrong.yaml'));
  assert.equal(wrong.length, 2, wrong.join('\n'));
  assert.match(wrong[0] ?? '', /^wrong\.yaml:3:14: trustedRoot: .*targets\.json has mediaType none, not "application\/vnd\.dev\.sigstore\.trustedroot\+json;version=0\.1"/);
  assert.match(wrong[1] ?? '', /lists no certificateAuthorities and no tlogs/);
  // Given on the command line (inside), it wins over what the policy names.
  const policy = await loadPolicy(path.join(dir, 'wrong.yaml'), { trustedRoot: PUBLIC_GOOD });
  assert.equal(policy.trustedRoot?.source.file, PUBLIC_GOOD);
  const none = await loadPolicy(path.join(dir, 'none.yaml'), { trustedRoot: PUBLIC_GOOD });
  assert.equal(none.rules[0]?.identity.kind, 'keyless');
});

test('a FIFO, a huge file or JSON nested too deep as trustedRoot is refused without reading it whole', async () => {
  const dir = await fixture({
    'p.yaml': 'apiVersion: airlock/v1\nkind: SignaturePolicy\ntrustedRoot: root.json\nrules: []\n',
    'deep.yaml': 'apiVersion: airlock/v1\nkind: SignaturePolicy\ntrustedRoot: deep.json\nrules: []\n',
    'big.yaml': 'apiVersion: airlock/v1\nkind: SignaturePolicy\ntrustedRoot: big.json\nrules: []\n',
    'deep.json': '['.repeat(100_000),
  });
  execFileSync('mkfifo', [path.join(dir, 'root.json')]);
  execFileSync('truncate', ['-s', '5G', path.join(dir, 'big.json')]);
  // A FIFO with no writer would block a plain read forever; this returns.
  const fifo = await problemsOf(path.join(dir, 'p.yaml'));
  assert.equal(fifo.length, 1);
  assert.match(fifo[0] ?? '', /^p\.yaml:3:\d+: trustedRoot: root\.json \(.*root\.json\) is a FIFO \(named pipe\), not a regular file/);
  const big = await problemsOf(path.join(dir, 'big.yaml'));
  assert.match(big[0] ?? '', /^big\.yaml:3:\d+: trustedRoot: big\.json \(.*big\.json\) is 5368709120 bytes, more than a Sigstore trusted root may be/);
  const deep = await problemsOf(path.join(dir, 'deep.yaml'));
  assert.match(deep[0] ?? '', /^deep\.yaml:3:\d+: trustedRoot: .*deep\.json nests deeper than 16 levels/);
});

test('a policy file that is not one: a FIFO, YAML syntax, two documents, not a map', async () => {
  const dir = await fixture({ 'bad.yaml': 'rules: [\n', 'two.yaml': 'a: 1\n---\nb: 2\n', 'list.yaml': '- a\n' });
  execFileSync('mkfifo', [path.join(dir, 'fifo.yaml')]);
  assert.match((await problemsOf(path.join(dir, 'fifo.yaml')))[0] ?? '', /cannot read the signature policy: .*is a FIFO/);
  assert.match((await problemsOf(path.join(dir, 'bad.yaml')))[0] ?? '', /^bad\.yaml:\d+:\d+: invalid YAML/);
  assert.match((await problemsOf(path.join(dir, 'two.yaml')))[0] ?? '', /^two\.yaml:2:1: expected exactly one YAML document, found 2/);
  assert.match((await problemsOf(path.join(dir, 'list.yaml')))[0] ?? '', /the policy must be a map/);
});

test('which rule applies: * within a segment, ** across any number, Docker Hub normalized, tags and digests ignored, first match wins, else default', async () => {
  const dir = await fixture({
    'p.yaml': [
      'apiVersion: airlock/v1',
      'kind: SignaturePolicy',
      'keys: { k: k.pub }',
      'rules:',
      '  - { images: ["registry.k8s.io/**"], key: k }', // 0
      '  - { images: ["ghcr.io/falcosecurity/falco*"], key: k }', // 1
      '  - { images: ["ghcr.io/falcosecurity/*"], key: k, mode: warn }', // 2
      '  - { images: ["docker.io/library/*", "docker.io/bitnami/**/redis"], key: k }', // 3
      '  - { images: ["*.example.com/team/*"], key: k }', // 4
      '  - { images: ["Localhost:5000/**"], key: k }', // 5
      'default: skip',
      '',
    ].join('\n'),
  });
  opensslKey(dir, 'k', 'EC', 'ec_paramgen_curve:P-256');
  const policy: Policy = await loadPolicy(path.join(dir, 'p.yaml'));
  const which = (ref: string) => ruleFor(policy, ref).index;
  const table: [string, number | 'default'][] = [
    ['registry.k8s.io/pause:3.10', 0],
    ['registry.k8s.io/sig-storage/csi-provisioner:v5.1.0', 0],
    ['registry.k8s.io/a/b/c@sha256:' + 'a'.repeat(64), 0],
    ['k8s.gcr.io/pause:3.10', 'default'],
    ['registry.k8s.io.evil.example/pause', 'default'],
    ['ghcr.io/falcosecurity/falco:0.39.0', 1], // first match wins over rule 2
    ['ghcr.io/falcosecurity/falcoctl:0.10.0', 1],
    ['ghcr.io/falcosecurity/falcosidekick', 1],
    ['ghcr.io/falcosecurity/plugins/k8smeta', 'default'], // * stays within one segment
    ['ghcr.io/falcosecurity/driver-loader', 2],
    ['nginx', 3],
    ['nginx:1.27@sha256:' + 'b'.repeat(64), 3],
    ['index.docker.io/library/nginx', 3],
    ['docker.io/library/nginx', 3],
    ['bitnami/redis:7', 3], // ** matches zero segments
    ['docker.io/bitnami/charts/redis', 3],
    ['bitnami/postgresql', 'default'],
    ['registry.example.com/team/app:v1', 4],
    ['registry.example.com/team/sub/app', 'default'],
    ['example.com/team/app', 'default'], // "*." needs something before the dot
    ['localhost:5000/x/y', 5], // hosts compared without case
  ];
  assert.deepEqual(
    table.map(([ref]) => [ref, which(ref)]),
    table,
  );
  assert.deepEqual(ruleFor(policy, 'quay.io/x'), { index: 'default', mode: 'skip' });
  const hit = ruleFor(policy, 'ghcr.io/falcosecurity/driver-loader');
  assert.ok(hit.index === 2 && 'rule' in hit && hit.rule.mode === 'warn');
  assert.equal(repositoryOf('nginx:1.27'), 'docker.io/library/nginx');
});

test('the Welkin policy in docs/signatures.md loads with no warning, leaves no Welkin image to the default, and each rule takes its publisher\'s release signer and no other', async () => {
  const doc = await readFile(path.resolve(import.meta.dirname, '../docs/signatures.md'), 'utf8');
  const policies = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '').filter((b) => b.includes('kind: SignaturePolicy'));
  assert.equal(policies.length, 1, 'docs/signatures.md holds one complete policy');
  const text = policies[0] ?? '';
  const dir = await fixture({ 'policy.yaml': text, 'trusted_root.json': await readFile(PUBLIC_GOOD) });
  // Every key file the policy names, made here by openssl: cert-manager's is RSA (its real one is RSA 4096 in KMS), the others ECDSA P-256.
  const keyDir = path.join(dir, 'made');
  await mkdir(keyDir);
  await mkdir(path.join(dir, 'keys'));
  const named = [...text.matchAll(/^\s+[\w.-]+: (keys\/[\w.-]+)/gm)].map((m) => m[1] ?? '');
  assert.deepEqual(named, ['keys/cert-manager-pubkey-2021-09-20.pem', 'keys/tekton.pub', 'keys/welkin-review.pub']);
  for (const [n, file] of named.entries()) {
    const key = file.includes('cert-manager') ? opensslKey(keyDir, `k${n}`, 'RSA', 'rsa_keygen_bits:2048') : opensslKey(keyDir, `k${n}`, 'EC', 'ec_paramgen_curve:P-256');
    await writeFile(path.join(dir, file), await readFile(key.pub));
  }
  const policy = await loadPolicy(path.join(dir, 'policy.yaml'));
  assert.deepEqual(policy.warnings, []);
  assert.equal(policy.default, 'enforce');

  // What the doc promises: no image or artifact of the Welkin manifests falls to the default.
  const root = path.resolve(import.meta.dirname, '..');
  const refs: string[] = [];
  for (const m of ['manifests/welkin-sc.yaml', 'manifests/welkin-wc.yaml']) {
    for (const item of (await loadManifest(path.join(root, m))).items) if (item.kind !== 'file') refs.push(item.ref);
  }
  assert.ok(refs.length > 80, `read ${refs.length} references`);
  assert.deepEqual(refs.filter((r) => ruleFor(policy, r).index === 'default'), []);

  const gh = 'https://token.actions.githubusercontent.com';
  const wf = (repo: string, file: string, tag: string) => `https://github.com/${repo}/.github/workflows/${file}@refs/tags/${tag}`;
  // Real Welkin references, the rule the doc's table gives them, and the signer their release workflow has.
  const table: [string, number, 'enforce' | 'warn', string, string][] = [
    ['registry.k8s.io/defaultbackend-amd64:1.5', 0, 'warn', 'https://accounts.google.com', 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com'],
    ['registry.k8s.io/ingress-nginx/controller:v1.13.3', 1, 'enforce', 'https://accounts.google.com', 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com'],
    ['registry.k8s.io/dns/k8s-dns-node-cache:1.25.0', 1, 'enforce', 'https://accounts.google.com', 'krel-trust@k8s-releng-prod.iam.gserviceaccount.com'],
    ['docker.io/falcosecurity/falco:0.41.3-debian', 2, 'enforce', gh, wf('falcosecurity/falco', 'reusable_publish_docker.yaml', '0.41.3')],
    ['falcosecurity/falco-driver-loader:0.41.3', 2, 'enforce', gh, wf('falcosecurity/falco', 'reusable_publish_docker.yaml', '0.41.3')],
    ['docker.io/falcosecurity/falcoctl:0.11.2', 3, 'enforce', gh, wf('falcosecurity/falcoctl', 'docker-image.yaml', 'v0.11.2')],
    ['docker.io/falcosecurity/falcosidekick:2.31.1', 4, 'enforce', gh, wf('falcosecurity/falcosidekick', 'release.yml', '2.31.1')],
    ['ghcr.io/falcosecurity/rules/falco-rules:4.0.0', 5, 'enforce', gh, wf('falcosecurity/rules', 'release.yaml', 'falco-rules-4.0.0')],
    ['ghcr.io/falcosecurity/plugins/plugin/container:0.3.1', 6, 'enforce', gh, wf('falcosecurity/plugins', 'reusable-publish-oci-artifacts.yaml', 'plugins/container/v0.3.1')],
    ['mirror.gcr.io/aquasec/trivy:0.66.0', 7, 'enforce', gh, wf('aquasecurity/trivy', 'reusable-release.yaml', 'v0.66.0')],
    ['mirror.gcr.io/aquasec/trivy-operator:0.29.0', 8, 'enforce', gh, wf('aquasecurity/trivy-operator', 'release.yaml', 'v0.29.0')],
    ['ghcr.io/aquasecurity/node-collector:0.3.1', 9, 'warn', gh, wf('aquasecurity/k8s-node-collector', 'release.yaml', 'v0.3.1')],
    ['ghcr.io/dexidp/dex:v2.44.0', 10, 'enforce', gh, wf('dexidp/dex', 'artifacts.yaml', 'v2.44.0')],
    ['ghcr.io/kubereboot/kured:1.20.0', 11, 'enforce', gh, wf('kubereboot/kured', 'on-tag.yaml', '1.20.0')],
    ['quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0', 12, 'enforce', gh, wf('prometheus-operator/prometheus-operator', 'publish.yaml', 'v0.85.0')],
    ['ghcr.io/kyverno/kyverno-cli:v1.13.4', 13, 'warn', gh, wf('kyverno/kyverno', 'release.yaml', 'v1.13.4')],
    ['quay.io/jetstack/cert-manager-controller:v1.18.3', 14, 'enforce', 'key', 'cert-manager'],
    [`ghcr.io/tektoncd/pipeline/controller-10a3e32792f33651396d02b6855a6e36:v1.1.0@sha256:${'7'.repeat(64)}`, 15, 'warn', 'key', 'tekton'],
    ['docker.io/goharbor/harbor-core:v2.13.1', 18, 'warn', 'key', 'welkin-review'],
    ['quay.io/prometheus/prometheus:v3.6.0', 18, 'warn', 'key', 'welkin-review'],
    ['cgr.dev/chainguard/busybox@sha256:19f02276bf8dbdd62f069b922f10c65262cc34b710eea26ff928129a736be791', 16, 'warn', gh, 'https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main'],
    ['ghcr.io/aquasecurity/trivy-db:2', 18, 'warn', 'key', 'welkin-review'],
  ];
  const accepts = (identity: Policy['rules'][number]['identity'], issuer: string, subject: string) =>
    identity.kind === 'key'
      ? issuer === 'key' && identity.name === subject
      : identity.issuer === issuer && (identity.subject !== undefined ? identity.subject === subject : identity.subjectRegExp?.test(subject) === true);
  for (const [ref, index, mode, issuer, subject] of table) {
    const hit = ruleFor(policy, ref);
    assert.ok(hit.index === index && 'rule' in hit, `${ref}: rule ${String(hit.index)}, expected ${index}`);
    assert.equal(hit.rule.mode, mode, ref);
    assert.ok(accepts(hit.rule.identity, issuer, subject), `${ref}: rule ${index} does not take ${subject}`);
    if (hit.rule.identity.kind === 'key') continue;
    // Not a branch or pull-request build, not another repository of the organisation, not a look-alike.
    for (const wrong of [
      subject.replace(/@refs\/tags\/.*/, '@refs/heads/main'),
      subject.replace(/@refs\/tags\/.*/, '@refs/pull/1/merge'),
      subject.replace('https://github.com/', 'https://github.com/evil/x/?'),
      subject.replace(/workflows\/[^@]+@/, 'workflows/other.yaml@'),
      subject.replace(/^https:\/\/github\.com\/[^/]+\/[^/]+\//, 'https://github.com/falcosecurity/evil/'),
    ].filter((w) => w !== subject)) {
      assert.ok(!accepts(hit.rule.identity, issuer, wrong), `${ref}: rule ${index} takes ${wrong}`);
    }
    assert.ok(!accepts(hit.rule.identity, 'https://accounts.example.com', subject), `${ref}: any issuer`);
  }
  assert.deepEqual(ruleFor(policy, 'docker.io/library/nginx:1.27'), { index: 'default', mode: 'enforce' });
});
