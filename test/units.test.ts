// Small pure pieces whose edge cases are easier to see one by one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChecksumFile } from '../src/fetch/files.js';
import { parseTargetRegistry, hostComponent, planTargets, TargetConflictError } from '../src/bundle/targets.js';
import { parseRange } from '../src/serve/range.js';
import { falcoIndexEntries } from '../src/emit/falco-index.js';
import type { BundleIndex } from '../src/bundle/format.js';

test('checksum files: "<hex>  name", "<hex> *name", bare hex, several lines', () => {
  const url = 'https://e.org/dl/tool-1.0.tar.gz';
  const h256 = 'a'.repeat(64);
  const h512 = 'b'.repeat(128);
  assert.deepEqual(parseChecksumFile(`${h256}  tool-1.0.tar.gz\n`, 'u', url), { algorithm: 'sha256', hex: h256 });
  assert.deepEqual(parseChecksumFile(`${h256} *tool-1.0.tar.gz`, 'u', url), { algorithm: 'sha256', hex: h256 });
  assert.deepEqual(parseChecksumFile(`${h512.toUpperCase()}\n`, 'u', url), { algorithm: 'sha512', hex: h512 });
  assert.deepEqual(parseChecksumFile(`${'c'.repeat(64)}  other.tar.gz\n${h256}  ./tool-1.0.tar.gz\n`, 'u', url), { algorithm: 'sha256', hex: h256 });
  assert.throws(() => parseChecksumFile(`${h256}  other.tar.gz\n`, 'u', url), /has no line for tool-1\.0\.tar\.gz/);
  assert.throws(() => parseChecksumFile('<html>404</html>', 'u', url), /holds no sha256 or sha512/);
  assert.throws(() => parseChecksumFile(`${h256}\n`, 'u', url, 'sha512'), /holds a sha256, but its name says sha512/);
});

test('--registry HOST[:PORT][/PREFIX] and target names', () => {
  assert.deepEqual(parseTargetRegistry('harbor.internal/welkin'), { host: 'harbor.internal', prefix: 'welkin' });
  assert.deepEqual(parseTargetRegistry('127.0.0.1:5000'), { host: '127.0.0.1:5000', prefix: '' });
  assert.deepEqual(parseTargetRegistry('r.local:443/a/b/'), { host: 'r.local:443', prefix: 'a/b' });
  assert.throws(() => parseTargetRegistry('https://r.local'), /without a scheme/);
  assert.throws(() => parseTargetRegistry('r.local/Proj'), /prefix component "Proj"/);
  assert.throws(() => parseTargetRegistry('bad host'), /is not a registry host/);
  assert.equal(hostComponent('127.0.0.1:5000'), '127.0.0.1_5000');
  assert.equal(hostComponent('[::1]:5000'), 'ip6---1_5000');
  assert.equal(hostComponent('[fe80::1]'), 'ip6-fe80--1');
  for (const h of ['[::1]:5000', '[fe80::1]', 'quay.io', 'localhost:5000']) {
    assert.match(hostComponent(h), /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/, `${h} gives a valid path component`);
  }
  const t = { host: 'r.local', prefix: 'p' };
  const B = `sha256:${'b'.repeat(64)}`;
  assert.deepEqual(planTargets([{ ref: 'quay.io/org/app:1', digest: 'sha256:a' }, { ref: `quay.io/org/app@${B}`, digest: B }], t, 'flat').map((x) => [x.repository, x.tag]), [['p/org/app', '1'], ['p/org/app', undefined]]);
  assert.deepEqual(planTargets([{ ref: 'quay.io/org/app:1', digest: 'sha256:a' }], t, 'host').map((x) => x.repository), ['p/quay.io/org/app']);
  assert.throws(
    () => planTargets([{ ref: 'quay.io/prometheus/x:1', digest: 'sha256:a' }, { ref: 'docker.io/prometheus/x:1', digest: 'sha256:b' }], t, 'flat'),
    (e: unknown) => e instanceof TargetConflictError && /quay\.io\/prometheus\/x:1 and docker\.io\/prometheus\/x:1 both land on r\.local\/p\/prometheus\/x:1/.test(e.message),
  );
  // The same image from two places is no conflict.
  assert.equal(planTargets([{ ref: 'quay.io/prometheus/x:1', digest: 'sha256:a' }, { ref: 'docker.io/prometheus/x:1', digest: 'sha256:a' }], t, 'flat').length, 2);
});

test('byte ranges', () => {
  assert.deepEqual(parseRange(undefined, 100), { kind: 'full' });
  assert.deepEqual(parseRange('bytes=0-9', 100), { kind: 'partial', start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=90-500', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-1000', 100), { kind: 'partial', start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=5-4', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=0-1,5-6', 100), { kind: 'full' });
});

test('falcoctl index entries for rules, plugins and plugin rulesets', () => {
  const img = (ref: string, role: 'falco-rules' | 'falco-plugin') => ({ ref, digest: 'sha256:x', mediaType: 'm', kind: 'artifact' as const, role, platforms: [], size: 1 });
  const index = {
    images: [
      img('ghcr.io/falcosecurity/rules/falco-rules:4.0.0', 'falco-rules'),
      img('ghcr.io/falcosecurity/plugins/plugin/k8saudit:0.7.0', 'falco-plugin'),
      img('ghcr.io/falcosecurity/plugins/ruleset/k8saudit:0.7.0', 'falco-rules'),
      { ...img('ghcr.io/aquasecurity/trivy-db:2', 'falco-rules'), role: 'trivy-db' as const },
    ],
  } as unknown as BundleIndex;
  const entries = falcoIndexEntries(index, { host: 'r.local', prefix: 'p' }, 'flat');
  assert.deepEqual(entries.map((e) => [e.name, e.type, e.registry, e.repository]), [
    ['falco-rules', 'rulesfile', 'r.local', 'p/falcosecurity/rules/falco-rules'],
    ['k8saudit', 'plugin', 'r.local', 'p/falcosecurity/plugins/plugin/k8saudit'],
    ['k8saudit-rules', 'rulesfile', 'r.local', 'p/falcosecurity/plugins/ruleset/k8saudit'],
  ]);
  assert.ok(entries.every((e) => !('signature' in e)));
});
