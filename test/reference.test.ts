import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiHost, normalizeReference, parseReference, ReferenceError, familiarReference, shownReference } from '../src/oci/reference.js';

const TEKTON_DIGEST = 'sha256:72ba947187317aee83b8b6ba510b17375bede4ce062e366cd0162515e0f7d5f2';
const D = `sha256:${'a'.repeat(64)}`;

// input → canonical form, as docker/containerd (distribution/reference) would resolve it.
const normalization: Array<[string, string]> = [
  ['nginx', 'docker.io/library/nginx:latest'],
  ['nginx:1.27', 'docker.io/library/nginx:1.27'],
  ['library/nginx', 'docker.io/library/nginx:latest'],
  ['docker.io/nginx', 'docker.io/library/nginx:latest'],
  ['docker.io/library/nginx:1.27', 'docker.io/library/nginx:1.27'],
  ['index.docker.io/library/nginx:1.27', 'docker.io/library/nginx:1.27'],
  ['index.docker.io/nginx', 'docker.io/library/nginx:latest'],
  ['falcosecurity/falco:0.41.3-debian', 'docker.io/falcosecurity/falco:0.41.3-debian'],
  ['quay.io/jetstack/cert-manager-controller:v1.18.3', 'quay.io/jetstack/cert-manager-controller:v1.18.3'],
  ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
  ['registry.k8s.io/pause', 'registry.k8s.io/pause:latest'],
  ['localhost/app', 'localhost/app:latest'],
  ['localhost:5000/app:v1', 'localhost:5000/app:v1'],
  ['127.0.0.1:5000/team/app:v1', '127.0.0.1:5000/team/app:v1'],
  ['[::1]:5000/app:v1', '[::1]:5000/app:v1'],
  ['myregistry:5000/app', 'myregistry:5000/app:latest'],
  ['Registry/app', 'Registry/app:latest'],
  ['ghcr.io/a/b/c/d:1.0', 'ghcr.io/a/b/c/d:1.0'],
  [`nginx@${D}`, `docker.io/library/nginx@${D}`],
  [`quay.io/x/y@${D}`, `quay.io/x/y@${D}`],
  [`nginx:1.27@${D}`, `docker.io/library/nginx:1.27@${D}`],
  // The tag+digest form Welkin's images.yaml uses for Tekton.
  [
    `ghcr.io/tektoncd/pipeline/controller-10a3e32792f33651396d02b6855a6e36:v1.1.0@${TEKTON_DIGEST}`,
    `ghcr.io/tektoncd/pipeline/controller-10a3e32792f33651396d02b6855a6e36:v1.1.0@${TEKTON_DIGEST}`,
  ],
  ['ghcr.io/aquasecurity/trivy-db:2', 'ghcr.io/aquasecurity/trivy-db:2'],
  ['mirror.gcr.io/aquasec/trivy:0.66.0', 'mirror.gcr.io/aquasec/trivy:0.66.0'],
  ['a__b/c.d-e_f:Tag_1.2-x', 'docker.io/a__b/c.d-e_f:Tag_1.2-x'],
  ['xpkg.crossplane.io/crossplane/crossplane:v2.0.2', 'xpkg.crossplane.io/crossplane/crossplane:v2.0.2'],
  ['sub.domain-name.example.com:443/org/app:1', 'sub.domain-name.example.com:443/org/app:1'],
  ['example.com/app:' + 'x'.repeat(128), 'example.com/app:' + 'x'.repeat(128)],
];

for (const [input, want] of normalization) {
  test(`normalizes ${input}`, () => {
    assert.equal(normalizeReference(input), want);
    // Normalizing twice changes nothing.
    assert.equal(normalizeReference(want), want);
  });
}

test('parts of a tag+digest reference', () => {
  const ref = parseReference(`127.0.0.1:5000/team/app:v1@${D}`);
  assert.deepEqual(ref, { registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v1', digest: D });
});

test('a digest-only reference gets no default tag', () => {
  const ref = parseReference(`quay.io/x/y@${D}`);
  assert.equal(ref.tag, undefined);
  assert.equal(ref.digest, D);
});

test('Docker Hub API host and familiar names', () => {
  assert.equal(apiHost('docker.io'), 'registry-1.docker.io');
  assert.equal(apiHost('quay.io'), 'quay.io');
  assert.equal(familiarReference(parseReference('nginx')), 'nginx:latest');
  assert.equal(familiarReference(parseReference('falcosecurity/falco:1')), 'falcosecurity/falco:1');
  assert.equal(familiarReference(parseReference('quay.io/x/y:1')), 'quay.io/x/y:1');
});

// input → words the reason must contain
const invalid: Array<[string, RegExp]> = [
  ['', /empty/],
  ['Nginx', /lowercase/],
  ['quay.io/Org/app', /lowercase/],
  ['nginx:', /empty tag/],
  ['nginx:-bad', /invalid tag/],
  ['nginx:' + 'x'.repeat(129), /invalid tag/],
  ['nginx@sha256:abc', /64/],
  [`nginx@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/],
  ['nginx@', /not a digest/],
  ['quay.io//app', /empty path component/],
  ['quay.io/app/', /empty path component/],
  ['quay.io/', /missing repository/],
  ['quay.io/a..b', /invalid path component/],
  ['quay.io/-app', /invalid path component/],
  ['https://quay.io/app', /scheme/],
  [' nginx', /whitespace/],
  ['ngi nx', /whitespace/],
  ['bad_host.io/app', /invalid registry host/],
  ['a'.repeat(64), /image ID/],
  [`quay.io/${'a/'.repeat(130)}x`, /longer than 255/],
];

for (const [input, reason] of invalid) {
  test(`rejects ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '…' : input)}`, () => {
    assert.throws(
      () => parseReference(input),
      (err: unknown) => err instanceof ReferenceError && reason.test(err.reason) && err.message.includes('invalid image reference'),
    );
  });
}

test('a user name or password written into a reference is refused, and no message repeats it', () => {
  for (const input of ['user:s3cret@registry.example.com/app:1', 'https://user:s3cret@registry.example.com/app:1', 's3cret@registry.example.com/app', 'user:s3cret@registry.example.com']) {
    assert.throws(
      () => parseReference(input),
      (err: unknown) => {
        assert.ok(err instanceof ReferenceError);
        assert.doesNotMatch(err.message, /s3cret/, err.message);
        assert.match(err.message, /\*\*\*@registry\.example\.com.*holds a user name or password.*docker config\.json/);
        return true;
      },
    );
    assert.doesNotMatch(shownReference(input), /s3cret/);
  }
  // A digest is not that: `name@sha256:…` stays as written, in a reference and in a message about it.
  for (const input of [`nginx@${D}`, `registry.example.com/app@${D}`, `registry.example.com/app:1@${D}`]) {
    assert.equal(shownReference(input), input);
    assert.doesNotThrow(() => parseReference(input));
  }
  assert.match(new ReferenceError(`nginx@${D}x`, 'why').message, new RegExp(`"nginx@${D}x"`));
});
