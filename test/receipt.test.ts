// `airlock unpack … --receipt FILE` against a real registry and folder: what
// the receipt lists is checked against the bundle's own bundle.json and
// against the registry (every blob HEADed in the repository the receipt
// names); reruns, failures and hostile receipts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { ACCEPT_ALL_MANIFESTS } from './support/seed.js';
import { entry, readTar } from './support/tarball.js';
import { startUpstream, type Upstream } from './support/upstream.js';

interface Receipt {
  apiVersion: string;
  kind: string;
  bundle: { name: string; version: string; created: string; sha256: string };
  registry: string;
  layout: string;
  images: Array<{ ref: string; digest: string; target: string }>;
  blobs: Array<{ digest: string; size: number; repository: string }>;
  files: Array<{ path: string; sha256: string; size: number }>;
}

interface BundleJson {
  name: string;
  version: string;
  created: string;
  images: Array<{ ref: string; digest: string }>;
  blobs: Array<{ digest: string; size: number }>;
  files: Array<{ path: string; sha256: string; size: number }>;
}

let up: Upstream;
let work: string;
let bundle: string;
let pub: string;
let bundleJson: Buffer;
let index: BundleJson;
let target: TestRegistry;
const agent = new Agent();

before(async () => {
  up = await startUpstream();
  target = await startRegistry();
  work = await makeTempDir('airlock-receipt-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  pub = path.join(work, 'k.pub');
  await writeFile(path.join(work, 'm.yaml'), up.manifest());
  bundle = path.join(work, 'b.tar');
  const b = await runAirlock(['build', path.join(work, 'm.yaml'), '-o', bundle, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache')]);
  assert.equal(b.code, 0, b.stderr);
  bundleJson = entry(await readTar(bundle), 'bundle.json').data;
  index = JSON.parse(bundleJson.toString('utf8')) as BundleJson;
});
after(async () => {
  await agent.close();
  await target?.stop();
  await up?.stop();
});

async function head(p: string): Promise<number> {
  const res = await request(`${target.url}${p}`, { method: 'HEAD', headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: agent });
  await res.body.dump();
  return res.statusCode;
}

/** Every manifest and index child upstream pushed: these are HEADed as manifests, everything else as blobs. */
function manifestDigests(): Set<string> {
  const out = new Set<string>();
  for (const r of Object.values(up.refs)) {
    out.add(r.pushed.digest);
    for (const c of r.children ?? []) out.add(c.digest);
  }
  return out;
}

async function readReceipt(file: string): Promise<Receipt> {
  return JSON.parse(await readFile(file, 'utf8')) as Receipt;
}

describe('unpack --receipt', () => {
  let files: string;
  let receiptFile: string;
  let receiptBytes: Buffer;

  before(async () => {
    files = path.join(work, 'srv');
    await mkdir(files);
    receiptFile = path.join(work, 'receipt.json');
    const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', files, '--receipt', receiptFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { receipt: string; upToDate: boolean };
    assert.equal(report.receipt, receiptFile);
    assert.equal(report.upToDate, false);
    receiptBytes = await readFile(receiptFile);
  });

  it('names the bundle by name, version, created and the sha256 of its exact bundle.json bytes', async () => {
    const rec = await readReceipt(receiptFile);
    assert.equal(rec.apiVersion, 'airlock/v1');
    assert.equal(rec.kind, 'Receipt');
    assert.deepEqual(rec.bundle, { name: index.name, version: index.version, created: index.created, sha256: createHash('sha256').update(bundleJson).digest('hex') });
    assert.equal(rec.registry, target.host);
    assert.equal(rec.layout, 'flat');
    assert.deepEqual(Object.keys(rec), ['apiVersion', 'kind', 'bundle', 'registry', 'layout', 'images', 'blobs', 'files']);
  });

  it('lists every image with its digest and full pushed reference, which resolves to that digest', async () => {
    const rec = await readReceipt(receiptFile);
    // Flat layout, no prefix: the upstream path lands as it is on the target host.
    const want = index.images.map((i) => ({ ref: i.ref, digest: i.digest, target: i.ref.replace(`${up.registry.host}/`, `${target.host}/`) }));
    assert.deepEqual(rec.images, want);
    assert.ok(rec.images.some((i) => i.target === `${target.host}/team/pinned@${up.refs.digestOnly.pushed.digest}`), 'untagged: @DIGEST');
    assert.ok(rec.images.some((i) => i.target === `${target.host}/team/app:1.0`), 'tagged: :TAG');
    for (const i of rec.images) {
      const rest = i.target.slice(target.host.length + 1);
      const [repo, reference] = rest.includes('@') ? (rest.split('@') as [string, string]) : (rest.split(':') as [string, string]);
      const res = await request(`${target.url}/v2/${repo}/manifests/${reference}`, { method: 'HEAD', headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: agent });
      await res.body.dump();
      assert.equal(res.statusCode, 200, i.target);
      assert.equal(res.headers['docker-content-digest'], i.digest, i.target);
    }
  });

  it('lists every blob of bundle.json once, manifests and index children included, each in a repository that holds it', async () => {
    const rec = await readReceipt(receiptFile);
    assert.deepEqual(
      rec.blobs.map((b) => [b.digest, b.size]).sort(),
      index.blobs.map((b) => [b.digest, b.size]).sort(),
    );
    const manifests = manifestDigests();
    let asManifest = 0;
    for (const b of rec.blobs) {
      const kind = manifests.has(b.digest) ? 'manifests' : 'blobs';
      if (kind === 'manifests') asManifest++;
      assert.equal(await head(`/v2/${b.repository}/${kind}/${b.digest}`), 200, `${b.repository} holds ${b.digest} (${kind})`);
    }
    assert.equal(asManifest, manifests.size, 'every manifest and index child is in the receipt');
    // Shared by team/app (first in bundle.json) and team/docker-app: listed once, with the first image's repository.
    const shared = rec.blobs.filter((b) => b.digest === up.sharedLayer);
    assert.equal(shared.length, 1);
    const first = index.images.find((i) => /\/team\/(app|docker-app):/.test(i.ref));
    assert.equal(shared[0]?.repository, first?.ref.slice(up.registry.host.length + 1).split(':')[0]);
  });

  it('lists every file with its sha256 and size', async () => {
    const rec = await readReceipt(receiptFile);
    assert.deepEqual(rec.files, index.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })));
    for (const f of rec.files) assert.equal(createHash('sha256').update(await readFile(path.join(files, f.path))).digest('hex'), f.sha256);
  });

  it('a rerun that finds everything in place writes the same receipt', async () => {
    const again = path.join(work, 'receipt-again.json');
    const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', files, '--receipt', again, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { upToDate: boolean }).upToDate, true, 'the quick path');
    assert.ok((await readFile(again)).equals(receiptBytes), 'byte-identical receipt');
    // Over the old one, in text mode.
    const over = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', files, '--receipt', receiptFile]);
    assert.equal(over.code, 0, over.stderr);
    assert.match(over.stdout, /wrote receipt .*receipt\.json/);
    assert.ok((await readFile(receiptFile)).equals(receiptBytes));
  });

  it('a failed unpack writes no receipt and leaves an existing one untouched', async () => {
    // Images go up, then the files fail: a link in the folder leads outside it.
    const badFiles = await makeTempDir('airlock-files-');
    await symlink(await makeTempDir('airlock-elsewhere-'), path.join(badFiles, 'falco'));
    const dir = await makeTempDir('airlock-receipts-');
    const existing = path.join(dir, 'existing.json');
    await writeFile(existing, 'an earlier receipt\n');
    const fresh = path.join(dir, 'fresh.json');
    for (const file of [existing, fresh]) {
      const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', `${target.host}/failed`, '--files-dir', badFiles, '--receipt', file]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /outside/);
    }
    assert.equal(await head(`/v2/failed/team/app/manifests/1.0`), 200, 'the images were pushed before the failure');
    assert.equal(await readFile(existing, 'utf8'), 'an earlier receipt\n');
    assert.equal(existsSync(fresh), false);
    assert.deepEqual(await readdir(dir), ['existing.json'], 'no temp file left');
  });

  it('a --receipt in a missing folder, or naming a folder, is a usage error before anything is pushed', async () => {
    for (const [file, re] of [[path.join(work, 'nope', 'r.json'), /no such folder/], [work, /is a folder/]] as const) {
      const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', `${target.host}/never`, '--files-dir', files, '--receipt', file]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, re);
    }
    assert.equal(await head('/v2/never/team/app/manifests/1.0'), 404);
  });

  it('with --layout host and a prefix, targets and repositories follow them; diff against the bundle finds nothing new', async () => {
    const file = path.join(work, 'receipt-host.json');
    const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', `${target.host}/proj/`, '--layout', 'host', '--files-dir', await makeTempDir('airlock-files-'), '--receipt', file]);
    assert.equal(r.code, 0, r.stderr);
    const rec = await readReceipt(file);
    assert.equal(rec.registry, `${target.host}/proj`);
    assert.equal(rec.layout, 'host');
    const hostPart = up.registry.host.replace(':', '_');
    for (const i of rec.images) assert.equal(i.target, i.ref.replace(`${up.registry.host}/`, `${target.host}/proj/${hostPart}/`));
    const manifests = manifestDigests();
    for (const b of rec.blobs) {
      assert.ok(b.repository.startsWith(`proj/${hostPart}/`), b.repository);
      assert.equal(await head(`/v2/${b.repository}/${manifests.has(b.digest) ? 'manifests' : 'blobs'}/${b.digest}`), 200);
    }
    const d = await runAirlock(['diff', file, bundle, '--json']);
    assert.equal(d.code, 0, d.stderr);
    const diff = JSON.parse(d.stdout) as { old: { kind: string }; images: { added: unknown[]; removed: unknown[]; changed: unknown[]; unchanged: number }; carries: { bytes: number } };
    assert.equal(diff.old.kind, 'receipt');
    assert.deepEqual([diff.images.added, diff.images.removed, diff.images.changed, diff.images.unchanged], [[], [], [], index.images.length]);
    assert.equal(diff.carries.bytes, 0);
  });

  describe('a hostile receipt is refused, naming the problem', () => {
    const cases: Array<[string, (r: Receipt) => unknown, RegExp]> = [
      ['bad blob digest', (r) => ((r.blobs[0] as { digest: string }).digest = 'sha256:XYZ'), /blobs\[0\]\.digest "sha256:XYZ" is not a sha256 digest/],
      ['".." in a file path', (r) => ((r.files[0] as { path: string }).path = 'opensearch/../../etc/passwd'), /files\[0\]\.path .* contains "\.\."/],
      ['absolute file path', (r) => ((r.files[0] as { path: string }).path = '/etc/passwd'), /files\[0\]\.path .* is absolute/],
      ['digest of the wrong type', (r) => ((r.images[0] as unknown as { digest: number }).digest = 42), /images\[0\]\.digest is not a string/],
      ['negative size', (r) => ((r.blobs[1] as { size: number }).size = -1), /blobs\[1\]\.size is not a size/],
      ['size as text', (r) => ((r.files[0] as unknown as { size: string }).size = '10'), /files\[0\]\.size is not a size/],
      ['images not a list', (r) => ((r as unknown as { images: unknown }).images = { a: 1 }), /images is not a list/],
      ['unknown field', (r) => ((r as unknown as Record<string, unknown>).extra = true), /has an unknown field "extra"/],
      ['wrong kind', (r) => ((r as { kind: string }).kind = 'Bundle'), /kind is "Bundle", not "Receipt"/],
      ['a target elsewhere', (r) => ((r.images[0] as { target: string }).target = 'evil.example/team/app:1.0'), /images\[0\]\.target "evil\.example\/team\/app:1\.0" is not where flat layout/],
      ['a blob in a repository of no image', (r) => ((r.blobs[0] as { repository: string }).repository = 'elsewhere/repo'), /blobs\[0\]\.repository elsewhere\/repo is not the repository of any image/],
      ['a blob listed twice', (r) => r.blobs.push({ ...(r.blobs[0] as Receipt['blobs'][number]) }), /is listed twice/],
      ['an image digest not among the blobs', (r) => r.blobs.splice(r.blobs.findIndex((b) => b.digest === r.images[0]?.digest), 1), /images\[0\]\.digest .* is not among the blobs/],
      ['a bundle sha256 that is not hex', (r) => ((r.bundle as { sha256: string }).sha256 = 'abc'), /bundle\.sha256 is not 64 lowercase hex/],
      ['a bad registry', (r) => ((r as { registry: string }).registry = 'http://x'), /registry is not HOST\[:PORT\]\[\/PREFIX\]/],
      ['a control character in a name', (r) => ((r.files[0] as { path: string }).path = 'a\x1b[2Kb'), /files\[0\]\.path "a\\x1b\[2Kb" contains control characters/],
    ];
    let good: Receipt;
    before(async () => {
      good = await readReceipt(receiptFile);
    });
    for (const [name, mutate, re] of cases) {
      it(name, async () => {
        const r = structuredClone(good);
        mutate(r);
        const file = path.join(work, `hostile-${name.replace(/\W+/g, '-')}.json`);
        await writeFile(file, JSON.stringify(r));
        const res = await runAirlock(['diff', file, bundle]);
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, re);
        assert.ok(!res.stderr.includes('\x1b'), 'nothing raw reaches the terminal');
        assert.equal(res.stdout, '');
      });
    }
    it('a receipt over 16 MiB is refused unread', async () => {
      const file = path.join(work, 'huge.json');
      await writeFile(file, '{"apiVersion": "airlock/v1", "kind": "Receipt", "images": [');
      await truncate(file, 16 * 1024 * 1024 + 1);
      const res = await runAirlock(['diff', file, bundle]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /huge\.json is 16777217 bytes, more than a bundle\.json or a receipt may be \(16777216 bytes\); refusing it/);
    });
    it('JSON that is neither, and text that is not JSON', async () => {
      const neither = path.join(work, 'neither.json');
      await writeFile(neither, '{"hello": 1}');
      const a = await runAirlock(['diff', neither, bundle]);
      assert.equal(a.code, 1);
      assert.match(a.stderr, /neither a bundle\.json .* nor a receipt/);
      const broken = path.join(work, 'broken.json');
      await writeFile(broken, '{"apiVersion": ');
      const b = await runAirlock(['diff', broken, bundle]);
      assert.equal(b.code, 1);
      assert.match(b.stderr, /starts like JSON but is not JSON/);
    });
  });
});
