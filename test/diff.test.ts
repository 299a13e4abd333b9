// `airlock diff OLD NEW` between two bundles built from two states of a real
// upstream, between their bundle.json files, and with a receipt from a real
// unpack as OLD. The bytes NEW carries are checked against a sum over what
// the seeder pushed, computed without airlock.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './support/cli.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, pseudoRandomBytes, Seeder, type PushedImage } from './support/seed.js';
import { entry, readTar } from './support/tarball.js';

interface DiffJson {
  old: { kind: string; form: string; name: string; sha256: string; signatureChecked: boolean; signed?: boolean };
  new: { kind: string; form: string; signatureChecked: boolean };
  images: { added: Array<{ ref: string; digest: string }>; removed: Array<{ ref: string; digest: string }>; changed: Array<{ ref: string; oldDigest: string; newDigest: string }>; unchanged: number };
  files: { added: unknown[]; removed: unknown[]; changed: Array<{ path: string; oldSha256: string; newSha256: string; oldSize: number; newSize: number }>; unchanged: number };
  carries: { bytes: number; blobs: { count: number; bytes: number }; files: { count: number; bytes: number } };
}

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Bytes of everything one image pushed: manifest, config and the given layers. */
const imageBytes = (img: PushedImage, layers: Buffer[]) => img.manifest.length + img.config.length + layers.reduce((n, l) => n + l.length, 0);

let registry: TestRegistry;
let web: TestFileServer;
let seeder: Seeder;
let work: string;
let key: string;
let pub: string;
let oldBundle: string;
let newBundle: string;
let x1: PushedImage;
let x2: PushedImage;
let z: PushedImage;
let extraLayer: Buffer;
let zLayer: Buffer;
let fileA: Buffer;
let fileB: Buffer;
const ref = (repo: string) => `${registry.host}/${repo}:1`;

function manifest(images: string[], file: Buffer): string {
  return `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: diff-test
  version: "1"
spec:
  images:
${images.map((i) => `    - ${i}\n`).join('')}  files:
    - url: ${web.url}/tools/tool.bin
      path: tools/tool.bin
      sha256: ${hex(file)}
`;
}

async function build(name: string, images: string[], file: Buffer): Promise<string> {
  await writeFile(path.join(web.root, 'tools/tool.bin'), file);
  const m = path.join(work, `${name}.yaml`);
  await writeFile(m, manifest(images, file));
  const out = path.join(work, `${name}.tar`);
  const r = await runAirlock(['build', m, '-o', out, '--key', key, '--cache', path.join(work, 'cache')]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

async function diff(a: string, b: string): Promise<DiffJson> {
  const r = await runAirlock(['diff', a, b, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as DiffJson;
}

before(async () => {
  registry = await startRegistry();
  web = await startFileServer();
  seeder = new Seeder({ url: registry.url });
  work = await makeTempDir('airlock-diff-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  key = path.join(work, 'k.key');
  pub = path.join(work, 'k.pub');
  await mkdir(path.join(web.root, 'tools'));

  // The old state: x:1 and y:1, and a file.
  const base = await makeLayer('x-base', 60_000);
  x1 = await seeder.pushImage('team/x', '1', { layers: [base], format: 'oci' });
  await seeder.pushImage('team/y', '1', { layers: [await makeLayer('y', 30_000)], format: 'docker' });
  fileA = pseudoRandomBytes('tool-a', 20_000);
  oldBundle = await build('old', [ref('team/x'), ref('team/y')], fileA);

  // The new state: x:1 now points at a manifest with one more layer, z:1 is new, y:1 is unchanged, the file changed.
  extraLayer = await makeLayer('x-extra', 25_000);
  x2 = await seeder.pushImage('team/x', '1', { layers: [base, extraLayer], format: 'oci' });
  zLayer = await makeLayer('z', 35_000);
  z = await seeder.pushImage('team/z', '1', { layers: [zLayer], format: 'oci' });
  fileB = pseudoRandomBytes('tool-b', 23_456);
  newBundle = await build('new', [ref('team/x'), ref('team/y'), ref('team/z')], fileB);
});
after(async () => {
  await seeder?.close();
  await registry?.stop();
  await web?.stop();
});

/** What the new state added upstream, summed from the seeder's own bytes. */
const expectedNewBytes = () => imageBytes(x2, [extraLayer]) + imageBytes(z, [zLayer]) + fileB.length;

function assertOldToNew(d: DiffJson): void {
  assert.deepEqual(d.images.added, [{ ref: ref('team/z'), digest: z.digest }]);
  assert.deepEqual(d.images.removed, []);
  assert.deepEqual(d.images.changed, [{ ref: ref('team/x'), oldDigest: x1.digest, newDigest: x2.digest }]);
  assert.equal(d.images.unchanged, 1, 'team/y');
  assert.deepEqual(d.files.added, []);
  assert.deepEqual(d.files.removed, []);
  assert.deepEqual(d.files.changed, [{ path: 'tools/tool.bin', oldSha256: hex(fileA), newSha256: hex(fileB), oldSize: fileA.length, newSize: fileB.length }]);
  assert.equal(d.files.unchanged, 0);
  assert.equal(d.carries.bytes, expectedNewBytes());
  // x2: manifest, config, one layer; z: manifest, config, layer.
  assert.deepEqual(d.carries.blobs, { count: 6, bytes: expectedNewBytes() - fileB.length });
  assert.deepEqual(d.carries.files, { count: 1, bytes: fileB.length });
}

describe('airlock diff', () => {
  it('between two bundles: the changed, added and unchanged images, the changed file, and the bytes NEW carries', async () => {
    const d = await diff(oldBundle, newBundle);
    assertOldToNew(d);
    assert.equal(d.old.kind, 'bundle');
    assert.equal(d.old.form, 'tar');
    assert.equal(d.old.signed, true);
    assert.equal(d.old.signatureChecked, false);
    assert.equal(d.old.sha256, hex(entry(await readTar(oldBundle), 'bundle.json').data));
  });

  it('the text report has sections with counts, old → new digests and sizes, and says the signatures were not checked', async () => {
    const r = await runAirlock(['diff', oldBundle, newBundle]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout;
    assert.match(out, /^OLD {2}bundle .*old\.tar: diff-test 1, created .*; signed, signature not checked/m);
    assert.match(out, /^NEW {2}bundle .*new\.tar: /m);
    assert.match(out, /^images: 1 added, 0 removed, 1 changed, 1 unchanged$/m);
    assert.ok(out.includes(`  added    ${ref('team/z')}  ${z.digest}\n`), out);
    assert.ok(out.includes(`  changed  ${ref('team/x')}  ${x1.digest} → ${x2.digest}\n`), out);
    assert.match(out, /^files: 0 added, 0 removed, 1 changed, 0 unchanged$/m);
    assert.ok(out.includes(`  changed  tools/tool.bin  sha256:${hex(fileA)} → sha256:${hex(fileB)}  (19.5 KiB → 22.9 KiB)`), out);
    assert.ok(out.includes(`(${expectedNewBytes()} bytes) that OLD does not hold: 6 blobs`), out);
  });

  it('the other way round: x goes back, z is removed, and NEW carries only x:1 as it was and the old file', async () => {
    const d = await diff(newBundle, oldBundle);
    assert.deepEqual(d.images.removed, [{ ref: ref('team/z'), digest: z.digest }]);
    assert.deepEqual(d.images.changed, [{ ref: ref('team/x'), oldDigest: x2.digest, newDigest: x1.digest }]);
    assert.equal(d.carries.bytes, x1.manifest.length + x1.config.length + fileA.length, 'the base layer is in both');
  });

  it('a bundle against itself: nothing changed, nothing carried', async () => {
    const d = await diff(newBundle, newBundle);
    assert.deepEqual([d.images.added.length, d.images.removed.length, d.images.changed.length, d.images.unchanged], [0, 0, 0, 3]);
    assert.equal(d.carries.bytes, 0);
  });

  it('bare bundle.json files work as either side, checked like the reader checks them', async () => {
    const oldJson = path.join(work, 'old-bundle.json');
    await writeFile(oldJson, entry(await readTar(oldBundle), 'bundle.json').data);
    const newJson = path.join(work, 'new-bundle.json');
    await writeFile(newJson, entry(await readTar(newBundle), 'bundle.json').data);
    const d = await diff(oldJson, newJson);
    assertOldToNew(d);
    assert.equal(d.old.form, 'bundle.json');
    const text = await runAirlock(['diff', oldJson, newBundle]);
    assert.match(text.stdout, /^OLD {2}bundle\.json .*: diff-test 1, .*signature not checked/m);

    const broken = path.join(work, 'broken-bundle.json');
    const bj = JSON.parse(entry(await readTar(oldBundle), 'bundle.json').data.toString('utf8')) as { blobs: Array<{ digest: string }> };
    (bj.blobs[0] as { digest: string }).digest = 'md5:abc';
    await writeFile(broken, JSON.stringify(bj));
    const r = await runAirlock(['diff', broken, newBundle]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bundle\.json: blob .* has no sha256 digest/);
  });

  it('with a receipt from a real unpack as OLD: the same changes and the same bytes', async () => {
    const target = await startRegistry();
    try {
      const receipt = path.join(work, 'receipt.json');
      const u = await runAirlock(['unpack', oldBundle, '--pub', pub, '--registry', target.host, '--files-dir', await makeTempDir('airlock-files-'), '--receipt', receipt]);
      assert.equal(u.code, 0, u.stderr);
      const d = await diff(receipt, newBundle);
      assertOldToNew(d);
      assert.equal(d.old.kind, 'receipt');
      assert.equal(d.old.sha256, createHash('sha256').update(await readFile(receipt)).digest('hex'));
      const text = await runAirlock(['diff', receipt, newBundle]);
      assert.match(text.stdout, new RegExp(`^OLD {2}receipt .*receipt\\.json: of diff-test 1, created .*, at ${target.host} \\(flat layout\\)`, 'm'));
    } finally {
      await target.stop();
    }
  });

  it('a missing file or one that is no bundle is exit 1; missing arguments exit 2', async () => {
    const missing = await runAirlock(['diff', path.join(work, 'nope.tar'), newBundle]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.tar: no such file/);
    const notBundle = path.join(work, 'not-a-bundle.bin');
    await writeFile(notBundle, pseudoRandomBytes('junk', 2048));
    const junk = await runAirlock(['diff', notBundle, newBundle]);
    assert.equal(junk.code, 1);
    assert.match(junk.stderr, /not-a-bundle\.bin \(read as a bundle tar, as it is not JSON\): tar header at byte 0/);
    assert.equal((await runAirlock(['diff', newBundle])).code, 2);
  });
});
