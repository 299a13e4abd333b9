// The inside's countersignature (SPEC §9 "Inside", `unpack --countersign KEY`): one cosign
// tag-scheme signature made with an inside key, pushed to a real distribution registry, read back
// with the raw API, skopeo and openssl (not only airlock's own verifier).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Http } from '../src/http/client.js';
import { RegistryClient } from '../src/registry/client.js';
import { fingerprint, loadPrivateKey, loadPublicKey } from '../src/sign/keys.js';
import { verifyAttachedSignature } from '../src/sign/publisher/verify.js';
import { cosignPayload, CountersignError } from '../src/sign/countersign.js';
import { countersign } from '../src/unpack/countersign.js';
import { runAirlock } from './support/cli.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { AttachedTypes, pushRealSignature, realSignedManifest, tagFor } from './support/seed-attached.js';
import { makeLayer, MediaTypes, Seeder, sha256, type Descriptor } from './support/seed.js';
import { skopeoOk } from './support/skopeo.js';
import { run } from './support/tools.js';

const SIG_ANN = 'dev.cosignproject.cosign/signature';

let reg: TestRegistry;
let seeder: Seeder;
let http: Http;
let client: RegistryClient;
let dir: string;
/** The inside key, from `airlock keygen`. */
let inside: { key: KeyObject; pub: KeyObject; pubFile: string; fingerprint: string };

before(async () => {
  reg = await startRegistry();
  seeder = new Seeder({ url: reg.url });
  http = new Http({ retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
  client = new RegistryClient(reg.host, http);
  dir = await makeTempDir('airlock-countersign-');
  const r = await runAirlock(['keygen', '--out', path.join(dir, 'inside')], undefined, { env: { AIRLOCK_KEY_PASSWORD: '' } });
  assert.equal(r.code, 0, r.stderr);
  const pub = await loadPublicKey(path.join(dir, 'inside.pub'));
  inside = { key: await loadPrivateKey(path.join(dir, 'inside.key'), ''), pub, pubFile: path.join(dir, 'inside.pub'), fingerprint: fingerprint(pub) };
});

after(async () => {
  await http?.close();
  await seeder?.close();
  await reg?.stop();
  if (dir) await removeTempDir(dir);
});

interface Layer extends Descriptor {
  annotations: Record<string, string>;
}
interface SigManifest {
  schemaVersion: number;
  mediaType: string;
  config: Descriptor;
  layers: Layer[];
}

async function seedImage(repo: string): Promise<string> {
  const img = await seeder.pushImage(repo, 'v1', { layers: [await makeLayer(repo, 2048)], format: 'oci' });
  return img.digest;
}

/** The manifest at `ref`, as the registry serves it. */
async function manifestAt(repo: string, ref: string): Promise<{ bytes: Buffer; digest: string; json: SigManifest }> {
  const r = await seeder.getManifest(repo, ref);
  assert.equal(r.status, 200, `GET ${repo}:${ref}: HTTP ${r.status}`);
  return { bytes: r.body, digest: sha256(r.body), json: JSON.parse(r.body.toString('utf8')) as SigManifest };
}

async function blobAt(repo: string, digest: string): Promise<Buffer> {
  const r = await seeder.fetch('GET', `v2/${repo}/blobs/${digest}`);
  assert.equal(r.status, 200, `GET blob ${repo}@${digest}: HTTP ${r.status}`);
  assert.equal(sha256(r.body), digest);
  return r.body;
}

let n = 0;
/** `openssl dgst -sha256 -verify PUB -signature SIG.der PAYLOAD`: true when openssl says Verified OK. */
async function opensslVerifies(pubFile: string, payload: Buffer, signatureBase64: string): Promise<boolean> {
  const base = path.join(dir, `check-${n++}`);
  await writeFile(`${base}.payload`, payload);
  await writeFile(`${base}.sig`, Buffer.from(signatureBase64, 'base64'));
  const r = await run('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', `${base}.sig`, `${base}.payload`]);
  return r.code === 0 && r.stdout.toString('utf8').trim() === 'Verified OK';
}

/** A publisher's key made with openssl: [private PEM file, public PEM file]. */
function opensslKey(name: string): { keyFile: string; pubFile: string } {
  const keyFile = path.join(dir, `${name}.key`);
  const pubFile = path.join(dir, `${name}.pub`);
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile], { stdio: 'pipe' });
  execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-out', pubFile]);
  return { keyFile, pubFile };
}

/** base64 of `openssl dgst -sha256 -sign KEY` over `payload`: a DER ECDSA signature with a random nonce. */
async function opensslSign(keyFile: string, payload: Buffer): Promise<string> {
  const file = path.join(dir, `payload-${n++}`);
  await writeFile(file, payload);
  return execFileSync('openssl', ['dgst', '-sha256', '-sign', keyFile, file]).toString('base64');
}

const payloadText = (ref: string, digest: string) =>
  `{"critical":{"identity":{"docker-reference":"${ref}"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":null}`;

/** Pushes a `.sig` as cosign writes it (config with zero times) holding `layers`, by its tag. */
async function pushSig(repo: string, digest: string, layers: Array<{ payload: Buffer; signature: string }>, format: 'oci' | 'docker' = 'oci'): Promise<{ bytes: Buffer; digest: string; config: Buffer }> {
  const descs = [];
  for (const l of layers) descs.push({ ...(await seeder.pushBlob(repo, l.payload, AttachedTypes.simplesigning)), annotations: { [SIG_ANN]: l.signature } });
  const config = Buffer.from(JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: descs.map(() => ({ created: '0001-01-01T00:00:00Z' })), os: '', rootfs: { type: 'layers', diff_ids: descs.map((d) => d.digest) }, config: {} }));
  const configDesc = await seeder.pushBlob(repo, config, format === 'oci' ? MediaTypes.ociConfig : MediaTypes.dockerConfig);
  const mediaType = format === 'oci' ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config: configDesc, layers: descs }));
  const d = await seeder.pushManifest(repo, tagFor(digest, 'sig'), bytes, mediaType);
  return { bytes, digest: d.digest, config };
}

describe('countersign: a cosign tag-scheme signature made with the inside key', () => {
  it('the payload names a repository (HOST/PATH) and a sha256 digest, nothing else', () => {
    const d = `sha256:${'ab'.repeat(32)}`;
    assert.equal(cosignPayload('registry.local:5000/team/app', d).toString('utf8'), payloadText('registry.local:5000/team/app', d));
    for (const bad of ['registry.local/team/app:1.0', `registry.local/team/app@${d}`, 'app', 'registry.local/Team/app', 'registry.local/team/app"}']) {
      assert.throws(() => cosignPayload(bad, d), /not a repository name/, bad);
    }
    assert.throws(() => cosignPayload('registry.local/team/app', 'sha256:abc'), /not a sha256 digest/);
  });

  it('pushes a .sig whose payload names the digest and the target repository, verified by openssl and by the publisher verifier; skopeo reads it', async () => {
    const repo = 'apps/one';
    const digest = await seedImage(repo);
    const ref = `${reg.host}/${repo}`;
    const r = await countersign(client, repo, digest, ref, inside.key);
    const tag = `sha256-${digest.slice(7)}.sig`;
    assert.equal(r.tag, tag);
    assert.equal(r.status, 'pushed');

    const m = await manifestAt(repo, tag);
    assert.equal(r.manifestDigest, m.digest);
    assert.equal(m.json.schemaVersion, 2);
    assert.equal(m.json.mediaType, MediaTypes.ociManifest);
    assert.equal(m.json.config.mediaType, MediaTypes.ociConfig);
    assert.equal(m.json.layers.length, 1);
    const layer = m.json.layers[0]!;
    assert.equal(layer.mediaType, AttachedTypes.simplesigning);
    assert.deepEqual(Object.keys(layer.annotations), [SIG_ANN]);

    // (b) cosign's simplesigning payload, byte for byte.
    const payload = await blobAt(repo, layer.digest);
    assert.equal(payload.toString('utf8'), payloadText(ref, digest));
    assert.equal(layer.size, payload.length);

    // (a) openssl, not airlock, says the signature is the inside key's over exactly these bytes; one flipped byte and it is not.
    const sig = layer.annotations[SIG_ANN]!;
    assert.equal(await opensslVerifies(inside.pubFile, payload, sig), true);
    const flipped = Buffer.from(payload);
    flipped[10] = flipped[10]! ^ 1;
    assert.equal(await opensslVerifies(inside.pubFile, flipped, sig), false);
    const verdict = verifyAttachedSignature({ format: 'tag-scheme', payload, annotations: layer.annotations }, { digest, identity: { kind: 'key', key: inside.pub, name: 'inside', fingerprint: inside.fingerprint } });
    assert.deepEqual(verdict, { ok: true, signer: { kind: 'key', name: 'inside', fingerprint: inside.fingerprint }, format: 'tag-scheme' });
    // Signed for this digest only.
    const other = `sha256:${'0'.repeat(64)}`;
    const wrong = verifyAttachedSignature({ format: 'tag-scheme', payload, annotations: layer.annotations }, { digest: other, identity: { kind: 'key', key: inside.pub, name: 'inside', fingerprint: inside.fingerprint } });
    assert.equal(wrong.ok, false);

    // The config is cosign's: the layer as its diff_id, one history entry, zero times.
    const config = JSON.parse((await blobAt(repo, m.json.config.digest)).toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(config, { architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} });

    // skopeo, an independent client, reads the same manifest and config.
    const raw = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${ref}:${tag}`]);
    assert.equal(sha256(raw), m.digest);
    const cfg = await skopeoOk(['inspect', '--config', '--raw', '--tls-verify=false', `docker://${ref}:${tag}`]);
    assert.equal(sha256(cfg), m.json.config.digest);
  });

  it('a rerun changes nothing: the tag keeps its manifest, status present', async () => {
    const repo = 'apps/rerun';
    const digest = await seedImage(repo);
    const ref = `${reg.host}/${repo}`;
    const first = await countersign(client, repo, digest, ref, inside.key);
    const before = await manifestAt(repo, first.tag);
    const again = await countersign(client, repo, digest, ref, inside.key);
    assert.deepEqual(again, { tag: first.tag, manifestDigest: before.digest, status: 'present' });
    const afterwards = await manifestAt(repo, first.tag);
    assert.equal(afterwards.digest, before.digest);
    assert.equal(afterwards.json.layers.length, 1);
  });

  it('a signature by the inside key made elsewhere (openssl, another nonce) counts as present: verified, not compared byte for byte', async () => {
    const repo = 'apps/elsewhere';
    const digest = await seedImage(repo);
    const ref = `${reg.host}/${repo}`;
    const keyFile = path.join(dir, 'inside.key');
    const payload = Buffer.from(payloadText(ref, digest));
    const seeded = await pushSig(repo, digest, [{ payload, signature: await opensslSign(keyFile, payload) }]);
    const r = await countersign(client, repo, digest, ref, inside.key);
    assert.deepEqual(r, { tag: tagFor(digest, 'sig'), manifestDigest: seeded.digest, status: 'present' });
    assert.equal((await manifestAt(repo, r.tag)).digest, seeded.digest);
  });

  it('the same payload signed by another key is not ours: a layer is added', async () => {
    const repo = 'apps/samepayload';
    const digest = await seedImage(repo);
    const ref = `${reg.host}/${repo}`;
    const pub = opensslKey('samepayload');
    const payload = Buffer.from(payloadText(ref, digest));
    await pushSig(repo, digest, [{ payload, signature: await opensslSign(pub.keyFile, payload) }]);
    const r = await countersign(client, repo, digest, ref, inside.key);
    assert.equal(r.status, 'pushed');
    const m = await manifestAt(repo, r.tag);
    assert.equal(m.json.layers.length, 2);
    assert.equal(m.json.layers[0]!.digest, m.json.layers[1]!.digest);
    assert.equal(await opensslVerifies(pub.pubFile, payload, m.json.layers[0]!.annotations[SIG_ANN]!), true);
    assert.equal(await opensslVerifies(inside.pubFile, payload, m.json.layers[1]!.annotations[SIG_ANN]!), true);
  });

  it("a publisher's .sig (made with openssl) keeps its layer byte for byte and gains ours, appended; the config gains a diff_id and history entry", async () => {
    const repo = 'apps/published';
    const digest = await seedImage(repo);
    const ref = `${reg.host}/${repo}`;
    const publisher = opensslKey('publisher');
    const theirPayload = Buffer.from(payloadText('ghcr.io/publisher/app', digest));
    const seeded = await pushSig(repo, digest, [{ payload: theirPayload, signature: await opensslSign(publisher.keyFile, theirPayload) }]);
    const theirs = (JSON.parse(seeded.bytes.toString('utf8')) as SigManifest).layers[0]!;

    const r = await countersign(client, repo, digest, ref, inside.key);
    assert.equal(r.status, 'pushed');
    const m = await manifestAt(repo, r.tag);
    assert.equal(r.manifestDigest, m.digest);
    assert.equal(m.json.layers.length, 2);
    assert.deepEqual(m.json.layers[0], theirs);
    assert.deepEqual(await blobAt(repo, theirs.digest), theirPayload);
    assert.equal(await opensslVerifies(publisher.pubFile, theirPayload, m.json.layers[0]!.annotations[SIG_ANN]!), true);
    const ours = m.json.layers[1]!;
    const ourPayload = await blobAt(repo, ours.digest);
    assert.equal(ourPayload.toString('utf8'), payloadText(ref, digest));
    assert.equal(await opensslVerifies(inside.pubFile, ourPayload, ours.annotations[SIG_ANN]!), true);
    // Each signature verifies with its own key only.
    const pubKey = createPublicKey(await readFile(publisher.pubFile));
    const id = (key: KeyObject, name: string) => ({ kind: 'key' as const, key, name, fingerprint: fingerprint(key) });
    assert.equal(verifyAttachedSignature({ format: 'tag-scheme', payload: theirPayload, annotations: m.json.layers[0]!.annotations }, { digest, identity: id(pubKey, 'publisher') }).ok, true);
    assert.equal(verifyAttachedSignature({ format: 'tag-scheme', payload: ourPayload, annotations: ours.annotations }, { digest, identity: id(inside.pub, 'inside') }).ok, true);
    assert.equal(verifyAttachedSignature({ format: 'tag-scheme', payload: ourPayload, annotations: ours.annotations }, { digest, identity: id(pubKey, 'publisher') }).ok, false);

    const config = JSON.parse((await blobAt(repo, m.json.config.digest)).toString('utf8')) as { history: unknown[]; rootfs: { diff_ids: string[] } };
    assert.deepEqual(config.rootfs.diff_ids, [theirs.digest, ours.digest]);
    assert.equal(config.history.length, 2);

    // A rerun finds ours among theirs.
    const again = await countersign(client, repo, digest, ref, inside.key);
    assert.deepEqual(again, { tag: r.tag, manifestDigest: m.digest, status: 'present' });
  });

  it("the real captured cosign .sig (keyless, Rekor bundle) keeps its layer with every annotation; a Docker-typed .sig stays Docker-typed", async () => {
    const repo = 'apps/real';
    const real = realSignedManifest();
    const seeded = await pushRealSignature(seeder, repo, real.digest);
    const theirs = (JSON.parse(seeded.manifest.toString('utf8')) as SigManifest).layers[0]!;
    const r = await countersign(client, repo, real.digest, `${reg.host}/${repo}`, inside.key);
    assert.equal(r.status, 'pushed');
    const m = await manifestAt(repo, r.tag);
    assert.deepEqual(m.json.layers[0], theirs);
    assert.ok(Object.keys(theirs.annotations).length > 1);
    assert.equal(m.json.layers.length, 2);

    const drepo = 'apps/dockertyped';
    const ddigest = await seedImage(drepo);
    const publisher = opensslKey('dockertyped');
    const p = Buffer.from(payloadText('quay.io/publisher/app', ddigest));
    await pushSig(drepo, ddigest, [{ payload: p, signature: await opensslSign(publisher.keyFile, p) }], 'docker');
    const d = await countersign(client, drepo, ddigest, `${reg.host}/${drepo}`, inside.key);
    const dm = await manifestAt(drepo, d.tag);
    assert.equal(dm.json.mediaType, MediaTypes.dockerManifest);
    assert.equal(dm.json.config.mediaType, MediaTypes.dockerConfig);
    assert.equal(dm.json.layers.length, 2);
  });

  it('a foreign manifest at the .sig tag (an image, an index) is refused naming the tag; nothing is overwritten', async () => {
    const repo = 'apps/foreign';
    const digest = await seedImage(repo);
    const ref = `${reg.host}/${repo}`;
    const tag = tagFor(digest, 'sig');
    const image = await seeder.pushImage(repo, tag, { layers: [await makeLayer('foreign', 512)], format: 'oci' });
    await assert.rejects(countersign(client, repo, digest, ref, inside.key), (err: Error) => {
      assert.ok(err instanceof CountersignError);
      assert.match(err.message, new RegExp(`${reg.host}/${repo}:${tag}`.replace(/[.]/g, '\\.')));
      assert.match(err.message, /not a cosign signature manifest/);
      return true;
    });
    assert.equal((await manifestAt(repo, tag)).digest, image.digest);

    const repo2 = 'apps/foreignindex';
    const digest2 = await seedImage(repo2);
    const tag2 = tagFor(digest2, 'sig');
    // distribution takes an index only over children in the same repository.
    const child = await seeder.pushImage(repo2, undefined, { layers: [await makeLayer('foreign child', 512)], format: 'oci' });
    const index = await seeder.pushIndex(repo2, tag2, [child.descriptor], 'oci');
    await assert.rejects(countersign(client, repo2, digest2, `${reg.host}/${repo2}`, inside.key), (err: Error) => err instanceof CountersignError && err.message.includes(tag2) && /index/.test(err.message));
    assert.equal((await manifestAt(repo2, tag2)).digest, index.digest);
  });

  it('an encrypted inside key (AIRLOCK_KEY_PASSWORD) signs', async () => {
    const r = await runAirlock(['keygen', '--out', path.join(dir, 'locked')], undefined, { env: { AIRLOCK_KEY_PASSWORD: 'correct horse' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(await readFile(path.join(dir, 'locked.key'), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
    const saved = process.env.AIRLOCK_KEY_PASSWORD;
    process.env.AIRLOCK_KEY_PASSWORD = 'correct horse';
    let key: KeyObject;
    try {
      key = await loadPrivateKey(path.join(dir, 'locked.key'));
    } finally {
      if (saved === undefined) delete process.env.AIRLOCK_KEY_PASSWORD;
      else process.env.AIRLOCK_KEY_PASSWORD = saved;
    }
    const repo = 'apps/locked';
    const digest = await seedImage(repo);
    const c = await countersign(client, repo, digest, `${reg.host}/${repo}`, key);
    const layer = (await manifestAt(repo, c.tag)).json.layers[0]!;
    assert.equal(await opensslVerifies(path.join(dir, 'locked.pub'), await blobAt(repo, layer.digest), layer.annotations[SIG_ANN]!), true);
    assert.equal(await opensslVerifies(inside.pubFile, await blobAt(repo, layer.digest), layer.annotations[SIG_ANN]!), false);
  });
});
