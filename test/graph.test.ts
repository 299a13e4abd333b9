// One graph walk for build, verify, unpack and serve: each manifest walked
// once, nesting, fan-out and size bounded, and the same shape rules on both
// sides. First the walk on its own (in memory), then build against a real
// registry seeded with hostile graphs, then a signed bundle that holds a shape
// an older build let through.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ContentStore } from '../src/cache/store.js';
import { writeBundle } from '../src/bundle/writer.js';
import { GraphError, MAX_CHILDREN, MAX_DEPTH, MAX_MANIFESTS, walkGraph, type Descriptor } from '../src/oci/graph.js';
import { fingerprint, loadPrivateKey } from '../src/sign/keys.js';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { jsonBytes, makeLayer, MediaTypes, Seeder, sha256, type Descriptor as SeedDescriptor } from './support/seed.js';
import { startServe } from './support/serve.js';

const INDEX = MediaTypes.ociIndex;
const MANIFEST = MediaTypes.ociManifest;

/** An in-memory content store for the walk: digest → bytes, with a count of loads. */
class Mem {
  readonly blobs = new Map<string, Buffer>();
  loads = 0;
  put(doc: unknown): Descriptor {
    const bytes = jsonBytes(doc);
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    const mt = (doc as { mediaType?: string }).mediaType ?? MANIFEST;
    return { mediaType: mt, digest, size: bytes.length };
  }
  image(tag: string): Descriptor {
    const blob = (s: string): Descriptor => ({ mediaType: 'application/octet-stream', digest: sha256(s), size: s.length });
    return this.put({ schemaVersion: 2, mediaType: MANIFEST, config: blob(`config ${tag}`), layers: [blob(`layer ${tag}`)] });
  }
  index(children: Descriptor[], extra: Record<string, unknown> = {}): Descriptor {
    return this.put({ schemaVersion: 2, mediaType: INDEX, manifests: children, ...extra });
  }
  walk(root: Descriptor) {
    return walkGraph(
      { digest: root.digest, bytes: this.blobs.get(root.digest) ?? Buffer.alloc(0), mediaType: root.mediaType },
      {
        ref: 'example.com/test:1',
        advice: 'do something',
        load: async (d) => {
          this.loads++;
          const b = this.blobs.get(d.digest);
          if (!b) throw new Error(`no ${d.digest}`);
          return b;
        },
      },
    );
  }
}

/** Each level lists the next `width` times; the last lists one image manifest. */
function diamond(mem: Mem, levels: number, width: number): { root: Descriptor; levels: Descriptor[]; leaf: Descriptor } {
  const leaf = mem.image('leaf');
  let next = leaf;
  const all: Descriptor[] = [];
  for (let i = 0; i < levels; i++) {
    next = mem.index(Array.from({ length: width }, () => next));
    all.unshift(next);
  }
  return { root: next, levels: all, leaf };
}

describe('the graph walk', () => {
  it('walks a diamond as wide as allowed once per manifest, parents first, and pushes children first', async () => {
    const mem = new Mem();
    const d = diamond(mem, MAX_DEPTH, MAX_CHILDREN);
    const g = await mem.walk(d.root);
    assert.equal(mem.loads, MAX_DEPTH, 'every manifest below the root loaded once');
    assert.deepEqual(g.manifests.map((m) => m.digest), [...d.levels.map((l) => l.digest), d.leaf.digest]);
    assert.deepEqual(g.pushOrder.map((m) => m.digest), [d.leaf.digest, ...d.levels.map((l) => l.digest).reverse()]);
    assert.equal(g.blobs.length, 2);
  });

  it('refuses a 30-level diamond at the depth limit without loading the rest', async () => {
    const mem = new Mem();
    const d = diamond(mem, 30, 2);
    await assert.rejects(mem.walk(d.root), (err: Error) => {
      assert.ok(err instanceof GraphError);
      assert.match(err.message, new RegExp(`^example\\.com/test:1: index ${d.levels[MAX_DEPTH]?.digest}, 4 levels below the root, lists further manifests; .*do something$`));
      return true;
    });
    assert.equal(mem.loads, MAX_DEPTH);
  });

  it('applies the depth limit to every path, whichever reaches a shared index first', async () => {
    for (const shallowFirst of [true, false]) {
      const mem = new Mem();
      // shared holds two levels below it; reached at level 2 (fine) and at level 3 (too deep).
      const shared = mem.index([mem.index([mem.image('x')])]);
      const short = mem.index([shared]);
      const long = mem.index([mem.index([shared])]);
      const root = mem.index(shallowFirst ? [short, long] : [long, short]);
      await assert.rejects(mem.walk(root), /levels below the root/);
    }
  });

  it('refuses an index with more entries than allowed, and a graph with more manifests than allowed', async () => {
    const mem = new Mem();
    const img = mem.image('a');
    const wide = mem.index(Array.from({ length: MAX_CHILDREN + 1 }, () => img));
    await assert.rejects(mem.walk(wide), new RegExp(`index listing ${MAX_CHILDREN + 1} manifests, more than the ${MAX_CHILDREN}`));

    const perIndex = MAX_CHILDREN;
    const groups = Math.ceil(MAX_MANIFESTS / perIndex) + 1;
    const mids = Array.from({ length: groups }, (_, g) => mem.index(Array.from({ length: perIndex }, (_, i) => mem.image(`${g}-${i}`))));
    await assert.rejects(mem.walk(mem.index(mids)), new RegExp(`past ${MAX_MANIFESTS} manifests`));
  });

  it('holds every manifest to one set of shape rules', async () => {
    const mem = new Mem();
    const img = mem.image('a');
    const cases: Array<[Descriptor, RegExp]> = [
      [mem.put({ schemaVersion: 2, mediaType: MANIFEST, config: img, layers: [], manifests: [img] }), /is an image manifest .* carries a "manifests" list/],
      [mem.index([img], { layers: [] }), /is an index .* carries "layers"/],
      [mem.index([img], { config: img }), /is an index .* carries "config"/],
      [mem.index([{ ...img, mediaType: INDEX }]), /listed or served as application\/vnd\.oci\.image\.index\.v1\+json but its own mediaType is application\/vnd\.oci\.image\.manifest\.v1\+json/],
      [mem.index([{ ...img, size: img.size + 1 }]), /says sha256:[a-f0-9]{64} is \d+ bytes, but it is/],
      [mem.index([img, { ...img, mediaType: MediaTypes.dockerManifest }]), /listed or served as|lists sha256:[a-f0-9]{64} as application\/vnd\.docker/],
      [mem.index([{ ...img, mediaType: 'application/vnd.example.thing' }]), /neither an image manifest nor an index/],
      [mem.index([{ ...img, digest: 'sha512:abc' }]), /bad digest, size or mediaType/],
      [mem.put({ schemaVersion: 1, name: 'x' }), /Docker schema 1/],
      [mem.put({ schemaVersion: 2, mediaType: MANIFEST, layers: [] }), /without a "config"/],
    ];
    for (const [root, want] of cases) {
      await assert.rejects(mem.walk(root), (err: Error) => {
        assert.ok(err instanceof GraphError, err.message);
        assert.match(err.message, want);
        assert.match(err.message, /^example\.com\/test:1: /, 'names the reference');
        assert.match(err.message, /sha256:[a-f0-9]{64}/, 'names the digest');
        return true;
      });
    }
  });
});

// ---------------------------------------------------------------------------

let reg: TestRegistry;
let seeder: Seeder;
let work: string;
let key: string;
let pub: string;

before(async () => {
  reg = await startRegistry();
  seeder = new Seeder({ url: reg.url });
  work = await makeTempDir('airlock-graph-');
  const k = await runAirlock(['keygen', '--out', path.join(work, 'signer')]);
  assert.equal(k.code, 0, k.stderr);
  key = path.join(work, 'signer.key');
  pub = path.join(work, 'signer.pub');
});
after(async () => {
  await seeder?.close();
  await reg?.stop();
});

/** Pushes into `repo` an index per level, bottom up, each listing the next `width` times; tags the top. */
async function seedDiamond(repo: string, tag: string, levels: number, width: number): Promise<string[]> {
  const img = await seeder.pushImage(repo, undefined, { layers: [await makeLayer('graph leaf', 1024)], format: 'oci' });
  let next: SeedDescriptor = { mediaType: img.mediaType, digest: img.digest, size: img.manifest.length };
  const digests: string[] = [];
  for (let i = levels - 1; i >= 0; i--) {
    const pushed = await seeder.pushIndex(repo, i === 0 ? tag : undefined, Array.from({ length: width }, () => next), 'oci');
    next = pushed.descriptor;
    digests.unshift(pushed.digest);
  }
  return digests;
}

let n = 0;
async function build(refs: string[]): Promise<{ code: number | null; stderr: string; stdout: string; bundle: string; ms: number }> {
  const dir = path.join(work, `b${n++}`);
  const manifest = `${dir}.yaml`;
  await writeFile(manifest, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: graph\n  version: "1"\nspec:\n  images:\n${refs.map((r) => `    - ${r}\n`).join('')}`);
  const bundle = `${dir}.tar`;
  const started = performance.now();
  const r = await runAirlock(['build', manifest, '-o', bundle, '--key', key, '--cache', `${dir}-cache`]);
  return { ...r, bundle, ms: performance.now() - started };
}

describe('build against a registry seeded with hostile graphs', () => {
  it('refuses a 30-level diamond index, naming it, instead of walking 2^30 paths', async (t) => {
    const levels = await seedDiamond('graph/diamond', '30', 30, 2);
    const ref = `${reg.host}/graph/diamond:30`;
    const r = await build([ref]);
    t.diagnostic(`build of a 30-level diamond finished in ${Math.round(r.ms)} ms (exit ${r.code})`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /1 of 1 items failed; no bundle was written/);
    assert.ok(r.stderr.includes(`${ref}: index ${levels[MAX_DEPTH]}, 4 levels below the root, lists further manifests`), r.stderr);
  });

  it('builds a diamond as deep and wide as allowed, once per manifest, and verify and unpack take what build wrote', async (t) => {
    const levels = await seedDiamond('graph/wide', '4', MAX_DEPTH, MAX_CHILDREN);
    const r = await build([`${reg.host}/graph/wide:4`]);
    t.diagnostic(`build of a ${MAX_DEPTH}-level diamond of ${MAX_CHILDREN} entries per index took ${Math.round(r.ms)} ms`);
    assert.equal(r.code, 0, r.stderr);
    const v = await runAirlock(['verify', r.bundle, '--pub', pub, '--json']);
    assert.equal(v.code, 0, v.stderr);
    const report = JSON.parse(v.stdout) as { blobs: number };
    assert.equal(report.blobs, MAX_DEPTH + 3, 'each index, the image manifest, its config and layer: once each');
    const u = await runAirlock(['unpack', r.bundle, '--pub', pub, '--registry', `${reg.host}/mirror`, '--files-dir', await makeTempDir('airlock-graph-files-')]);
    assert.equal(u.code, 0, u.stderr);
    const got = await seeder.getManifest('mirror/graph/wide', '4');
    assert.equal(got.status, 200);
    assert.equal(got.headers['docker-content-digest'], levels[0]);
  });

  it('refuses an index nested deeper than the limit, naming the index that goes too deep', async () => {
    const chain = await seedDiamond('graph/deep', '5', MAX_DEPTH + 1, 1);
    const ref = `${reg.host}/graph/deep:5`;
    const r = await build([ref]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`${ref}: index ${chain[MAX_DEPTH]}, 4 levels below the root, lists further manifests; airlock follows manifests at most 4 levels below the root`), r.stderr);
    assert.match(r.stderr, /remove the reference from the build manifest/);
  });

  it('refuses an image manifest that carries a manifests list, naming its digest', async () => {
    // distribution refuses this shape for OCI manifests (CVE-2021-41190) but stores it as a Docker one.
    const img = await seeder.pushImage('graph/odd', undefined, { layers: [await makeLayer('graph odd', 512)], format: 'docker' });
    const doc = JSON.parse(img.manifest.toString('utf8')) as Record<string, unknown>;
    const bytes = jsonBytes({ ...doc, manifests: [{ mediaType: img.mediaType, digest: img.digest, size: img.manifest.length }] });
    const pushed = await seeder.pushManifest('graph/odd', 'hybrid', bytes, MediaTypes.dockerManifest);
    const ref = `${reg.host}/graph/odd:hybrid`;
    const r = await build([ref]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`${ref}: manifest ${pushed.digest} is an image manifest (${MediaTypes.dockerManifest}) but carries a "manifests" list`), r.stderr);
  });
});

describe('a signed bundle holding a shape build refuses', () => {
  let bundle: string;
  let manifestDigest: string;

  before(async () => {
    const dir = await makeTempDir('airlock-graph-bundle-');
    const store = new ContentStore(path.join(dir, 'cache'));
    await store.init();
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = Buffer.from('not really a layer');
    const configDigest = await store.putBuffer(config);
    const layerDigest = await store.putBuffer(layer);
    const cfg = { mediaType: MediaTypes.ociConfig, digest: configDigest, size: config.length };
    const manifest = jsonBytes({ schemaVersion: 2, mediaType: MANIFEST, config: cfg, layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: layerDigest, size: layer.length }], manifests: [cfg] });
    manifestDigest = await store.putBuffer(manifest);
    const k = await loadPrivateKey(key);
    bundle = path.join(dir, 'odd.tar');
    await writeBundle({
      output: bundle,
      store,
      key: k,
      mtime: new Date(0),
      index: {
        schemaVersion: 1,
        name: 'odd',
        version: '1',
        created: new Date(0).toISOString(),
        tool: 'airlock test',
        signer: { fingerprint: fingerprint(k) },
        images: [{ ref: 'example.com/odd/app:1', digest: manifestDigest, mediaType: MANIFEST, kind: 'image', platforms: [], size: 0 }],
        files: [],
        blobs: [
          { digest: manifestDigest, size: manifest.length },
          { digest: configDigest, size: config.length },
          { digest: layerDigest, size: layer.length },
        ],
      },
    });
  });

  const named = () => new RegExp(`example\\.com/odd/app:1: manifest ${manifestDigest} is an image manifest .* carries a "manifests" list.*build it again`);

  it('fails verify, naming the image and the manifest', async () => {
    const v = await runAirlock(['verify', bundle, '--pub', pub]);
    assert.equal(v.code, 1, v.stderr);
    assert.match(v.stderr, named());
  });

  it('fails unpack before anything is pushed, and serve does not start', async () => {
    const u = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', `${reg.host}/odd-target`, '--files-dir', await makeTempDir('airlock-graph-files-')]);
    assert.equal(u.code, 1, u.stderr);
    assert.match(u.stderr, named());
    assert.equal((await seeder.getManifest('odd-target/odd/app', '1')).status, 404);
    await assert.rejects(startServe(bundle, pub), named());
  });
});
