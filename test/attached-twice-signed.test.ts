// An image signed twice with cosign's tag scheme: one `.sig` manifest, two
// layers, and (the same payload signed by two keys) both layers the same blob
// with different annotations. The bundle counts that blob once, as every
// reader of attached[] does; the bundle must still verify.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BundleIndex } from '../src/bundle/format.js';
import { runAirlock } from './support/cli.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, MediaTypes, Seeder } from './support/seed.js';
import { tagFor } from './support/seed-attached.js';
import { entry, readTar } from './support/tarball.js';

let reg: TestRegistry;
let work: string;

before(async () => {
  reg = await startRegistry();
  work = await makeTempDir('airlock-twice-signed-');
});
after(async () => {
  await reg?.stop();
  await removeTempDir(work);
});

it('a .sig whose two signatures share one payload blob: attached size counts it once, and the bundle verifies', async () => {
  const seeder = new Seeder({ url: reg.url });
  const image = await seeder.pushImage('team/app', '1', { layers: [await makeLayer('twice-signed', 2048)], format: 'oci' });
  const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': `${reg.host}/team/app` }, image: { 'docker-manifest-digest': image.digest }, type: 'cosign container image signature' }, optional: null }));
  const layer = await seeder.pushBlob('team/app', payload, 'application/vnd.dev.cosign.simplesigning.v1+json');
  const config = await seeder.pushBlob('team/app', Buffer.from('{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}'), MediaTypes.ociConfig);
  const sig = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config,
      layers: ['key one', 'key two'].map((k) => ({ ...layer, annotations: { 'dev.cosignproject.cosign/signature': Buffer.from(k).toString('base64') } })),
    }),
  );
  await seeder.pushManifest('team/app', tagFor(image.digest, 'sig'), sig, MediaTypes.ociManifest);

  const m = path.join(work, 'm.yaml');
  await writeFile(m, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: twice\nspec:\n  images:\n    - ${reg.host}/team/app:1\n`);
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  const out = path.join(work, 'b.tar');
  const b = await runAirlock(['build', m, '-o', out, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache')]);
  assert.equal(b.code, 0, b.stderr);
  const index = JSON.parse(entry(await readTar(out), 'bundle.json').data.toString()) as BundleIndex;
  const sigDigest = `sha256:${createHash('sha256').update(sig).digest('hex')}`;
  assert.deepEqual(
    index.attached?.map((a) => [a.digest, a.size]),
    [[sigDigest, sig.length + config.size + layer.size]],
  );
  const v = await runAirlock(['verify', out, '--pub', path.join(work, 'k.pub')]);
  assert.equal(v.code, 0, v.stderr);
});
