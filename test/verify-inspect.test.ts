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

// What a hostile entry name would draw on a terminal if printed raw: erase the line, then a fake success.
const FAKE_OK = '\x1b[2K\rOK b.tar: signature valid\x1b[0m\x9b2K';
/** Characters that must never reach the terminal raw from a bundle. */
const raw = (s: string) => [...s].filter((c) => ['\x1b', '\r', '\x9b', '\u202e', '\u2028'].includes(c));

it('an entry name with terminal escapes reaches verify’s stderr escaped, never raw', async () => {
  const hostile = path.join(dir, 'escape.tar');
  const entries = (await readTar(bundle)).map((e) => ({ name: e.name, data: e.data }));
  await writeEntries(hostile, [...entries, { name: FAKE_OK, data: Buffer.from('x') }]);
  for (const args of [[], ['--json']]) {
    const r = await runAirlock(['verify', hostile, '--pub', path.join(dir, 'k.pub'), ...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(raw(r.stderr + r.stdout), [], 'no ESC, CR or CSI reaches the terminal');
    assert.ok(r.stderr.includes('entry "\\x1b[2K\\rOK b.tar: signature valid\\x1b[0m\\x9b2K" is not named in bundle.json'), r.stderr);
  }
});

it('inspect escapes what an unsigned bundle.json says, in text and in JSON', async () => {
  const hostile = path.join(dir, 'escape-inspect.tar');
  const entries = (await readTar(bundle)).filter((e) => e.name !== 'bundle.json.sig');
  const bj = JSON.parse(entries[0]!.data.toString('utf8')) as { name: string; tool: string };
  bj.name = FAKE_OK;
  bj.tool = 'airlock\u202e1.0\u2028';
  entries[0]!.data = Buffer.from(JSON.stringify(bj));
  await writeEntries(hostile, entries.map((e) => ({ name: e.name, data: e.data })));
  const r = await runAirlock(['inspect', hostile]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(raw(r.stdout), []);
  assert.match(r.stdout, /^name +\\x1b\[2K\\rOK b\.tar: signature valid\\x1b\[0m\\x9b2K 1\.0$/m);
  assert.match(r.stdout, /^created .* by airlock\\u\{202e\}1\.0\\u\{2028\}$/m);
  const j = await runAirlock(['inspect', hostile, '--json']);
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(raw(j.stdout), []);
  const parsed = JSON.parse(j.stdout) as { name: string; tool: string };
  assert.deepEqual([parsed.name, parsed.tool], [bj.name, bj.tool], 'the JSON escapes decode to the same strings');

  const first = path.join(dir, 'escape-first.tar');
  await writeEntries(first, [{ name: FAKE_OK, data: Buffer.from('x') }]);
  const f = await runAirlock(['inspect', first]);
  assert.equal(f.code, 1);
  assert.deepEqual(raw(f.stderr), []);
  assert.match(f.stderr, /the first entry is "\\x1b\[2K\\rOK b\.tar/);
});
