// prune (SPEC §11) against real distribution 2.8 registries: three releases
// built and unpacked with airlock (receipts R1, R2, R3 sharing an image, an
// index child and a file); someone else pushes an image, moves a tag, pins
// an R2 manifest under a tag of their own, adds their SBOM to the referrers
// fallback index airlock wrote, and replaces a file.
// `prune --from R1 R2 --keep R3`: the dry run changes no byte of storage; the
// apply removes exactly what only R1/R2 hold (signatures and referrers
// included; the fallback index keeps only their entry), a rerun deletes nothing more, and after the
// registry's own garbage-collect every R3 image still copies with skopeo.
// A registry without storage.delete.enabled is refused before anything goes;
// a run killed with SIGKILL mid-apply (DELETEs slowed by a fault proxy) and
// its rerun finish the job, files on nginx WebDAV included.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AIRLOCK, runAirlock } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { pushFallbackIndex, pushSbomReferrer, referrerEntry, seedAttached, type SeededAttached, type SeededSet } from './support/seed-attached.js';
import { ACCEPT_ALL_MANIFESTS, makeLayer, MediaTypes, pseudoRandomBytes, Seeder, type Descriptor, type PushedImage, type PushedManifest } from './support/seed.js';
import { skopeo } from './support/skopeo.js';
import { runOk } from './support/tools.js';

const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Release {
  bundle: string;
  images: string[];
  files: string[];
}

let upstream: TestRegistry;
let web: TestFileServer;
let seeder: Seeder;
let work: string;
let key: string;
let pub: string;
const fileBytes: Record<string, Buffer> = {};
let releases: Record<'r1' | 'r2' | 'r3', Release>;
const seeded: Record<string, PushedManifest> = {};
let amd64: PushedImage;
let arm64v1: PushedImage;
let arm64v3: PushedImage;
let oldLayer: Buffer;
let attached: SeededSet;

function manifest(version: string, r: Release): string {
  return `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: platform
  version: "${version}"
spec:
  images:
${r.images.map((i) => `    - ${upstream.host}/${i}\n`).join('')}  files:
${r.files.map((f) => `    - url: ${web.url}/${f}\n      path: ${f}\n      sha256: ${hex(fileBytes[f]!)}\n`).join('')}`;
}

async function buildAll(): Promise<void> {
  for (const [name, r] of Object.entries(releases)) {
    const m = path.join(work, `${name}.yaml`);
    await writeFile(m, manifest(name, r));
    r.bundle = path.join(work, `${name}.tar`);
    const b = await runAirlock(['build', m, '-o', r.bundle, '--key', key, '--cache', path.join(work, 'cache')]);
    assert.equal(b.code, 0, b.stderr);
  }
}

/** The three releases unpacked into `registry` (and files into `files`), receipts R1..R3 in `dir`. */
async function unpackAll(registry: string, files: string[], dir: string): Promise<{ r1: string; r2: string; r3: string }> {
  const out = { r1: path.join(dir, 'R1.json'), r2: path.join(dir, 'R2.json'), r3: path.join(dir, 'R3.json') };
  for (const name of ['r1', 'r2', 'r3'] as const) {
    const u = await runAirlock(['unpack', releases[name].bundle, '--pub', pub, '--registry', registry, ...files, '--receipt', out[name]]);
    assert.equal(u.code, 0, u.stderr);
  }
  return out;
}

async function head(reg: { url: string }, repo: string, ref: string): Promise<string | undefined> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { accept: ACCEPT_ALL_MANIFESTS } });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

/** Every file under the registry's storage with its content's hash: what a dry run must not change. */
async function storageTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name);
    out.push(`${path.relative(dir, p)} ${e.isFile() ? hex(await readFile(p)) : 'dir'}`);
  }
  return out.sort();
}

function blobPath(reg: TestRegistry, digest: string): string {
  const h = digest.slice(7);
  return path.join(reg.dataDir, 'docker/registry/v2/blobs/sha256', h.slice(0, 2), h, 'data');
}

before(async () => {
  upstream = await startRegistry();
  web = await startFileServer();
  seeder = new Seeder({ url: upstream.url });
  work = await makeTempDir('airlock-prune-');
  key = path.join(work, 'k.key');
  pub = path.join(work, 'k.pub');
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);

  const layer = (s: string) => makeLayer(s, 30_000);
  seeded.shared = await seeder.pushImage('base/shared', '1', { layers: [await layer('shared')], format: 'oci' });
  // web:1.0 and web:3.0 are indexes sharing their amd64 child; web:2.0 is a plain image.
  amd64 = await seeder.pushImage('app/web', undefined, { layers: [await layer('web-amd64')], format: 'oci', platform: { os: 'linux', architecture: 'amd64' } });
  arm64v1 = await seeder.pushImage('app/web', undefined, { layers: [await layer('web-arm64-1')], format: 'oci', platform: { os: 'linux', architecture: 'arm64' } });
  arm64v3 = await seeder.pushImage('app/web', undefined, { layers: [await layer('web-arm64-3')], format: 'oci', platform: { os: 'linux', architecture: 'arm64' } });
  seeded.web1 = await seeder.pushIndex('app/web', '1.0', [amd64.descriptor, arm64v1.descriptor], 'oci');
  seeded.web3 = await seeder.pushIndex('app/web', '3.0', [amd64.descriptor, arm64v3.descriptor], 'oci');
  seeded.web2 = await seeder.pushImage('app/web', '2.0', { layers: [await layer('web-2')], format: 'oci' });
  oldLayer = await layer('old');
  seeded.old = await seeder.pushImage('app/old', '1', { layers: [oldLayer], format: 'oci' });
  // Signed, attested, with an SBOM and sigstore bundles as referrers (and their fallback index): R1 carries them all.
  attached = await seedAttached(seeder, 'app/old', seeded.old.descriptor, { fallback: true });
  seeded.mid = await seeder.pushImage('app/mid', '1', { layers: [await layer('mid')], format: 'oci' });
  seeded.new = await seeder.pushImage('app/new', '1', { layers: [await layer('new')], format: 'oci' });
  for (const f of ['tools/common.bin', 'tools/r1.bin', 'tools/replaced.bin', 'tools/r3.bin']) {
    fileBytes[f] = pseudoRandomBytes(f, 20_000);
    await mkdir(path.join(web.root, 'tools'), { recursive: true });
    await writeFile(path.join(web.root, f), fileBytes[f]);
  }
  releases = {
    r1: { bundle: '', images: ['base/shared:1', 'app/web:1.0', 'app/old:1'], files: ['tools/common.bin', 'tools/r1.bin', 'tools/replaced.bin'] },
    r2: { bundle: '', images: ['base/shared:1', 'app/web:2.0', 'app/mid:1'], files: ['tools/common.bin'] },
    r3: { bundle: '', images: ['base/shared:1', 'app/web:3.0', 'app/new:1'], files: ['tools/common.bin', 'tools/r3.bin'] },
  };
  await buildAll();
});

after(async () => {
  await seeder?.close();
  await Promise.all([upstream?.stop(), web?.stop()]);
});

describe('prune --from R1 R2 --keep R3 on distribution with deletes enabled', () => {
  let target: TestRegistry;
  let files: string;
  let receipts: { r1: string; r2: string; r3: string };
  let other: PushedImage;
  let movedTo: PushedImage;
  let theirSbom: SeededAttached;
  const args = () => ['prune', '--registry', target.host, '--from', receipts.r1, receipts.r2, '--keep', receipts.r3, '--files-dir', files];
  /** What only R1/R2 hold, minus what someone else pinned: every manifest that must go. */
  const gone = () => [
    ['app/web', seeded.web1!.digest],
    ['app/web', arm64v1.digest],
    ['app/old', seeded.old!.digest],
    ['app/mid', seeded.mid!.digest],
    ...[attached.sig, attached.att, attached.sbom, attached.bundle, attached.bundleNoType].map((a) => ['app/old', a.digest]),
  ];
  const stays = () => [
    ['base/shared', seeded.shared!.digest],
    ['app/web', seeded.web3!.digest],
    ['app/web', amd64.digest],
    ['app/web', arm64v3.digest],
    ['app/web', seeded.web2!.digest],
    ['app/new', seeded.new!.digest],
    ['other/thing', other.digest],
    ['app/mid', movedTo.digest],
    ['app/old', theirSbom.digest],
  ];

  before(async () => {
    target = await startRegistry();
    files = await makeTempDir('airlock-prune-files-');
    receipts = await unpackAll(target.host, ['--files-dir', files], work);
    // Someone else, not airlock: their own image, R2's mid:1 tag moved to their build, web:2.0 pinned under their tag, a file replaced.
    const them = new Seeder({ url: target.url });
    other = await them.pushImage('other/thing', '1', { layers: [await makeLayer('theirs', 10_000)], format: 'oci' });
    movedTo = await them.pushImage('app/mid', '1', { layers: [await makeLayer('their-mid', 10_000)], format: 'oci' });
    const web2 = await them.getManifest('app/web', seeded.web2!.digest);
    await them.pushManifest('app/web', 'ops-pin', web2.body, web2.headers['content-type'] as string);
    // Their own SBOM of app/old:1, added to the fallback index airlock wrote.
    theirSbom = await pushSbomReferrer(them, 'app/old', seeded.old!.descriptor, 99);
    const fallback = JSON.parse((await them.getManifest('app/old', `sha256-${seeded.old!.digest.slice(7)}`)).body.toString('utf8')) as { manifests: Descriptor[] };
    assert.equal(fallback.manifests.length, 3);
    await pushFallbackIndex(them, 'app/old', seeded.old!.digest, [...fallback.manifests, referrerEntry(theirSbom)]);
    await them.close();
    await writeFile(path.join(files, 'tools/replaced.bin'), 'replaced by the operator\n');
  });
  after(async () => target?.stop());

  it('the dry run prints the plan and changes nothing in storage', async () => {
    const before = await storageTree(target.dataDir);
    const filesBefore = await storageTree(files);
    const r = await runAirlock([...args(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { dryRun: boolean; plan: { manifests: Array<{ repository: string; digest: string; tags: string[] }>; fallbacks: Array<{ action: string; tag: string }>; files: Array<{ path: string }>; left: Array<{ what: string; why: string }>; bytes: number } };
    assert.equal(report.dryRun, true);
    assert.deepEqual(report.plan.manifests.map((m) => `${m.repository}@${m.digest}`).sort(), gone().map(([r, d]) => `${r}@${d}`).sort());
    assert.deepEqual(report.plan.fallbacks.map((f) => f.action), ['rewrite'], 'the fallback index lists their SBOM too: it is rewritten');
    assert.deepEqual(report.plan.files.map((f) => f.path), ['tools/r1.bin']);
    const why = (what: RegExp) => report.plan.left.find((l) => what.test(l.what))?.why ?? '';
    assert.match(why(/app\/mid:1$/), /moved since/);
    assert.match(why(new RegExp(`app/web@${seeded.web2!.digest}`)), /ops-pin/);
    assert.match(why(/tools\/replaced\.bin$/), /replaced since/);
    assert.match(why(/tools\/common\.bin$/), /R3\.json/);
    assert.ok(report.plan.bytes > 30_000, `bytes GC may free: ${report.plan.bytes}`);
    // The receipts' own order: referrers before their subject, an index's children before the index.
    const order = report.plan.manifests.map((m) => m.digest);
    assert.ok(order.indexOf(attached.sig.digest) < order.indexOf(seeded.old!.digest));
    assert.ok(order.indexOf(arm64v1.digest) < order.indexOf(seeded.web1!.digest));
    const text = await runAirlock(args());
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^dry run: nothing deleted/);
    assert.match(text.stdout, new RegExp(`delete   image    ${target.host}/app/web@${seeded.web1!.digest} .*app/web:1\\.0 \\(tags 1\\.0\\)`));
    assert.match(text.stdout, /garbage-collect/);
    assert.deepEqual(await storageTree(target.dataDir), before, 'the dry run changed the registry storage');
    assert.deepEqual(await storageTree(files), filesBefore, 'the dry run changed the files');
  });

  it('refuses receipts of another registry and a missing --keep (exit 2), before any request', async () => {
    const other = await runAirlock(['prune', '--registry', '127.0.0.1:1', '--from', receipts.r1, '--keep', receipts.r3]);
    assert.equal(other.code, 2, other.stderr);
    assert.match(other.stderr, new RegExp(`--from .*R1\\.json: the receipt is for registry ${target.host.replace(/\./g, '\\.')}, not 127\\.0\\.0\\.1:1`));
    const noKeep = await runAirlock(['prune', '--registry', target.host, '--from', receipts.r1]);
    assert.equal(noKeep.code, 2);
    assert.match(noKeep.stderr, /--keep RECEIPT/);
  });

  it('--apply removes exactly what only R1/R2 hold; a rerun deletes nothing more; R3 pulls after garbage-collect', async () => {
    const pruneReceipt = path.join(work, 'prune-1.json');
    const r = await runAirlock([...args(), '--apply', '--json', '--receipt', pruneReceipt]);
    assert.equal(r.code, 0, r.stderr);
    for (const [repo, d] of gone()) assert.equal(await head(target, repo!, d!), undefined, `${repo}@${d} is still there`);
    for (const [repo, d] of stays()) assert.equal(await head(target, repo!, d!), d, `${repo}@${d} was deleted`);
    assert.equal(await head(target, 'app/web', '1.0'), undefined);
    assert.equal(await head(target, 'app/old', '1'), undefined);
    assert.equal(await head(target, 'app/old', attached.sig.tag!), undefined, 'the .sig tag went with its manifest');
    const fallback = JSON.parse(Buffer.from(await (await fetch(`${target.url}/v2/app/old/manifests/sha256-${seeded.old!.digest.slice(7)}`, { headers: { accept: MediaTypes.ociIndex } })).arrayBuffer()).toString('utf8')) as { manifests: Descriptor[] };
    assert.deepEqual(fallback.manifests, [referrerEntry(theirSbom)], 'the fallback index keeps their entry only');
    assert.equal(await head(target, 'app/mid', '1'), movedTo.digest, 'the moved tag stays');
    assert.equal(await head(target, 'app/web', 'ops-pin'), seeded.web2!.digest);
    assert.equal(await head(target, 'app/web', '3.0'), seeded.web3!.digest);
    assert.ok(!existsSync(path.join(files, 'tools/r1.bin')) && !existsSync(path.join(files, 'tools/r1.bin.sha256')));
    for (const f of ['tools/common.bin', 'tools/common.bin.sha256', 'tools/r3.bin', 'tools/replaced.bin']) assert.ok(existsSync(path.join(files, f)), f);

    // Every deletion logged, in --json and in the prune receipt.
    const report = JSON.parse(r.stdout) as { deletions: Array<{ kind: string; digest?: string; result?: string }>; receipt: string };
    const logged = JSON.parse(await readFile(pruneReceipt, 'utf8')) as { kind: string; finished: string | null; deletions: unknown[] };
    assert.equal(report.receipt, pruneReceipt);
    assert.equal(logged.kind, 'PruneReceipt');
    assert.ok(logged.finished);
    assert.deepEqual(logged.deletions, report.deletions);
    assert.deepEqual(report.deletions.filter((d) => d.kind === 'manifest').map((d) => d.digest).sort(), gone().map(([, d]) => d).sort());
    assert.ok(report.deletions.every((d) => d.kind !== 'manifest' || d.result === 'deleted'));

    const again = await runAirlock([...args(), '--apply', '--json', '--receipt', path.join(work, 'prune-2.json')]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((JSON.parse(again.stdout) as { deletions: unknown[] }).deletions, [], 'the rerun deleted something');

    // The registry's own garbage collection, with the registry stopped (distribution's docs: stopped or read-only).
    await target.pause();
    const gc = await runOk('docker-registry', ['garbage-collect', target.configFile]);
    await target.resume();
    assert.match(gc.stdout + gc.stderr, /blob eligible for deletion/);
    assert.ok(!existsSync(blobPath(target, `sha256:${hex(oldLayer)}`)), 'the layer only app/old:1 held is freed');
    const out = await makeTempDir('airlock-prune-pull-');
    for (const ref of ['base/shared:1', 'app/web:3.0', 'app/new:1', 'app/web:2.0', 'other/thing:1', 'app/mid:1']) {
      const c = await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${target.host}/${ref}`, `oci:${out}:${ref.replace(/[/:]/g, '-')}`]);
      assert.equal(c.code, 0, `${ref} no longer pulls after garbage-collect:\n${c.stderr}`);
    }
  });
});

describe('prune refuses a registry without storage.delete.enabled', () => {
  it('names the setting and removes nothing', async () => {
    const target = await startRegistry({ deleteEnabled: false });
    try {
      const files = await makeTempDir('airlock-prune-nodelete-');
      const dir = await makeTempDir('airlock-prune-nodelete-r-');
      const receipts = await unpackAll(target.host, ['--files-dir', files], dir);
      const storage = await storageTree(target.dataDir);
      const filesBefore = await storageTree(files);
      const r = await runAirlock(['prune', '--registry', target.host, '--from', receipts.r1, '--from', receipts.r2, '--keep', receipts.r3, '--files-dir', files, '--apply']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /refuses to delete manifests \(HTTP 405 UNSUPPORTED\).*storage\.delete\.enabled: true.*nothing was deleted/);
      assert.deepEqual(await storageTree(target.dataDir), storage);
      assert.deepEqual(await storageTree(files), filesBefore, 'a file was deleted although the registry refused');
      assert.deepEqual((await readdir(dir)).sort(), ['R1.json', 'R2.json', 'R3.json'], 'no prune receipt for a run that deleted nothing');
      const dry = await runAirlock(['prune', '--registry', target.host, '--from', receipts.r1, '--keep', receipts.r3]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /warning: .*storage\.delete\.enabled/);
    } finally {
      await target.stop();
    }
  });
});

describe('prune killed with SIGKILL mid --apply, then run again', () => {
  let target: TestRegistry;
  let proxy: TestFaultProxy;
  let files: TestFileServer;
  before(async () => {
    target = await startRegistry();
    proxy = await startFaultProxy(target.url);
    files = await startFileServer();
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([target?.stop(), files?.stop()]);
  });

  it('finishes the job: nothing only R1/R2 held is left, R3 intact, files on WebDAV too', async () => {
    const fetchStatus = async (p: string) => (await fetch(`${files.url}/${p}`, { method: 'HEAD' })).status;
    const dir = await makeTempDir('airlock-prune-kill-');
    // Unpacked through the proxy, so the receipts name the host prune speaks to.
    const receipts = await unpackAll(proxy.host, ['--files-url', files.url], dir);
    const args = ['prune', '--registry', proxy.host, '--from', receipts.r1, receipts.r2, '--keep', receipts.r3, '--files-url', files.url, '--apply', '--json'];
    const first = path.join(dir, 'first.json');
    // The DELETE of web:1.0's index or of its arm64 child, whichever prune sends second, hangs; prune is killed there.
    // Children go first: the index that leads to the one left is still there for the rerun to read.
    // Before that, the registry refuses the attestation once, as Harbor refuses a manifest something still lists: prune goes on and tries it again at the end.
    proxy.addRule({ kind: 'status', method: 'DELETE', match: new RegExp(`/manifests/${attached.att.digest}$`), status: 412 });
    const pair = new RegExp(`/manifests/(${seeded.web1!.digest}|${arm64v1.digest})$`);
    proxy.addRule({ kind: 'delay', method: 'DELETE', match: pair, ms: 0 });
    proxy.addRule({ kind: 'delay', method: 'DELETE', match: pair, ms: 120_000 });
    const run = spawn(process.execPath, [AIRLOCK, ...args, '--receipt', first], { stdio: 'ignore' });
    const exited = new Promise((resolve) => run.on('exit', resolve));
    for (;;) {
      const log = existsSync(first) ? (JSON.parse(await readFile(first, 'utf8').catch(() => '{}')) as { deletions?: Array<{ digest?: string; result?: string }> }) : {};
      if (proxy.pendingRules === 0 && log.deletions?.some((d) => d.digest === arm64v1.digest || d.digest === seeded.web1!.digest)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    run.kill('SIGKILL');
    await exited;
    proxy.clearRules();
    const cut = JSON.parse(await readFile(first, 'utf8')) as { finished: string | null; deletions: Array<{ digest?: string }> };
    assert.equal(cut.finished, null, 'the killed run marked itself finished');
    const between = [await head(target, 'app/web', seeded.web1!.digest), await head(target, 'app/web', arm64v1.digest)];
    assert.equal(between.filter(Boolean).length, 1, 'the kill did not come between the index and its child');
    assert.equal(await fetchStatus('tools/r1.bin'), 200, 'the kill came after the files');
    assert.ok(!cut.deletions.some((d) => d.digest === attached.att.digest), 'the refused attestation was not put off to the end');

    const rerun = await runAirlock([...args, '--receipt', path.join(dir, 'second.json')]);
    assert.equal(rerun.code, 0, rerun.stderr);
    for (const [repo, d] of gone()) assert.equal(await head(target, repo!, d!), undefined, `${repo}@${d} is still there after the rerun`);
    for (const [repo, d] of [['base/shared', seeded.shared!.digest], ['app/web', seeded.web3!.digest], ['app/web', amd64.digest], ['app/web', arm64v3.digest], ['app/new', seeded.new!.digest]]) {
      assert.equal(await head(target, repo!, d!), d, `${repo}@${d} (R3) was deleted`);
    }
    assert.equal(await fetchStatus('tools/r1.bin'), 404);
    assert.equal(await fetchStatus('tools/r1.bin.sha256'), 404);
    assert.equal(await fetchStatus('tools/replaced.bin'), 404, 'replaced.bin was only in R1 and unchanged here: it goes');
    assert.equal(await fetchStatus('tools/common.bin'), 200);
    assert.equal(await fetchStatus('tools/r3.bin.sha256'), 200);
  });

  /** Everything only R1/R2 hold (nobody pinned anything here). */
  const gone = () => [
    ['app/web', seeded.web1!.digest],
    ['app/web', arm64v1.digest],
    ['app/web', seeded.web2!.digest],
    ['app/old', seeded.old!.digest],
    ['app/mid', seeded.mid!.digest],
    ...[attached.sig, attached.att, attached.sbom, attached.bundle, attached.bundleNoType].map((a) => ['app/old', a.digest]),
  ];
});
