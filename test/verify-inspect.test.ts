import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { writeEntries } from './support/tamper.js';
import { readTar } from './support/tarball.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let up: Upstream;
let dir: string;
let bundle: string;

before(async () => {
  up = await startUpstream();
  dir = await makeTempDir('airlock-vi-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'other')])).code, 0);
  await writeFile(path.join(dir, 'm.yaml'), up.manifest());
  bundle = path.join(dir, 'b.tar');
  const b = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', bundle, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'c')]);
  assert.equal(b.code, 0, b.stderr);
});
after(async () => up?.stop());

it('verify accepts a good bundle and reports what it checked', async () => {
  const r = await runAirlock(['verify', bundle, '--pub', path.join(dir, 'k.pub')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^OK .*b\.tar: signature valid \(sha256:[a-f0-9]{64}\); 7 images and artifacts, 30 blobs, 3 files, [\d.]+ MiB verified$/m);
  const j = await runAirlock(['verify', bundle, '--pub', path.join(dir, 'k.pub'), '--json']);
  const report = JSON.parse(j.stdout) as { ok: boolean; images: number; files: number; blobs: number; bytes: number };
  assert.deepEqual([report.ok, report.images, report.files, report.blobs], [true, 7, 3, 30]);
});

it('verify with another key, without a key, or on a missing file fails as it should', async () => {
  const other = await runAirlock(['verify', bundle, '--pub', path.join(dir, 'other.pub')]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /does not verify with the public key/);
  const j = await runAirlock(['verify', bundle, '--pub', path.join(dir, 'other.pub'), '--json']);
  assert.equal((JSON.parse(j.stdout) as { ok: boolean }).ok, false);
  assert.equal((await runAirlock(['verify', bundle])).code, 2);
  const missing = await runAirlock(['verify', path.join(dir, 'nope.tar'), '--pub', path.join(dir, 'k.pub')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot open .*nope\.tar: ENOENT/);
  const notKey = await runAirlock(['verify', bundle, '--pub', path.join(dir, 'm.yaml')]);
  assert.equal(notKey.code, 1);
  assert.match(notKey.stderr, /is not a PEM public key/);
});

it('inspect lists images, artifacts with roles, files, sizes, creation and signer without a key', async () => {
  const r = await runAirlock(['inspect', bundle]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^name +test-bundle 1\.0$/m);
  assert.match(r.stdout, /^created +\d{4}-\d\d-\d\dT.* by airlock \d/m);
  assert.match(r.stdout, /^signed +yes, by key sha256:[a-f0-9]{64}/m);
  assert.match(r.stdout, new RegExp(`^  ${up.registry.host}/team/app:1\\.0  ${up.refs.ociIndex.pushed.digest}  [\\d.]+ KiB  \\[linux/amd64, linux/arm64/v8\\]$`, 'm'));
  assert.match(r.stdout, /^images \(5\)$/m);
  assert.match(r.stdout, /^artifacts \(2\)$/m);
  assert.match(r.stdout, new RegExp(`^  ${up.registry.host}/aquasecurity/trivy-db:2  trivy-db  `, 'm'));
  assert.match(r.stdout, /^ {2}falco\/driver\/8\.1\.0\+driver\/x86_64\/falco_debian_6\.1\.0-13-amd64_1\.ko {2}falco-driver {2}87\.9 KiB/m);
  assert.match(r.stdout, /^total [\d.]+ MiB in 30 blobs and 3 files$/m);
  const j = JSON.parse((await runAirlock(['inspect', bundle, '--json'])).stdout) as { signed: boolean; images: unknown[]; files: unknown[]; total: number };
  assert.equal(j.signed, true);
  assert.equal(j.images.length, 7);
});

it('inspect says so when a bundle is not signed', async () => {
  const unsigned = path.join(dir, 'unsigned.tar');
  const entries = await readTar(bundle);
  await writeEntries(unsigned, entries.filter((e) => e.name !== 'bundle.json.sig').map((e) => ({ name: e.name, data: e.data })));
  const r = await runAirlock(['inspect', unsigned]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^signed +NO/m);
});
