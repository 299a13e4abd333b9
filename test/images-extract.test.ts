import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from './support/proc.js';
import { runAirlock } from './support/cli.js';

const RENDERED = `# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    spec:
      initContainers:
        - name: wait
          image: busybox:1.36
      containers:
        - name: web
          image: "nginx:1.27"
        - name: sidecar
          image: quay.io/prometheus/node-exporter:v1.9.1
---
apiVersion: batch/v1
kind: CronJob
metadata: { name: backup }
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: backup
              image: ghcr.io/elastisys/rclone-sync:1.72.0
          initContainers:
            - name: init
              image: docker.io/library/busybox:1.36
---
# A HelmRelease carrying chart values: image: at depth, as a string and as a values map.
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: tekton }
spec:
  values:
    controller:
      deployment:
        image: ghcr.io/tektoncd/pipeline/controller:v1.1.0@sha256:72ba947187317aee83b8b6ba510b17375bede4ce062e366cd0162515e0f7d5f2
    webhook:
      image:
        registry: quay.io
        repository: jetstack/cert-manager-webhook
        tag: v1.18.3
    exporter:
      image:
        repository: prometheuscommunity/elasticsearch-exporter
        tag: 1.10
    disabled:
      image: null
---
apiVersion: v1
kind: ConfigMap
metadata: { name: empty }
data: {}
---
`;

const NORMALIZED = [
  'docker.io/library/busybox:1.36',
  'docker.io/library/nginx:1.27',
  'docker.io/prometheuscommunity/elasticsearch-exporter:1.10',
  'ghcr.io/elastisys/rclone-sync:1.72.0',
  'ghcr.io/tektoncd/pipeline/controller:v1.1.0@sha256:72ba947187317aee83b8b6ba510b17375bede4ce062e366cd0162515e0f7d5f2',
  'quay.io/jetstack/cert-manager-webhook:v1.18.3',
  'quay.io/prometheus/node-exporter:v1.9.1',
];

async function writeTemp(name: string, text: string): Promise<string> {
  const dir = await makeTempDir('airlock-extract-');
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

test('images extract: every image: value at any depth, sorted and unique, normalized', async () => {
  const file = await writeTemp('sc.yaml', RENDERED);
  const r = await runAirlock(['images', 'extract', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), NORMALIZED);
});

test('images extract --as-written keeps references as written, sorted and unique', async () => {
  const file = await writeTemp('sc.yaml', RENDERED);
  const r = await runAirlock(['images', 'extract', '--as-written', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    'busybox:1.36',
    'docker.io/library/busybox:1.36',
    'ghcr.io/elastisys/rclone-sync:1.72.0',
    'ghcr.io/tektoncd/pipeline/controller:v1.1.0@sha256:72ba947187317aee83b8b6ba510b17375bede4ce062e366cd0162515e0f7d5f2',
    'nginx:1.27',
    'prometheuscommunity/elasticsearch-exporter:1.10',
    'quay.io/jetstack/cert-manager-webhook:v1.18.3',
    'quay.io/prometheus/node-exporter:v1.9.1',
  ]);
});

test('images extract reads several files and standard input', async () => {
  const a = await writeTemp('a.yaml', 'spec: { containers: [ { image: "alpine:3.20" } ] }\n');
  const b = await writeTemp('b.yaml', 'image: alpine:3.20\n---\nimage: quay.io/x/y:1\n');
  const r = await runAirlock(['images', 'extract', a, '-', b], 'containers:\n  - image: registry.k8s.io/pause:3.9\n');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), ['docker.io/library/alpine:3.20', 'quay.io/x/y:1', 'registry.k8s.io/pause:3.9']);
});

test('images extract: unparsable YAML is reported with file:line, exit 2', async () => {
  const good = await writeTemp('good.yaml', 'image: alpine:3.20\n');
  const bad = await writeTemp('bad.yaml', 'kind: Pod\n---\nspec:\n  containers:\n    - image: [oops\n');
  const r = await runAirlock(['images', 'extract', good, bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: invalid YAML`));
  // What could be read is still printed.
  assert.equal(r.stdout, 'docker.io/library/alpine:3.20\n');
});

test('images extract: an invalid reference is named with file:line, exit 2', async () => {
  const file = await writeTemp('x.yaml', 'a:\n  b:\n    image: Quay.io/UPPER/case:1\n');
  const r = await runAirlock(['images', 'extract', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /x\.yaml:3:12: image: invalid image reference "Quay.io\/UPPER\/case:1": repository name must be lowercase/);
});

test('images extract: a missing file is an error naming it', async () => {
  const r = await runAirlock(['images', 'extract', '/nonexistent/rendered.yaml']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\/nonexistent\/rendered\.yaml:1:1: cannot read: ENOENT/);
});

test('images extract on `kubectl get pods -A -o yaml`: what the pod specs name, init and ephemeral containers included; not the statuses', async () => {
  // What the runtime reports in status.*Statuses[].image is no reference to carry: an image ID
  // (sha256:…) for an image pulled by digest, or another tag the node holds for the same image.
  const list = await readFile(path.join(import.meta.dirname, 'fixtures', 'kubectl-get-pods-A.yaml'));
  const r = await runAirlock(['images', 'extract', '-'], list);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), [
    'docker.io/falcosecurity/falco:0.41.3-debian',
    'docker.io/falcosecurity/falcoctl:0.11.2',
    'docker.io/goharbor/harbor-core:v2.13.1',
    'docker.io/library/busybox:1.36',
    'docker.io/library/busybox:1.37',
    'ghcr.io/elastisys/backup-postgres:1.5.0',
    'quay.io/prometheus/node-exporter:v1.9.1',
    'registry.k8s.io/ingress-nginx/controller-chroot:v1.13.3@sha256:1b044f6dcac3afbb59e05d98463f1dec6f3d3fb99940bc12ca5d80270358e3bd',
  ]);
  // A bare image ID anywhere is not a reference either (it is not docker.io/library/sha256:…).
  const id = await runAirlock(['images', 'extract', '-'], `containers:\n  - image: sha256:${'0f'.repeat(32)}\n  - image: alpine:3.20\n`);
  assert.equal(id.code, 0, id.stderr);
  assert.equal(id.stdout, 'docker.io/library/alpine:3.20\n');
});
