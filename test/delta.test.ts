// Deltas (SPEC §6) against real registries: v1 is built and unpacked with a
// receipt; upstream changes (x:1 gets a new layer on the same base, z:1 is
// added on that base, y:1 is unchanged, the file is unchanged); a delta is
// built against the receipt and one against the v1 bundle. Each carries
// exactly the blobs v1 does not hold, verifies, and unpacks into the target
// that holds v1 (mounting the shared base layer into the new repository);
// into an empty target it stops before pushing anything, naming what is
// missing and which base held it. serve --base serves the bundle delta with
// v1 (every v2 manifest, blob and file, those only v1 holds included), refuses
// to start without it or with a wrong base, and never sends a flipped byte of v1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { parseIndex } from '../src/bundle/reader.js';
import { runAirlock } from './support/cli.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { startServe, type Served } from './support/serve.js';
import { skopeo, skopeoOk } from './support/skopeo.js';
import { ACCEPT_ALL_MANIFESTS, makeLayer, pseudoRandomBytes, Seeder, type PushedImage } from './support/seed.js';
import { flip, rewrite } from './support/tamper.js';
import { entry, readTar } from './support/tarball.js';

interface BundleJson {
  images: Array<{ ref: string; digest: string }>;
  blobs: Array<{ digest: string; size: number; external?: true; from?: { base: number; repository?: string; image?: string } }>;
  files: Array<{ path: string; sha256: string; size: number; external?: true }>;
  bases?: Array<{ kind: string; name: string; version: string; sha256: string }>;
}

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const agent = new Agent();

let upstream: TestRegistry;
let web: TestFileServer;
let seeder: Seeder;
let work: string;
let key: string;
let pub: string;
let v1: string;
let v1Index: BundleJson;
let x2: PushedImage;
let y1: PushedImage;
let z: PushedImage;
let baseLayer: Buffer;
let extraLayer: Buffer;
let zLayer: Buffer;
let fileA: Buffer;
/** The target that holds v1 (unpacked with --receipt), and its file folder. */
let target: TestRegistry;
let files: string;
let receipt: string;
let deltaR: string;
let deltaB: string;
let receiptV2: string;
const ref = (repo: string) => `${upstream.host}/${repo}:1`;

function manifest(images: string[]): string {
  return `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: delta-test
  version: "VERSION"
spec:
  images:
${images.map((i) => `    - ${i}\n`).join('')}  files:
    - url: ${web.url}/tools/tool.bin
      path: tools/tool.bin
      sha256: ${hex(fileA)}
`;
}

async function build(name: string, version: string, images: string[], bases: string[] = []): Promise<{ file: string; stdout: string; stderr: string }> {
  const m = path.join(work, `${name}.yaml`);
  await writeFile(m, manifest(images).replace('VERSION', version));
  const file = path.join(work, `${name}.tar`);
  const r = await runAirlock(['build', m, '-o', file, '--key', key, '--cache', path.join(work, `cache-${name}`), ...bases.flatMap((b) => ['--base', b])], undefined, {
    env: { ...process.env, SOURCE_DATE_EPOCH: '1767225600' },
  });
  assert.equal(r.code, 0, r.stderr);
  return { file, stdout: r.stdout, stderr: r.stderr };
}

async function indexOf(file: string): Promise<BundleJson> {
  return JSON.parse(entry(await readTar(file), 'bundle.json').data.toString('utf8')) as BundleJson;
}

async function headTag(reg: TestRegistry, repo: string, tag: string): Promise<string | undefined> {
  const res = await request(`${reg.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: agent });
  await res.body.dump();
  return res.statusCode === 200 ? (res.headers['docker-content-digest'] as string) : undefined;
}

async function catalog(reg: TestRegistry): Promise<string[]> {
  const res = await request(`${reg.url}/v2/_catalog`, { dispatcher: agent });
  return (JSON.parse(Buffer.from(await res.body.arrayBuffer()).toString('utf8')) as { repositories: string[] }).repositories;
}

/** A target holding v1: unpacked from the v1 bundle (with a receipt when asked). */
async function targetWithV1(receiptFile?: string): Promise<{ reg: TestRegistry; dir: string }> {
  const reg = await startRegistry();
  const dir = await makeTempDir('airlock-delta-files-');
  const u = await runAirlock(['unpack', v1, '--pub', pub, '--registry', reg.host, '--files-dir', dir, ...(receiptFile ? ['--receipt', receiptFile] : [])]);
  assert.equal(u.code, 0, u.stderr);
  return { reg, dir };
}

before(async () => {
  upstream = await startRegistry();
  web = await startFileServer();
  seeder = new Seeder({ url: upstream.url });
  work = await makeTempDir('airlock-delta-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  key = path.join(work, 'k.key');
  pub = path.join(work, 'k.pub');
  await mkdir(path.join(web.root, 'tools'));
  fileA = pseudoRandomBytes('tool-a', 20_000);
  await writeFile(path.join(web.root, 'tools/tool.bin'), fileA);

  // v1: x:1 (a base layer), y:1, and a file.
  baseLayer = await makeLayer('x-base', 60_000);
  await seeder.pushImage('team/x', '1', { layers: [baseLayer], format: 'oci' });
  y1 = await seeder.pushImage('team/y', '1', { layers: [await makeLayer('y', 30_000)], format: 'docker' });
  v1 = (await build('v1', '1', [ref('team/x'), ref('team/y')])).file;
  v1Index = await indexOf(v1);
  receipt = path.join(work, 'receipt-v1.json');
  ({ reg: target, dir: files } = await targetWithV1(receipt));

  // v2 upstream: x:1 gets a layer on the same base, z:1 is new on that base, y:1 and the file are unchanged.
  extraLayer = await makeLayer('x-extra', 25_000);
  x2 = await seeder.pushImage('team/x', '1', { layers: [baseLayer, extraLayer], format: 'oci' });
  zLayer = await makeLayer('z', 35_000);
  z = await seeder.pushImage('team/z', '1', { layers: [baseLayer, zLayer], format: 'oci' });
  const images = [ref('team/x'), ref('team/y'), ref('team/z')];
  deltaR = (await build('delta-r', '2', images, [receipt])).file;
  deltaB = (await build('delta-b', '2', images, [v1])).file;
  receiptV2 = path.join(work, 'receipt-v2.json');
});
after(async () => {
  await seeder?.close();
  await agent.close();
  await target?.stop();
  await upstream?.stop();
  await web?.stop();
});

describe('build --base', () => {
  for (const [name, file, kind] of [
    ['a receipt', () => deltaR, 'receipt'],
    ['the v1 bundle', () => deltaB, 'bundle'],
  ] as const) {
    it(`against ${name}: the tar holds exactly the blobs v1 does not; bundle.json lists all, the rest external, with the base`, async () => {
      const es = await readTar(file());
      const idx = JSON.parse(entry(es, 'bundle.json').data.toString('utf8')) as BundleJson;
      const inV1 = new Set(v1Index.blobs.map((b) => b.digest));
      const fresh = idx.blobs.filter((b) => !inV1.has(b.digest)).map((b) => `blobs/sha256/${b.digest.slice(7)}`);
      assert.deepEqual(
        es.map((e) => e.name).filter((n) => !['bundle.json', 'bundle.json.sig', 'oci-layout', 'index.json'].includes(n)),
        fresh,
        'in bundle.json (tar) order, no files (the file is unchanged)',
      );
      // x2: manifest, config, the new layer; z: manifest, config, its layer.
      assert.equal(fresh.length, 6);
      for (const l of [extraLayer, zLayer]) assert.ok(fresh.includes(`blobs/sha256/${hex(l)}`));
      assert.ok(!fresh.includes(`blobs/sha256/${hex(baseLayer)}`), 'the shared base layer is not carried');
      for (const b of idx.blobs) assert.equal(b.external === true, inV1.has(b.digest), b.digest);
      assert.deepEqual(idx.files.map((f) => f.external), [true]);
      assert.deepEqual(idx.images.map((i) => [i.ref, i.digest]), [
        [ref('team/x'), x2.digest],
        [ref('team/y'), y1.digest],
        [ref('team/z'), z.digest],
      ]);
      const base = kind === 'receipt' ? await readFile(receipt) : entry(await readTar(v1), 'bundle.json').data;
      assert.deepEqual(idx.bases, [{ kind, name: 'delta-test', version: '1', sha256: hex(base) }]);
      const fromBase = idx.blobs.find((b) => b.digest === `sha256:${hex(baseLayer)}`)?.from;
      assert.deepEqual(fromBase, kind === 'receipt' ? { base: 0, repository: 'team/x' } : { base: 0, image: ref('team/x') });
    });
  }

  it('is reproducible with SOURCE_DATE_EPOCH, and the summary says what was left out', async () => {
    const again = await build('delta-r2', '2', [ref('team/x'), ref('team/y'), ref('team/z')], [receipt]);
    assert.equal(hex(await readFile(again.file)), hex(await readFile(deltaR)));
    assert.match(again.stdout, /delta: 4 blobs and 1 files \(.*\) are held by the bases/);
  });

  it('a bare bundle.json base cannot have its signature checked: accepted with a warning', async () => {
    const bj = path.join(work, 'v1-bundle.json');
    await writeFile(bj, entry(await readTar(v1), 'bundle.json').data);
    const r = await build('delta-j', '2', [ref('team/y')], [bj]);
    assert.match(r.stderr, /v1-bundle\.json \(delta-test 1\): a bare bundle\.json, whose signature cannot be checked here; used as it is/);
    // y is unchanged: everything is external, the tar holds bundle.json, its signature and the layout only.
    assert.deepEqual((await readTar(r.file)).map((e) => e.name), ['bundle.json', 'bundle.json.sig', 'oci-layout', 'index.json']);
  });

  it('a base bundle signed with another key, or whose entries do not check out, is used with a warning saying so', async () => {
    assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k2')])).code, 0);
    const m = path.join(work, 'other.yaml');
    await writeFile(m, manifest([ref('team/y')]).replace('VERSION', '2'));
    const other = await runAirlock(['build', m, '-o', path.join(work, 'other.tar'), '--key', path.join(work, 'k2.key'), '--cache', path.join(work, 'cache-other'), '--base', v1]);
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stderr, /v1\.tar \(delta-test 1\): its signature cannot be checked with the public half of --key \(signed with another key, or changed\); used as it is/);

    const cut = path.join(work, 'v1-cut.tar');
    const bytes = await readFile(v1);
    await writeFile(cut, bytes.subarray(0, bytes.length - 4096));
    const r = await build('delta-cut', '2', [ref('team/y')], [cut]);
    assert.match(r.stderr, /v1-cut\.tar \(delta-test 1\): cannot tell which of its images held each blob \(.*\); a delta's unpack looks for those blobs only in the repository/);
    const idx = await indexOf(r.file);
    assert.ok(idx.blobs.every((b) => b.external && b.from?.base === 0 && b.from.image === undefined));
  });

  it('a hostile base is refused before anything is fetched', async () => {
    const bad = path.join(work, 'bad-receipt.json');
    const rec = JSON.parse(await readFile(receipt, 'utf8')) as { blobs: Array<{ digest: string }> };
    rec.blobs[0]!.digest = 'sha256:nothex';
    await writeFile(bad, JSON.stringify(rec));
    const m = path.join(work, 'bad.yaml');
    await writeFile(m, manifest([ref('team/y')]).replace('VERSION', '2'));
    const r = await runAirlock(['build', m, '-o', path.join(work, 'bad.tar'), '--key', key, '--base', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad-receipt\.json/);
  });
});

describe('verify and inspect of a delta', () => {
  it('verify passes and reports the external count (text and --json)', async () => {
    const j = await runAirlock(['verify', deltaR, '--pub', pub, '--json']);
    assert.equal(j.code, 0, j.stderr);
    const report = JSON.parse(j.stdout) as { ok: boolean; external: number; bases: unknown[] };
    assert.equal(report.ok, true);
    assert.equal(report.external, 5, 'x base layer, y manifest, config and layer, the file');
    assert.equal(report.bases.length, 1);
    const t = await runAirlock(['verify', deltaB, '--pub', pub]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /a delta: 5 entries external \(held by bundle delta-test 1;/);
  });

  it('inspect shows the bases and counts external', async () => {
    const r = await runAirlock(['inspect', deltaR]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /a delta: 4 blobs and 1 files \(.*\) are external/);
    assert.match(r.stdout, /^bases \(1\)\n {2}receipt {2}delta-test 1 {2}sha256:[a-f0-9]{64}$/m);
  });
});

describe('serve --base: a delta served with its bases', () => {
  const serveArgs = (bundle: string, ...more: string[]) => ['serve', bundle, '--pub', pub, '--listen', '127.0.0.1:0', '--files-listen', '127.0.0.1:0', ...more];
  async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; complete: boolean }> {
    const res = await request(url, { headers, dispatcher: agent });
    try {
      return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()), complete: true };
    } catch {
      return { status: res.statusCode, headers: res.headers, body: Buffer.alloc(0), complete: false };
    }
  }
  interface Manifest {
    config: { digest: string; size: number };
    layers: Array<{ digest: string; size: number }>;
  }

  /** Every v2 manifest and blob with the right bytes (those only the base holds included), a range of one, the file, and a skopeo pull. */
  async function assertServesV2(s: Served, delta: string, base: string): Promise<void> {
    const cat = JSON.parse((await get(`${s.registry}/v2/_catalog`)).body.toString('utf8')) as { repositories: string[] };
    for (const r of ['team/x', 'team/y', 'team/z']) assert.ok(cat.repositories.includes(r), r);
    const external = new Set((await indexOf(delta)).blobs.filter((b) => b.external).map((b) => b.digest));
    const seenExternal = new Set<string>();
    for (const [repo, img] of [['team/x', x2], ['team/y', y1], ['team/z', z]] as const) {
      const m = await get(`${s.registry}/v2/${repo}/manifests/1`, { accept: ACCEPT_ALL_MANIFESTS });
      assert.equal(m.status, 200, repo);
      assert.equal(m.headers['docker-content-digest'], img.digest);
      assert.equal(`sha256:${hex(m.body)}`, img.digest, `${repo}: manifest bytes`);
      if (external.has(img.digest)) seenExternal.add(img.digest);
      const man = JSON.parse(m.body.toString('utf8')) as Manifest;
      for (const d of [man.config, ...man.layers]) {
        const b = await get(`${s.registry}/v2/${repo}/blobs/${d.digest}`);
        assert.equal(b.status, 200, `${repo} ${d.digest}`);
        assert.equal(b.body.length, d.size);
        assert.equal(`sha256:${hex(b.body)}`, d.digest, `${repo} ${d.digest}: blob bytes`);
        if (external.has(d.digest)) seenExternal.add(d.digest);
      }
    }
    assert.deepEqual([...seenExternal].sort(), [...external].sort(), 'every blob only the base holds was served');
    assert.ok(seenExternal.has(`sha256:${hex(baseLayer)}`) && seenExternal.has(y1.digest));
    // A range of a blob only the base holds, in the repository of the delta that uses it.
    const r = await get(`${s.registry}/v2/team/z/blobs/sha256:${hex(baseLayer)}`, { range: 'bytes=100-199' });
    assert.equal(r.status, 206);
    assert.ok(r.body.equals(baseLayer.subarray(100, 200)));
    // The file only the base holds.
    const f = await get(`${s.files}/tools/tool.bin`);
    assert.equal(f.status, 200);
    assert.ok(f.body.equals(fileA));
    // skopeo pulls the image whose base layer only the base holds, with its upstream digest.
    const out = await makeTempDir('airlock-delta-pull-');
    await skopeoOk(['copy', '--preserve-digests', '--src-tls-verify=false', `docker://${s.host}/team/z:1`, `oci:${out}:z`]);
    const pulled = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(pulled.manifests[0]?.digest, z.digest);
    assert.ok((await readFile(path.join(out, 'blobs/sha256', hex(baseLayer)))).equals(baseLayer));
    assert.ok(s.log().includes(`with its base ${base} read-only`), s.log());
  }

  it('with its v1 bundle base: every v2 manifest and blob, with the right bytes, those only v1 holds included, and the file only v1 holds', async () => {
    const s = await startServe(deltaB, pub, ['--base', v1]);
    try {
      await assertServesV2(s, deltaB, v1);
    } finally {
      await s.stop();
    }
  });

  it('a delta built against a receipt, with the bundle that receipt was written from (bases are matched by digest)', async () => {
    const s = await startServe(deltaR, pub, ['--base', v1]);
    try {
      await assertServesV2(s, deltaR, v1);
    } finally {
      await s.stop();
    }
  });

  it('a delta built against v1, with another bundle that holds the same blobs and file', async () => {
    // y:1 and z:1 (on the base layer) and the file: everything the delta leaves to v1, in a bundle that is not v1.
    const other = (await build('holds-same', '9', [ref('team/y'), ref('team/z')])).file;
    assert.notEqual(hex(entry(await readTar(other), 'bundle.json').data), (await indexOf(deltaB)).bases?.[0]?.sha256);
    const s = await startServe(deltaB, pub, ['--base', other]);
    try {
      await assertServesV2(s, deltaB, other);
    } finally {
      await s.stop();
    }
  });

  it('without --base, refuses to start naming each item the delta leaves out and the base that held it (a bundle base, a receipt base)', async () => {
    const b = await runAirlock(serveArgs(deltaB));
    assert.equal(b.code, 1);
    assert.match(b.stderr, /delta-b\.tar is a delta: 5 items it leaves to its bases are in no --base \(none given; matched by digest and size\)/);
    assert.ok(b.stderr.includes(`blob sha256:${hex(baseLayer)} (${baseLayer.length} bytes, held by bundle delta-test 1)`), b.stderr);
    assert.ok(b.stderr.includes(`blob ${y1.digest} (`), b.stderr);
    assert.match(b.stderr, /file tools\/tool\.bin \(sha256:[a-f0-9]{64}, 20000 bytes, held by bundle delta-test 1\)/);
    assert.match(b.stderr, /give with --base a bundle that holds them/);
    const r = await runAirlock(serveArgs(deltaR));
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`blob sha256:${hex(baseLayer)} (${baseLayer.length} bytes, held by receipt delta-test 1)`), r.stderr);
    assert.match(r.stderr, /for receipt delta-test 1: the bundle that receipt was written from/);
  });

  it('refuses a base that lacks what the delta leaves out, naming each missing item; a receipt, a bare bundle.json, a full bundle given --base', async () => {
    // Another bundle that holds y:1 and the file but not x's base layer: that layer alone is named.
    const partial = (await build('lacks-layer', '9', [ref('team/y')])).file;
    const p = await runAirlock(serveArgs(deltaB, '--base', partial));
    assert.equal(p.code, 1);
    assert.match(p.stderr, /delta-b\.tar is a delta: 1 item it leaves to its bases is in no --base given \(matched by digest and size\)/);
    assert.ok(p.stderr.includes(`blob sha256:${hex(baseLayer)} (${baseLayer.length} bytes, held by bundle delta-test 1)`), p.stderr);
    assert.ok(!p.stderr.includes(y1.digest), 'what the base given holds is not named');
    // A bundle that holds none of it (a delta itself, which leaves those to a receipt).
    const other = await runAirlock(serveArgs(deltaB, '--base', deltaR));
    assert.equal(other.code, 1);
    assert.match(other.stderr, /5 items it leaves to its bases are in no --base given/);
    assert.ok(other.stderr.includes(`blob sha256:${hex(baseLayer)} (${baseLayer.length} bytes, held by bundle delta-test 1), which ${deltaR} (itself a delta) leaves to receipt delta-test 1`), other.stderr);
    assert.match(other.stderr, /for receipt delta-test 1: the bundle that receipt was written from/);
    const rec = await runAirlock(serveArgs(deltaR, '--base', receipt));
    assert.equal(rec.code, 1);
    assert.match(rec.stderr, /--base \S*receipt-v1\.json is JSON \(a receipt or a bare bundle\.json\): it holds no bytes to serve; give a bundle that holds what the delta leaves out \(for a receipt, the bundle it was written from\)/);
    const bare = path.join(work, 'v1-bare-bundle.json');
    await writeFile(bare, entry(await readTar(v1), 'bundle.json').data);
    const bj = await runAirlock(serveArgs(deltaB, '--base', bare));
    assert.equal(bj.code, 1);
    assert.match(bj.stderr, /--base \S*v1-bare-bundle\.json is JSON \(a receipt or a bare bundle\.json\): it holds no bytes to serve/);
    const full = await runAirlock(serveArgs(v1, '--base', v1));
    assert.equal(full.code, 1);
    assert.match(full.stderr, /v1\.tar is not a delta/);
  });

  it('a base given that holds nothing the delta leaves out is named as not used; the rest is served', async () => {
    const s = await startServe(deltaB, pub, ['--base', v1, '--base', deltaR]);
    try {
      assert.ok(s.log().includes(`--base ${deltaR} holds none of what ${deltaB} leaves out; not used`), s.log());
      const b = await get(`${s.registry}/v2/team/z/blobs/sha256:${hex(baseLayer)}`);
      assert.ok(b.body.equals(baseLayer));
    } finally {
      await s.stop();
    }
  });

  it('a delta of a delta: served with both bases; with the delta base alone, refuses naming what that base leaves to its own', async () => {
    const d3 = (await build('delta-3', '3', [ref('team/x'), ref('team/y'), ref('team/z')], [deltaB])).file;
    assert.equal((await readTar(d3)).length, 4, 'everything is external');
    const alone = await runAirlock(serveArgs(d3, '--base', deltaB));
    assert.equal(alone.code, 1);
    assert.ok(alone.stderr.includes(`blob sha256:${hex(baseLayer)} (${baseLayer.length} bytes, held by bundle delta-test 2), which ${deltaB} (itself a delta) leaves to bundle delta-test 1`), alone.stderr);
    assert.match(alone.stderr, /file tools\/tool\.bin \(sha256:[a-f0-9]{64}, 20000 bytes, held by bundle delta-test 2\), which \S*delta-b\.tar \(itself a delta\) leaves to bundle delta-test 1/);
    const s = await startServe(d3, pub, ['--base', deltaB, '--base', v1]);
    try {
      const m = await get(`${s.registry}/v2/team/z/manifests/1`, { accept: ACCEPT_ALL_MANIFESTS });
      assert.equal(`sha256:${hex(m.body)}`, z.digest, 'from the delta base');
      const b = await get(`${s.registry}/v2/team/z/blobs/sha256:${hex(baseLayer)}`);
      assert.ok(b.body.equals(baseLayer), 'from its base');
      assert.ok((await get(`${s.files}/tools/tool.bin`)).body.equals(fileA));
    } finally {
      await s.stop();
    }
  });

  it('a base signed with another key is refused, naming it', async () => {
    assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k3')])).code, 0);
    const resigned = path.join(work, 'v1-k3.tar');
    const m = path.join(work, 'v1-k3.yaml');
    await writeFile(m, manifest([ref('team/y')]).replace('VERSION', '1'));
    assert.equal((await runAirlock(['build', m, '-o', resigned, '--key', path.join(work, 'k3.key'), '--cache', path.join(work, 'cache-k3')])).code, 0);
    const r = await runAirlock(serveArgs(deltaB, '--base', resigned));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--base \S*v1-k3\.tar: the signature of bundle\.json does not verify/);
  });

  it('a base with a flipped byte in a blob the delta leaves to it: no response completes with wrong bytes; the rest is served', async () => {
    const bad = path.join(work, 'v1-flipped.tar');
    const layer = `blobs/sha256/${hex(baseLayer)}`;
    await rewrite(v1, bad, (es) => es.map((e) => ({ name: e.name, data: e.name === layer ? flip(e.data) : e.data })));
    const s = await startServe(deltaB, pub, ['--base', bad]);
    try {
      for (const [repo, range] of [['team/z', undefined], ['team/x', 'bytes=0-99'], ['team/z', 'bytes=30000-']] as const) {
        const r = await get(`${s.registry}/v2/${repo}/blobs/sha256:${hex(baseLayer)}`, range ? { range } : {});
        // Hashed whole before its first byte goes out: refused outright, not even a range of it.
        assert.equal(r.status, 500, `${repo} ${range ?? ''}: refused`);
        assert.ok(r.complete && !r.body.includes(baseLayer.subarray(0, 64)), 'an error body, no layer bytes');
      }
      assert.match(s.log(), /refusing blobs\/sha256\/[a-f0-9]{64} of base \S*v1-flipped\.tar: entry .* is corrupt/);
      const ok = await get(`${s.registry}/v2/team/z/blobs/sha256:${hex(zLayer)}`);
      assert.equal(ok.status, 200);
      assert.ok(ok.body.equals(zLayer));
      assert.ok((await get(`${s.files}/tools/tool.bin`)).body.equals(fileA));
      const out = await makeTempDir('airlock-delta-pull-bad-');
      const pull = await skopeo(['copy', '--src-tls-verify=false', `docker://${s.host}/team/z:1`, `oci:${out}:z`]);
      assert.notEqual(pull.code, 0, 'skopeo fails instead of getting wrong data');
    } finally {
      await s.stop();
    }
  });
});

describe('unpack of a delta', () => {
  async function assertV2(reg: TestRegistry): Promise<void> {
    assert.equal(await headTag(reg, 'team/x', '1'), x2.digest);
    assert.equal(await headTag(reg, 'team/y', '1'), y1.digest);
    assert.equal(await headTag(reg, 'team/z', '1'), z.digest);
  }

  it('against the receipt, into the target that holds v1: every v2 image with its upstream digest, the base layer mounted; the receipt lists external items too', async () => {
    const rec2 = receiptV2;
    const u = await runAirlock(['unpack', deltaR, '--pub', pub, '--registry', target.host, '--files-dir', files, '--receipt', rec2, '--json']);
    assert.equal(u.code, 0, u.stderr);
    const report = JSON.parse(u.stdout) as { blobsMounted: number };
    assert.equal(report.blobsMounted, 1, 'the base layer, into team/z from team/x');
    await assertV2(target);
    const r = JSON.parse(await readFile(rec2, 'utf8')) as { blobs: Array<{ digest: string; repository: string }>; files: unknown[] };
    const idx = await indexOf(deltaR);
    assert.deepEqual(r.blobs.map((b) => b.digest).sort(), idx.blobs.map((b) => b.digest).sort(), 'every blob of v2, external ones included');
    assert.equal(r.files.length, 1);
    // The new receipt is enough for the next delta: against it, nothing new is carried.
    const next = await build('delta-next', '3', [ref('team/x'), ref('team/y'), ref('team/z')], [rec2]);
    assert.equal((await readTar(next.file)).length, 4);
  });

  it('the receipt of a delta whose unchanged image is all external names that image\'s repository for what it lists, and reads back', async () => {
    // z alone, against the v2 receipt: its manifest is external, and the base layer below it was recorded in team/x, not an image of this delta.
    const d = (await build('delta-z', '3', [ref('team/z')], [receiptV2])).file;
    const rec = path.join(work, 'receipt-z.json');
    const u = await runAirlock(['unpack', d, '--pub', pub, '--registry', target.host, '--files-dir', files, '--receipt', rec]);
    assert.equal(u.code, 0, u.stderr);
    const r = JSON.parse(await readFile(rec, 'utf8')) as { blobs: Array<{ digest: string; repository: string }> };
    assert.deepEqual(r.blobs.map((b) => [b.digest, b.repository]).sort(), [z.digest, z.configDescriptor.digest, ...z.layerDescriptors.map((l) => l.digest)].map((x) => [x, 'team/z']).sort());
    assert.equal((await runAirlock(['diff', rec, deltaR])).code, 0, 'the receipt passes its own checks');
  });

  it('against the v1 bundle, into another target that holds v1: every v2 image with its upstream digest', async () => {
    const t = await targetWithV1();
    try {
      const u = await runAirlock(['unpack', deltaB, '--pub', pub, '--registry', t.reg.host, '--files-dir', t.dir]);
      assert.equal(u.code, 0, u.stderr);
      await assertV2(t.reg);
    } finally {
      await t.reg.stop();
    }
  });

  it('into an empty target: exit 1 naming each missing item and its base, nothing pushed', async () => {
    const empty = await startRegistry();
    try {
      const dir = await makeTempDir('airlock-delta-empty-');
      for (const [file, base] of [
        [deltaR, 'receipt delta-test 1'],
        [deltaB, 'bundle delta-test 1'],
      ] as const) {
        const u = await runAirlock(['unpack', file, '--pub', pub, '--registry', empty.host, '--files-dir', dir]);
        assert.equal(u.code, 1, u.stderr);
        assert.match(u.stderr, /the target lacks 4 items this delta leaves to its bases; nothing was pushed/);
        assert.ok(u.stderr.includes(`blob sha256:${hex(baseLayer)} of ${ref('team/x')}, in neither ${empty.host}/team/x; held by ${base}`), u.stderr);
        assert.ok(u.stderr.includes(`manifest ${y1.digest} of ${ref('team/y')}, not in ${empty.host}/team/y; held by ${base}`), u.stderr);
        assert.ok(u.stderr.includes(`file tools/tool.bin (sha256:${hex(fileA)}), not at`), u.stderr);
        assert.deepEqual(await catalog(empty), []);
        assert.deepEqual(await readdir(dir), []);
      }
    } finally {
      await empty.stop();
    }
  });

  it('a tampered delta is refused: external flag flipped, bases edited, an entry bundle.json marks external', async () => {
    const tampered = path.join(work, 'tampered.tar');
    const edits: Array<[string, (bj: BundleJson) => void]> = [
      ['flip external', (bj) => void delete bj.blobs.find((b) => b.external)!.external],
      ['edit bases', (bj) => void (bj.bases![0]!.version = '0')],
    ];
    for (const [what, edit] of edits) {
      await rewrite(deltaR, tampered, (es) =>
        es.map((e) => {
          if (e.name !== 'bundle.json') return { name: e.name, data: e.data };
          const bj = JSON.parse(e.data.toString('utf8')) as BundleJson;
          edit(bj);
          return { name: e.name, data: Buffer.from(JSON.stringify(bj, null, 2) + '\n') };
        }),
      );
      const v = await runAirlock(['verify', tampered, '--pub', pub]);
      assert.equal(v.code, 1, what);
      assert.match(v.stderr, /signature of bundle\.json does not verify/, what);
    }
    // The base layer (external) carried anyway, after index.json: an entry bundle.json does not name.
    const layer = { name: `blobs/sha256/${hex(baseLayer)}`, data: baseLayer };
    await rewrite(deltaR, tampered, (es) => [...es.slice(0, 4).map((e) => ({ name: e.name, data: e.data })), layer, ...es.slice(4).map((e) => ({ name: e.name, data: e.data }))]);
    const v = await runAirlock(['verify', tampered, '--pub', pub]);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /entry "blobs\/sha256\/[a-f0-9]{64}" is not named in bundle\.json; expected/);
    // A flipped byte in a carried layer, unpacked into the target: refused, nothing changes.
    await rewrite(deltaR, tampered, (es) => es.map((e) => ({ name: e.name, data: e.name === `blobs/sha256/${hex(zLayer)}` ? flip(e.data) : e.data })));
    const empty = await startRegistry();
    try {
      const u = await runAirlock(['unpack', tampered, '--pub', pub, '--registry', empty.host, '--files-dir', await makeTempDir('airlock-delta-t-')]);
      assert.equal(u.code, 1);
      assert.match(u.stderr, /is corrupt/);
      assert.deepEqual(await catalog(empty), []);
    } finally {
      await empty.stop();
    }
  });
});

describe('delta bundle.json checks and downloads', () => {
  it('parseIndex refuses a malformed external, from or bases', async () => {
    const good = JSON.parse(entry(await readTar(deltaR), 'bundle.json').data.toString('utf8')) as BundleJson & Record<string, unknown>;
    assert.ok(parseIndex(Buffer.from(JSON.stringify(good))));
    const ext = () => good.blobs.findIndex((b) => b.external);
    const cases: Array<[string, (bj: BundleJson & Record<string, unknown>) => void, RegExp]> = [
      ['external false', (bj) => void ((bj.blobs[ext()] as Record<string, unknown>).external = false), /external is not true/],
      ['external on a file is "yes"', (bj) => void ((bj.files[0] as Record<string, unknown>).external = 'yes'), /file tools\/tool\.bin: external is not true/],
      ['no bases', (bj) => void delete bj.bases, /is external but bundle\.json lists no bases/],
      ['empty bases', (bj) => void (bj.bases = []), /from\.base is not one of the 0 bases|lists no bases/],
      ['bases not a list', (bj) => void ((bj as Record<string, unknown>).bases = {}), /bases is not a list/],
      ['a base of unknown kind', (bj) => void (bj.bases![0]!.kind = 'tarball'), /base 0 has an unknown kind/],
      ['a base without sha256', (bj) => void (bj.bases![0]!.sha256 = 'abc'), /base 0 has no sha256/],
      ['a base with an unknown field', (bj) => void ((bj.bases![0] as Record<string, unknown>).url = 'x'), /base 0 has an unknown field "url"/],
      ['from.base out of range', (bj) => void (bj.blobs[ext()]!.from!.base = 1), /from\.base is not one of the 1 bases/],
      ['from.base negative', (bj) => void (bj.blobs[ext()]!.from!.base = -1), /from\.base is not one of the 1 bases/],
      ['from.base not a number', (bj) => void ((bj.blobs[ext()]!.from as Record<string, unknown>).base = '0'), /from\.base is not one of the 1 bases/],
      ['from on a blob in the tar', (bj) => void (bj.blobs.find((b) => !b.external)!.from = { base: 0 }), /has "from" but is not external/],
      ['from.repository not a repository', (bj) => void (bj.blobs[ext()]!.from!.repository = '../etc'), /from\.repository is not a repository name/],
      ['from.image not a reference', (bj) => void (bj.blobs[ext()]!.from!.image = 'Not A Ref'), /from\.image/],
      ['from with an unknown field', (bj) => void ((bj.blobs[ext()]!.from as Record<string, unknown>).url = 'x'), /from has an unknown field "url"/],
    ];
    for (const [what, edit, why] of cases) {
      const bj = structuredClone(good);
      edit(bj);
      assert.throws(() => parseIndex(Buffer.from(JSON.stringify(bj))), why, what);
    }
  });

  it('blobs a base holds, and files it holds whose sha256 the manifest gives, are not downloaded (the delta builds had their own empty caches)', () => {
    for (const name of ['delta-r', 'delta-b']) {
      const blobs = path.join(work, `cache-${name}`, 'blobs', 'sha256');
      assert.equal(existsSync(path.join(blobs, hex(baseLayer))), false, `${name}: the base layer`);
      assert.equal(existsSync(path.join(blobs, hex(zLayer))), true, `${name}: a new layer`);
      assert.equal(existsSync(path.join(blobs, hex(fileA))), false, `${name}: the file (its sha256 is in the manifest)`);
    }
  });
});

describe('a delta of a multi-platform index: an external child manifest', () => {
  it('the walk stops at the external child; unpack checks it at the target and pushes the new index over it', async () => {
    const pa = await seeder.pushImage('team/m', undefined, { layers: [await makeLayer('m-amd64', 20_000)], format: 'oci', platform: { os: 'linux', architecture: 'amd64' } });
    const pb = await seeder.pushImage('team/m', undefined, { layers: [await makeLayer('m-arm64', 20_000)], format: 'oci', platform: { os: 'linux', architecture: 'arm64' } });
    await seeder.pushIndex('team/m', '1', [pa.descriptor, pb.descriptor], 'oci');
    const m1 = (await build('m1', '1', [ref('team/m')])).file;
    const reg = await startRegistry();
    try {
      const dir = await makeTempDir('airlock-delta-m-');
      const rec = path.join(work, 'receipt-m1.json');
      assert.equal((await runAirlock(['unpack', m1, '--pub', pub, '--registry', reg.host, '--files-dir', dir, '--receipt', rec])).code, 0);
      // Upstream: arm64 rebuilt, amd64 unchanged.
      const pc = await seeder.pushImage('team/m', undefined, { layers: [await makeLayer('m-arm64-2', 20_000)], format: 'oci', platform: { os: 'linux', architecture: 'arm64' } });
      const i2 = await seeder.pushIndex('team/m', '1', [pa.descriptor, pc.descriptor], 'oci');
      for (const base of [m1, rec]) {
        const d = (await build(`m2-${path.basename(base)}`, '2', [ref('team/m')], [base])).file;
        const idx = await indexOf(d);
        assert.deepEqual(idx.blobs.filter((b) => b.external).map((b) => b.digest).sort(), [pa.digest, pa.configDescriptor.digest, pa.layerDescriptors[0]!.digest].sort());
        assert.equal((await runAirlock(['verify', d, '--pub', pub])).code, 0);
        const empty = await startRegistry();
        try {
          const u = await runAirlock(['unpack', d, '--pub', pub, '--registry', empty.host, '--files-dir', await makeTempDir('airlock-delta-m-e-')]);
          assert.equal(u.code, 1);
          assert.ok(u.stderr.includes(`manifest ${pa.digest} of ${ref('team/m')}, not in ${empty.host}/team/m; held by`), u.stderr);
          assert.deepEqual(await catalog(empty), []);
        } finally {
          await empty.stop();
        }
        if (base === m1) {
          const u = await runAirlock(['unpack', d, '--pub', pub, '--registry', reg.host, '--files-dir', dir]);
          assert.equal(u.code, 0, u.stderr);
          assert.equal(await headTag(reg, 'team/m', '1'), i2.digest);
        }
      }
    } finally {
      await reg.stop();
    }
  });
});

describe('an external manifest its base put in another repository', () => {
  it('is named as missing, with where it is, and nothing is pushed', async () => {
    // team/w:1 is byte for byte team/y:1 (the seeder is deterministic): the receipt holds its manifest in team/y only.
    const w = await seeder.pushImage('team/w', '1', { layers: [await makeLayer('y', 30_000)], format: 'docker' });
    assert.equal(w.digest, y1.digest);
    const d = (await build('delta-w', '2', [ref('team/w')], [receipt])).file;
    const u = await runAirlock(['unpack', d, '--pub', pub, '--registry', target.host, '--files-dir', files]);
    assert.equal(u.code, 1, u.stderr);
    assert.ok(
      u.stderr.includes(`manifest ${y1.digest} of ${ref('team/w')}, not in ${target.host}/team/w; held by receipt delta-test 1 (it is in ${target.host}/team/y, but an unpack does not copy manifests between repositories`),
      u.stderr,
    );
    assert.ok(!(await catalog(target)).includes('team/w'));
  });
});
